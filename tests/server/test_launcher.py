"""The launcher's signal relay: a signal that arrives before the worker's pid is known must
reach the worker once it is (a worker already holds our stdout/stderr: killing only the client
left the worker blocked and the client's caller waiting on its pipes), and must be delivered to
us when no worker started (the command then runs in this process)."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator

import pytest

from buildkit.server.launcher import _SignalRelay


@pytest.fixture
def relay() -> Iterator[_SignalRelay]:
    made = _SignalRelay()
    yield made
    for signum, handler in made.saved.items():
        signal.signal(signum, handler)


def test_a_signal_before_the_pid_is_held_then_forwarded(relay: _SignalRelay) -> None:
    os.kill(os.getpid(), signal.SIGTERM)  # would end this process without the relay
    assert relay.pending == [signal.SIGTERM]
    worker = subprocess.Popen(["sleep", "30"])
    try:
        relay.forward_to(worker.pid)
        assert worker.wait(timeout=10) == -signal.SIGTERM
    finally:
        worker.kill()
        worker.wait()


def test_a_signal_after_the_pid_goes_straight_to_the_worker(relay: _SignalRelay) -> None:
    worker = subprocess.Popen(["sleep", "30"])
    try:
        relay.forward_to(worker.pid)
        os.kill(os.getpid(), signal.SIGINT)
        assert worker.wait(timeout=10) == -signal.SIGINT
        assert relay.pending == []
    finally:
        worker.kill()
        worker.wait()


def test_no_worker_gives_the_signal_back_to_us(relay: _SignalRelay) -> None:
    os.kill(os.getpid(), signal.SIGINT)
    assert relay.pending == [signal.SIGINT]
    with pytest.raises(KeyboardInterrupt):  # Python's own SIGINT handler, as without a server
        relay.give_back()
    assert signal.getsignal(signal.SIGINT) is relay.saved[signal.SIGINT]
