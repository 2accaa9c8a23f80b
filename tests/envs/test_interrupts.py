"""`held_interrupt`: a SIGINT inside the block is held until the block is whole, then the handler runs."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from channelmarket.envs.interrupts import held_interrupt


def test_a_ctrl_c_inside_the_block_comes_after_it():
    done = []
    with pytest.raises(KeyboardInterrupt):
        with held_interrupt():
            os.kill(os.getpid(), signal.SIGINT)
            done.append("the rest of the block")
    assert done == ["the rest of the block"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_no_ctrl_c_no_interrupt_and_the_handler_is_restored():
    with held_interrupt():
        pass
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_installed_python_handler_is_held_and_called_once():
    calls = []
    old = signal.signal(signal.SIGINT, lambda s, f: calls.append(s))
    try:
        with held_interrupt():
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
            assert calls == []
        assert calls == [signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, old)


def test_ignored_sigint_and_other_threads_are_left_alone():
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with held_interrupt():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, old)
    seen = []

    def worker():
        with held_interrupt():   # signals go to the main thread only: nothing to hold here
            seen.append(signal.getsignal(signal.SIGINT))
    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen == [signal.default_int_handler]


def test_an_error_inside_the_block_propagates_and_the_handler_is_restored():
    with pytest.raises(ValueError, match="bad"):
        with held_interrupt():
            raise ValueError("bad")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
