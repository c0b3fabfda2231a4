"""The hub stall watch: a greenlet that holds the hub shows up as a late wake-up."""

from __future__ import annotations

import time

import gevent

from stress_users.stalls import LONG_STALL_S, StallWatch


def test_a_blocked_hub_is_recorded_as_a_stall() -> None:
    watch = StallWatch()
    watch.start()
    try:
        gevent.sleep(0.25)  # a few quiet wake-ups first
        quiet = watch.worst_s
        time.sleep(0.4)  # holds the hub: this test process does not patch time.sleep
        gevent.sleep(0.25)
    finally:
        watch.stop()
    assert quiet < 0.2
    assert 0.25 <= watch.worst_s < 1.0
    assert watch.long_stalls == 0
    assert watch.as_dict() == {"worst_ms": round(watch.worst_s * 1e3, 1), "over_1s": 0}


def test_long_stalls_are_counted() -> None:
    watch = StallWatch()
    for late in (0.1, LONG_STALL_S, 2.5):
        watch.note(late)
    assert watch.long_stalls == 2
    assert watch.worst_s == 2.5
