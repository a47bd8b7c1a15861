"""The locally deployed HTTP APIs, answered by the deployed function code.

``http_server.py`` routes requests like API Gateway (``gateway.py``) and runs each function
version from the zip the emulator holds (``functions.py``) in a runtime process of its own
(``runtime.py``: awslambdaric against a local Runtime API), logging to the emulated CloudWatch
Logs (``logs.py``). ``process.py`` runs it for ``stackrun serve``: in the foreground, or as a
detached process that later commands find again.
"""
