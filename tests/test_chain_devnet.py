"""The local chain: `start_chain()` and `python -m devnet chain`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from devnet.anvil import PROJECT_ROOT
from devnet.chain import DEVNET_MNEMONIC, ChainInfo, start_chain
from devnet.contracts import load_artifact
from river_client.chain.membership import SpaceContract
from river_client.chain.minting import MintingEngine
from river_client.chain.spaces import space_address_from_id, space_id_from_address
from wallet_tools.derivation import HDWallets
from wallet_tools.rpc import JsonRpc


def test_start_chain_deploys_the_space_and_writes_chain_json(tmp_path: Path) -> None:
    info = start_chain(automine=True, state_dir=tmp_path)
    try:
        saved = json.loads((tmp_path / "chain.json").read_text())
        assert saved == info.to_json()
        assert ChainInfo.load(tmp_path).space_address == info.space_address
        assert saved["rpc_url"].startswith("http://127.0.0.1:")
        assert saved["chain_id"] == 31337 and saved["pid"] == info.anvil.pid  # type: ignore[union-attr]
        assert space_id_from_address(info.space_address) == info.space_id
        assert space_address_from_id(info.space_id) == info.space_address
        assert info.default_channel_id == "20" + info.space_id[2:]

        rpc = JsonRpc(info.rpc_url)
        runtime = load_artifact("SpaceMembership")["deployedBytecode"]
        assert rpc.call("eth_getCode", info.space_address, "latest") == runtime
        wallets = HDWallets(DEVNET_MNEMONIC)
        root = wallets.wallet(0)
        assert info.root_address == root.address
        assert int(rpc.call("eth_getBalance", root.address, "latest"), 16) >= 10_000 * 10**18
        # The root's nonces are untouched by the setup: its first mint uses nonce 0.
        assert rpc.call("eth_getTransactionCount", root.address, "latest") == "0x0"

        report = MintingEngine(rpc, info.space_address, root.private_key).mint_all(
            wallets.addresses(1, 4)
        )
        assert len(report.minted) == 3
        assert SpaceContract(rpc, info.space_address).status(wallets.wallet(1).address).active
    finally:
        assert info.anvil is not None
        info.anvil.stop()


def test_command_line_starts_a_chain_with_blocks(tmp_path: Path) -> None:
    command = ["chain", "--block-time", "1", "--state-dir", str(tmp_path), "--detach"]
    done = subprocess.run(
        [sys.executable, "-m", "devnet", *command],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    info = ChainInfo.load(tmp_path)
    assert info.pid is not None and info.block_time == 1.0
    try:
        assert json.loads(done.stdout)["space_id"] == info.space_id
        rpc = JsonRpc(info.rpc_url)
        first = int(rpc.call("eth_blockNumber"), 16)
        deadline = time.monotonic() + 3
        while int(rpc.call("eth_blockNumber"), 16) == first and time.monotonic() < deadline:
            time.sleep(0.05)
        assert int(rpc.call("eth_blockNumber"), 16) > first  # blocks come without transactions
    finally:
        os.kill(info.pid, signal.SIGTERM)


def test_devnet_help_lists_the_chain_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "devnet", "--help"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert "chain" in done.stdout
