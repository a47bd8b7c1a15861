"""The local AWS emulator of the ``--local`` target: moto over HTTPS, with emulator gaps closed.

See ``server.py`` for what differs from plain moto and why (the patches are in
``moto_patches.py``, ``middleware.py``, ``cognito.py`` and ``cloudwatch.py``), ``process.py``
for its lifecycle and ``ca.py`` for the private CA that clients trust for it.
"""

from .process import Emulator, EmulatorError, ensure_running, running_pid, status, stop

__all__ = ["Emulator", "EmulatorError", "ensure_running", "running_pid", "status", "stop"]
