"""stackrun.aws.at_once: independent calls side by side, results in order, failures raised."""

from __future__ import annotations

import threading
import time

import pytest

from in_flight import InFlight
from stackrun.aws.at_once import MAX_AT_ONCE, at_once, in_background


def test_calls_run_side_by_side_and_answer_in_the_items_order():
    started = threading.Barrier(4, timeout=5)  # all four must be in flight at once

    def call(item: int) -> int:
        started.wait()
        time.sleep(0.01 * (4 - item))  # the last item answers first
        return item * 10

    assert at_once(call, [1, 2, 3, 4]) == [10, 20, 30, 40]


def test_the_first_failure_in_the_items_order_is_raised_after_every_call_ended():
    ended = []

    def call(item: int) -> int:
        if item in (2, 3):
            raise ValueError(f"item {item}")
        time.sleep(0.05)
        ended.append(item)
        return item

    with pytest.raises(ValueError, match="item 2"):
        at_once(call, [1, 2, 3, 4])
    assert sorted(ended) == [1, 4]


def test_at_most_max_at_once_calls_are_in_flight():
    in_flight = InFlight()

    def call(item: int) -> int:
        with in_flight:
            time.sleep(0.02)
        return item

    assert at_once(call, range(3 * MAX_AT_ONCE)) == list(range(3 * MAX_AT_ONCE))
    assert 1 < in_flight.peak <= MAX_AT_ONCE


def test_one_item_or_none_runs_in_the_callers_thread():
    caller = threading.current_thread()
    assert at_once(lambda item: threading.current_thread() is caller, [1]) == [True]
    assert at_once(lambda item: item, []) == []


def test_a_call_in_the_background_runs_beside_the_block_and_is_waited_for():
    both = threading.Barrier(2, timeout=5)  # the block and the call must run at once
    ended = []

    def call() -> str:
        both.wait()
        time.sleep(0.05)
        ended.append("call")
        return "read"

    with in_background(call) as result:
        both.wait()
    assert ended == ["call"]  # leaving the block waited for it
    assert result.result() == "read"


def test_a_failure_in_the_background_is_raised_where_the_result_is_read():
    def call() -> str:
        raise ValueError("no record")

    with in_background(call) as result:
        pass
    with pytest.raises(ValueError, match="no record"):
        result.result()
