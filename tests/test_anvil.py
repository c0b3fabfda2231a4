"""The anvil fixture itself: it answers, and it is gone after stop."""

import os

from devnet.anvil import Anvil


def test_anvil_answers_and_stops_by_pid() -> None:
    node = Anvil().start()
    pid = node.pid
    assert pid is not None
    try:
        assert node.rpc("eth_chainId") == "0x7a69"
        assert node.rpc_url.startswith("http://127.0.0.1:")
    finally:
        node.stop()
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        pass
    else:  # a zombie is reaped by wait(); a live process would be a leak
        raise AssertionError(f"anvil pid {pid} still running after stop()")
