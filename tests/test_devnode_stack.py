"""`python -m devnet up|status|down`: the whole local stack in the background, by command.

`up` must leave anvil and the dev node running after it returns, print the environment of a
run and write it shell-sourceable; the space and its channels must exist on the node, the root
wallet must be a member on the chain; `down` stops both processes by PID.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from devnet.anvil import PROJECT_ROOT
from devnet.stack import read_env
from river_client.chain.membership import SpaceContract
from river_client.proto import protocol_pb2 as pb
from river_client.transport import ConnectTransport
from wallet_tools.derivation import HDWallets
from wallet_tools.rpc import JsonRpc


def devnet(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devnet", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_up_status_down(tmp_path: Path) -> None:
    state = tmp_path / "stack"
    try:
        up = devnet("up", "--state-dir", str(state), "--automine")
        assert up.returncode == 0, up.stderr[-2000:]
        printed = dict(
            line.split("=", 1) for line in up.stdout.splitlines() if "=" in line and line[0] != "#"
        )
        env = read_env(state / "env")
        assert env == printed
        assert set(env) >= {
            "RIVER_NODE_URLS", "BASE_CHAIN_RPC_URL", "SPACE_ID", "CHANNEL_IDS",
            "ANNOUNCE_CHANNEL_ID", "MNEMONIC", "RIVER_ENV",
        }  # fmt: skip
        assert len(env["CHANNEL_IDS"].split(",")) == 2

        status = devnet("status", "--state-dir", str(state))
        assert status.returncode == 0, status.stdout
        assert "running" in status.stdout

        transport = ConnectTransport(env["RIVER_NODE_URLS"])
        try:
            for stream_id in [
                env["SPACE_ID"],
                env["ANNOUNCE_CHANNEL_ID"],
                *env["CHANNEL_IDS"].split(","),
            ]:
                reply = transport.call(
                    "GetStream",
                    pb.GetStreamRequest(stream_id=bytes.fromhex(stream_id)),
                    pb.GetStreamResponse,
                )
                assert reply.stream.next_sync_cookie.stream_id == bytes.fromhex(stream_id)
        finally:
            transport.close()
        root = HDWallets(env["MNEMONIC"]).wallet(0).address
        space = SpaceContract(JsonRpc(env["BASE_CHAIN_RPC_URL"]), "0x" + env["SPACE_ID"][2:42])
        assert space.status(root).active
    finally:
        down = devnet("down", "--state-dir", str(state))
    assert down.returncode == 0
    assert "stopped" in down.stdout
    assert devnet("status", "--state-dir", str(state)).returncode == 1
