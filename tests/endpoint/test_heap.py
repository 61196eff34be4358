"""A worker gives its freed heap back once it has been quiet, never while it serves."""

from __future__ import annotations

import time

from endpoint.heap import Quiet


def test_a_worker_that_served_and_went_quiet_is_due_a_trim():
    quiet = Quiet()
    quiet.started()
    assert not quiet.due(0.0)  # a request in flight: never
    quiet.finished()
    assert not quiet.due(60.0)  # just finished: not quiet long enough
    time.sleep(0.02)
    assert quiet.due(0.01)
    quiet.trim()
    assert not quiet.due(0.01)  # nothing served since: an idle worker does nothing


def test_a_worker_that_never_served_is_left_alone():
    assert not Quiet().due(0.0)
