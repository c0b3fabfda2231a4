"""The local stack from Python: anvil with the space contract, the dev node, a space with channels.

    with Stack(state_dir) as stack:          # or stack.start() ... stack.stop()
        env = stack.env                       # RIVER_NODE_URLS, BASE_CHAIN_RPC_URL, SPACE_ID, ...

`NodeProcess` runs one dev node (`python -m devnet.node`) as a subprocess in its own session,
logs to `<db>.log`, and is stopped by its PID (SIGTERM, or SIGKILL with `kill()`); `restart()`
brings it back on the same port and database. `Stack` starts the chain (devnet.chain), mints a
membership for the root wallet (HD index 0 of the devnet mnemonic), starts the node with the
root as its admin, and creates the space stream, its default channel (the announce channel) and
two more channels. `Stack.env` is the environment a stress run needs; `write_env` saves it as a
shell-sourceable file (`.devnet/env`).
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from devnet.anvil import PROJECT_ROOT, free_port
from devnet.processes import Lifecycle, kill_process, stop_process

if TYPE_CHECKING:
    from devnet.chain import ChainInfo

READY_PREFIX = "READY "


class StackError(RuntimeError):
    """A part of the local stack did not start; the message says which and where its log is."""


@dataclass
class NodeProcess(Lifecycle):
    """One dev node subprocess on 127.0.0.1; a context manager stopping it by PID."""

    db_path: Path
    rpc_url: str | None = None  # None: no chain checks (--no-chain)
    port: int = 0
    admins: tuple[str, ...] = ()
    options: tuple[str, ...] = ()  # more command-line options, e.g. ("--recency-seconds", "2")
    cpu: int | None = None  # pin to one CPU with taskset
    startup_timeout: float = 20.0
    process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    url: str = field(default="", init=False)
    node_address: str = field(default="", init=False)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def log_path(self) -> Path:
        return Path(str(self.db_path) + ".log")

    def command(self) -> list[str]:
        args = [sys.executable, "-m", "devnet.node", "--db", str(self.db_path)]
        args += ["--port", str(self.port)]
        args += ["--rpc-url", self.rpc_url] if self.rpc_url else ["--no-chain"]
        for admin in self.admins:
            args += ["--admin", admin]
        args += list(self.options)
        if self.cpu is not None:
            args = ["taskset", "-c", str(self.cpu), *args]
        return args

    def start(self) -> NodeProcess:
        """Start the node and wait for its READY line; raises StackError with the log's tail."""
        if self.port == 0:
            self.port = free_port()
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        offset = log.tell()
        self.process = subprocess.Popen(
            self.command(),
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            cwd=PROJECT_ROOT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            with self.log_path.open("rb") as reader:
                reader.seek(offset)
                for line in reader.read().decode(errors="replace").splitlines():
                    if line.startswith(READY_PREFIX):
                        parts = line.split()
                        self.url, self.node_address = parts[1], parts[2].split("=", 1)[1]
                        return self
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        tail = self.log_path.read_text(errors="replace")[-2000:]
        raise StackError(f"dev node did not start (log {self.log_path}):\n{tail}")

    def stop(self) -> None:
        """SIGTERM by PID (clean shutdown), SIGKILL if it lingers."""
        process, self.process = self.process, None
        stop_process(process, timeout=10)

    def kill(self) -> None:
        """SIGKILL by PID: the crash case (nothing is flushed or closed)."""
        process, self.process = self.process, None
        kill_process(process)

    def restart(self) -> NodeProcess:
        """Start again on the same port and database (after stop() or kill())."""
        self.stop()
        return self.start()


def write_env(env: dict[str, str], path: Path) -> Path:
    """Save the environment as KEY='value' lines that a shell can source."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{key}={shlex.quote(value)}\n" for key, value in env.items()))
    return path


def read_env(path: Path) -> dict[str, str]:
    """Read a file written by write_env."""
    env = {}
    for line in path.read_text().splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            parts = shlex.split(value)
            env[key] = parts[0] if parts else ""
    return env


def create_space_streams(
    node_url: str, root_private_key: bytes, space_id: bytes, channels: int = 2
) -> tuple[bytes, list[bytes]]:
    """Create the space stream, its default (announce) channel and `channels` more channels,
    signed by the root wallet (an admin of the node); returns (announce id, channel ids).
    Streams that exist already are kept."""
    from river_client import ids
    from river_client.events import make_envelope
    from river_client.proto import protocol_pb2 as pb
    from river_client.signing import WalletSigner
    from river_client.transport import ConnectTransport

    root = WalletSigner(root_private_key)
    transport = ConnectTransport(node_url, timeout=15.0)

    def create(stream_id: bytes, inception: object) -> None:
        join = pb.MemberPayload(
            membership=pb.MemberPayload.Membership(
                op=pb.MembershipOp.SO_JOIN,
                user_address=root.creator_address,
                initiator_address=root.creator_address,
            )
        )
        events = [make_envelope(root, inception), make_envelope(root, join)]  # type: ignore[arg-type]
        request = pb.CreateStreamRequest(stream_id=stream_id, events=events)
        transport.call("CreateStream", request, pb.CreateStreamResponse)

    try:
        create(space_id, pb.SpacePayload(inception=pb.SpacePayload.Inception(stream_id=space_id)))
        announce = ids.default_channel_stream_id(space_id)
        channel_ids = [ids.make_channel_stream_id(space_id) for _ in range(channels)]
        for channel_id in [announce, *channel_ids]:
            inception = pb.ChannelPayload.Inception(stream_id=channel_id, space_id=space_id)
            create(channel_id, pb.ChannelPayload(inception=inception))
    finally:
        transport.close()
    return announce, channel_ids


class Stack(Lifecycle):
    """anvil + space contract + dev node + space streams, all on 127.0.0.1.

    A fresh start every time (`start()` removes the node database of `state_dir`), since the
    chain starts fresh too. Stop with `stop()`, or leave it running and use `stop_by_pids`.
    """

    def __init__(
        self,
        state_dir: Path = Path(".devnet"),
        *,
        block_time: float = 2.0,
        automine: bool = False,
        channels: int = 2,
        node_options: tuple[str, ...] = (),
    ) -> None:
        self.state_dir = Path(state_dir)
        self.block_time = block_time
        self.automine = automine
        self.channels = channels
        self.node_options = node_options
        self.node: NodeProcess | None = None
        self.chain: ChainInfo | None = None
        self.env: dict[str, str] = {}

    def start(self) -> Stack:
        from devnet.chain import DEVNET_MNEMONIC, start_chain
        from river_client.chain.membership import SpaceContract
        from wallet_tools.derivation import HDWallets
        from wallet_tools.rpc import JsonRpc

        db_path = self.state_dir / "node.sqlite"
        for stale in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm")):
            stale.unlink(missing_ok=True)
        self.chain = start_chain(
            block_time=self.block_time, automine=self.automine, state_dir=self.state_dir
        )
        try:
            root = HDWallets(DEVNET_MNEMONIC).wallet(0)
            space = SpaceContract(JsonRpc(self.chain.rpc_url), self.chain.space_address)
            if not space.status(root.address).active:
                space.mint(root.address, root.private_key)
            self.node = NodeProcess(
                db_path,
                rpc_url=self.chain.rpc_url,
                admins=(root.address,),
                options=self.node_options,
            ).start()
            space_id = bytes.fromhex(self.chain.space_id)
            announce, channel_ids = create_space_streams(
                self.node.url, root.private_key, space_id, self.channels
            )
        except BaseException:
            self.stop()
            raise
        self.env = {
            "RIVER_ENV": "local",
            "RIVER_NODE_URLS": self.node.url,
            "BASE_CHAIN_RPC_URL": self.chain.rpc_url,
            "SPACE_ID": self.chain.space_id,
            "ANNOUNCE_CHANNEL_ID": announce.hex(),
            "CHANNEL_IDS": ",".join(c.hex() for c in channel_ids),
            "MNEMONIC": DEVNET_MNEMONIC,
        }
        write_env(self.env, self.state_dir / "env")
        return self

    @property
    def pids(self) -> dict[str, int | None]:
        return {
            "anvil": self.chain.pid if self.chain else None,
            "node": self.node.pid if self.node else None,
        }

    def stop(self) -> None:
        """Stop the node and anvil by their PIDs."""
        if self.node is not None:
            self.node.stop()
        if self.chain is not None and self.chain.anvil is not None:
            self.chain.anvil.stop()
