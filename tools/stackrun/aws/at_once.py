"""Independent AWS calls made at once: each waits on the network (or the emulator), not on
this process, so reading six objects costs about one round trip instead of six."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

# At most this many calls in flight (boto3's default connection pool holds 10).
MAX_AT_ONCE = 8


def at_once(call: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """`call` of each item, side by side; the results in the items' order. The first failure
    (in that order) is raised, after every call has ended."""
    items = list(items)
    if len(items) < 2:
        return [call(item) for item in items]
    workers = min(MAX_AT_ONCE, len(items))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="aws-call") as pool:
        futures = [pool.submit(call, item) for item in items]
    return [future.result() for future in futures]


@contextmanager
def in_background(call: Callable[[], R]) -> Iterator[Future[R]]:
    """`call` in a thread of its own while the block runs (its own calls may wait on the
    network meanwhile); the block reads the result with `.result()`. Leaving the block waits
    for the call to end."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="aws-call") as pool:
        yield pool.submit(call)
