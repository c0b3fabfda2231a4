"""The JSON-RPC fault proxy in front of a real anvil: forwarding, rejection, drops, outages."""

from __future__ import annotations

import time

import pytest
from eth_account import Account

from devnet.anvil import Anvil
from devnet.rpc_proxy import RpcProxy
from wallet_tools.derivation import HDWallets, Wallet
from wallet_tools.exceptions import JsonRpcError, RpcUnavailableError
from wallet_tools.rpc import JsonRpc

WALLETS = HDWallets("test test test test test test test test test test test junk")


def signed_transfer(sender: Wallet, nonce: int, to: str) -> str:
    tx = {
        "to": to,
        "value": 1,
        "gas": 21_000,
        "maxFeePerGas": 10**10,
        "maxPriorityFeePerGas": 10**9,
        "nonce": nonce,
        "chainId": 31337,
        "type": 2,
    }
    return "0x" + Account.sign_transaction(tx, sender.private_key).raw_transaction.hex()


def test_forwards_single_and_batch_and_logs_methods(anvil: Anvil) -> None:
    with RpcProxy(anvil.rpc_url) as proxy:
        rpc = JsonRpc(proxy.url)
        assert rpc.call("eth_chainId") == "0x7a69"
        assert rpc.batch([("eth_blockNumber", []), ("eth_chainId", [])])[1] == "0x7a69"
        assert proxy.requests == ["eth_chainId", "eth_blockNumber", "eth_chainId"]


def test_reject_sender_only_affects_that_sender(anvil: Anvil) -> None:
    alice, bob, carol = WALLETS.wallets(1, 4)
    with RpcProxy(anvil.rpc_url) as proxy:
        proxy.reject_sender(bob.address.lower(), message="bob is blocked")
        rpc = JsonRpc(proxy.url)
        results = rpc.batch(
            [
                ("eth_sendRawTransaction", [signed_transfer(alice, 0, carol.address)]),
                ("eth_sendRawTransaction", [signed_transfer(bob, 0, carol.address)]),
            ]
        )
        assert isinstance(results[0], str) and results[0].startswith("0x")
        assert isinstance(results[1], JsonRpcError) and "bob is blocked" in str(results[1])
        assert rpc.call("eth_getTransactionCount", alice.address, "latest") == "0x1"
        assert rpc.call("eth_getTransactionCount", bob.address, "latest") == "0x0"

        proxy.accept_sender(bob.address)
        rpc.call("eth_sendRawTransaction", signed_transfer(bob, 0, carol.address))
        assert rpc.call("eth_getTransactionCount", bob.address, "latest") == "0x1"


def test_dropped_transaction_gets_a_hash_but_never_lands(anvil: Anvil) -> None:
    alice, carol = WALLETS.wallet(1), WALLETS.wallet(3)
    with RpcProxy(anvil.rpc_url) as proxy:
        proxy.drop_transactions(1)
        rpc = JsonRpc(proxy.url)
        tx_hash = rpc.call("eth_sendRawTransaction", signed_transfer(alice, 0, carol.address))
        assert proxy.dropped == [tx_hash]
        assert rpc.call("eth_getTransactionByHash", tx_hash) is None
        assert rpc.call("eth_getTransactionCount", alice.address, "latest") == "0x0"

        second = rpc.call("eth_sendRawTransaction", signed_transfer(alice, 0, carol.address))
        assert second == tx_hash  # the same signed tx, now forwarded
        assert rpc.call("eth_getTransactionReceipt", second)["status"] == "0x1"


def test_drop_only_one_senders_transactions(anvil: Anvil) -> None:
    alice, bob, carol = WALLETS.wallets(1, 4)
    with RpcProxy(anvil.rpc_url) as proxy:
        proxy.drop_transactions(5, sender=bob.address)
        rpc = JsonRpc(proxy.url)
        rpc.call("eth_sendRawTransaction", signed_transfer(alice, 0, carol.address))
        bob_hash = rpc.call("eth_sendRawTransaction", signed_transfer(bob, 0, carol.address))
        assert proxy.dropped == [bob_hash]
        assert rpc.call("eth_getTransactionCount", alice.address, "latest") == "0x1"
        assert rpc.call("eth_getTransactionCount", bob.address, "latest") == "0x0"


def test_outage_drops_connections_then_recovers(anvil: Anvil) -> None:
    with RpcProxy(anvil.rpc_url) as proxy:
        proxy.outage(0.6)
        with pytest.raises(RpcUnavailableError, match=r"127\.0\.0\.1"):
            JsonRpc(proxy.url, timeout=1, retries=0).call("eth_chainId")
        started = time.monotonic()
        # Retries with backoff ride out the outage.
        assert JsonRpc(proxy.url, timeout=1, retries=5, backoff=0.1).call("eth_chainId") == "0x7a69"
        assert time.monotonic() - started < 5


def test_stop_frees_the_port(anvil: Anvil) -> None:
    proxy = RpcProxy(anvil.rpc_url).start()
    url = proxy.url
    proxy.stop()
    with pytest.raises(RpcUnavailableError):
        JsonRpc(url, timeout=1, retries=0).call("eth_chainId")
