"""What the local API reads from the emulator, kept until the emulator's configuration changes.

A request needs the API's routes, integrations and stage, the route's authorizer, the alias
its integration names, the version's configuration and the function's reserved concurrency:
six calls to the emulator, each an HTTPS round trip. They are answered from memory while the
emulator's configuration generation stays the same. The emulator bumps it with every write to
Lambda or API Gateway (a deploy, a rollback, an alias weight change: see
``stackrun.local.emulator.middleware.ConfigGeneration``) before that write is answered, and
writes it to a file on this machine; it is read with every call here, so the request after a
write sees the write. An emulator without the signal (an older one still running) is asked
every time, as before.
"""

from __future__ import annotations

import functools
import json
import ssl
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from stackrun.local.emulator.middleware import CONFIG_GENERATION_PATH


class GenerationWatch:
    """The emulator's configuration generation, read from the file it writes."""

    def __init__(self, endpoint: str, ca_bundle: Path | None) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.ca_bundle = ca_bundle
        self.file: Path | None = None
        self.located = False
        self.lock = threading.Lock()

    def current(self) -> str | None:
        """The generation now; None when there is no signal (nothing may be cached)."""
        if not self.located:
            self._locate()
        if self.file is None:
            return None
        try:
            return self.file.read_text() or None
        except OSError:
            return None

    def _locate(self) -> None:
        """Ask the emulator once where it writes the generation."""
        with self.lock:
            if self.located:
                return
            context = ssl.create_default_context(
                cafile=str(self.ca_bundle) if self.ca_bundle else None
            )
            url = self.endpoint + CONFIG_GENERATION_PATH
            try:
                with urllib.request.urlopen(url, context=context, timeout=10) as reply:
                    document = json.loads(reply.read())
            except (urllib.error.HTTPError, ValueError):
                self.located = True  # an emulator without the signal: never cache
                return
            except OSError:
                return  # not reachable now: ask again with the next call
            name = document.get("file") if isinstance(document, dict) else None
            self.file = Path(name) if name and Path(name).is_file() else None
            self.located = True


class ReadThroughCache:
    """A boto3 client whose ``get_*`` calls are answered from memory within one generation.

    Anything else (``exceptions``, other calls) goes to the client. Answers are shared: callers
    must not change them. Errors are not kept.
    """

    def __init__(self, client: Any, watch: GenerationWatch, enabled: bool = True) -> None:
        self.client = client
        self.watch = watch
        self.enabled = enabled
        self.generation: str | None = None
        self.answers: dict[tuple[str, str], Any] = {}
        self.lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("get_"):
            return functools.partial(self._call, name)
        return getattr(self.client, name)

    def _call(self, operation: str, **parameters: Any) -> Any:
        generation = self.watch.current() if self.enabled else None
        if generation is None:
            return getattr(self.client, operation)(**parameters)
        key = (operation, json.dumps(parameters, sort_keys=True, default=str))
        with self.lock:
            if generation != self.generation:
                self.answers.clear()
                self.generation = generation
            if key in self.answers:
                return self.answers[key]
        # Read after the generation: a write in between bumps it, and the next call reloads.
        answer = getattr(self.client, operation)(**parameters)
        with self.lock:
            if self.generation == generation:
                self.answers[key] = answer
        return answer
