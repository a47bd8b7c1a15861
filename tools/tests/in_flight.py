"""How many calls were in flight at once: a counter tests wrap around the work they measure."""

from __future__ import annotations

import threading
from typing import Any


class InFlight:
    """`with counter:` around a call; `counter.peak` is the most calls inside at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.peak = 0

    def __enter__(self) -> InFlight:
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        return self

    def __exit__(self, *exc: Any) -> None:
        with self._lock:
            self.now -= 1
