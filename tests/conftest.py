"""For the whole run: a failed test's media threads do not keep the run from ending."""

from __future__ import annotations

import queue
import threading

import pytest


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """aiortc decodes each received track in a thread of its own (not a daemon) that ends
    only when its peer connection is closed. A test that fails half way through a call
    leaves its peers open, and the process would wait for those threads for ever (holding
    CI until its timeout instead of reporting the failure): tell them to stop, as closing
    the peer would have."""
    for thread in threading.enumerate():
        args = getattr(thread, "_args", ())  # (loop, input queue, output queue, error)
        if thread.name.endswith("-decoder") and thread.is_alive() and len(args) > 1 \
                and isinstance(args[1], queue.Queue):
            args[1].put(None)
