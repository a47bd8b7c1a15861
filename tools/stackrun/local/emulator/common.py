"""What the emulator server and its lifecycle code share (kept apart so that importing the
package does not import ``server``, which runs as ``python -m stackrun.local.emulator.server``)."""

from __future__ import annotations

import ipaddress

# moto's own small JSON route: cheap, touches no backend data. The readiness probe.
HEALTH_PATH = "/moto-api/config"


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: the only addresses the emulator may listen on."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
