"""An HTTP server with a fixed number of worker threads, for the local APIs.

``ThreadingHTTPServer`` starts a thread per connection, without limit. Here WORKERS threads
serve the connections; when all are busy the accepting loop waits for one to come free, and
new connections wait in the listen backlog (BACKLOG) — the kernel holds them, none is
dropped or refused while it has room (and a client whose connection attempt finds it full
retries it). A kept-alive connection that sends nothing for IDLE_SECONDS is closed, so idle
clients cannot hold the workers.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

WORKERS = 64
BACKLOG = 512
IDLE_SECONDS = 5.0


class BoundedHTTPServer(HTTPServer):
    """Serves each connection in one of `workers` threads; never more threads than that."""

    request_queue_size = BACKLOG
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        workers: int = WORKERS,
    ) -> None:
        super().__init__(address, handler)
        self.free_workers = threading.Semaphore(workers)
        self.connections: queue.Queue[tuple[Any, Any] | None] = queue.Queue()
        self.threads = [
            threading.Thread(target=self._work, daemon=True, name=f"local-api-{index}")
            for index in range(workers)
        ]
        for thread in self.threads:
            thread.start()

    def process_request(self, request: Any, client_address: Any) -> None:
        # Called by the accepting loop: it waits here while every worker is busy.
        self.free_workers.acquire()
        self.connections.put((request, client_address))

    def _work(self) -> None:
        while True:
            item = self.connections.get()
            if item is None:
                return
            request, client_address = item
            try:
                request.settimeout(IDLE_SECONDS)
                self.finish_request(request, client_address)
            except Exception:
                self.handle_error(request, client_address)
            finally:
                self.shutdown_request(request)
                self.free_workers.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # a client that went away (reset, timeout) is not the server's error
        super().handle_error(request, client_address)

    def server_close(self) -> None:
        super().server_close()
        for _ in self.threads:
            self.connections.put(None)

    def shutdown_request(self, request: socket.socket | tuple[bytes, socket.socket]) -> None:
        if isinstance(request, socket.socket):  # a stream server: never the datagram tuple
            with contextlib.suppress(OSError):
                request.shutdown(socket.SHUT_WR)
        self.close_request(request)
