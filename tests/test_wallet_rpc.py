"""JsonRpc against a real anvil: calls, batches with per-item errors, unavailable endpoints."""

from __future__ import annotations

import pytest

from devnet.anvil import Anvil, free_port
from wallet_tools.exceptions import InvalidRpcUrlError, JsonRpcError, RpcUnavailableError
from wallet_tools.rpc import JsonRpc


def test_call_and_batch(anvil: Anvil) -> None:
    rpc = JsonRpc(anvil.rpc_url)
    assert rpc.call("eth_chainId") == "0x7a69"
    results = rpc.batch(
        [
            ("eth_chainId", []),
            ("eth_getBalance", ["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "latest"]),
            ("no_such_method", []),
        ]
    )
    assert results[0] == "0x7a69"
    assert int(results[1], 16) == 10_000 * 10**18
    assert isinstance(results[2], JsonRpcError)
    assert "no_such_method" in str(results[2])
    assert rpc.batch([]) == []


def test_error_reply_raises(anvil: Anvil) -> None:
    with pytest.raises(JsonRpcError) as caught:
        JsonRpc(anvil.rpc_url).call("eth_sendRawTransaction", "0x00")
    assert caught.value.code != 0


def test_unavailable_names_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    rpc = JsonRpc(url, timeout=1, retries=1, backoff=0.01)
    with pytest.raises(RpcUnavailableError, match=url.replace(".", r"\.")):
        rpc.call("eth_chainId")


@pytest.mark.parametrize("url", ["localhost:8545", "ftp://x", "not a url", ""])
def test_bad_url(url: str) -> None:
    with pytest.raises(InvalidRpcUrlError, match="http"):
        JsonRpc(url)
