"""The locally deployed HTTP APIs, answered by the deployed function code.

``server.py`` routes requests like API Gateway (``gateway.py``) and runs each function version
from the zip the emulator holds (``functions.py``) in a runtime process of its own
(``runtime.py``: awslambdaric against a local Runtime API), logging to the emulated
CloudWatch Logs (``logs.py``). ``serve.py`` is the command and the detached server.
"""
