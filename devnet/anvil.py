"""Start and stop a local anvil node (Foundry's EVM dev chain) bound to 127.0.0.1.

The binary comes from the npm package `@foundry-rs/anvil-linux-amd64`, installed by
`make setup` under `node/node_modules`; `ANVIL_BIN` overrides where it is looked for.

    with Anvil(block_time=2) as chain:
        print(chain.rpc_url)

The process is always stopped by its PID, whatever happens in the `with` block.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import requests

from devnet.processes import Lifecycle, stop_process

PROJECT_ROOT = Path(__file__).resolve().parents[1]
NPM_ANVIL = PROJECT_ROOT / "node" / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin"
DEFAULT_MNEMONIC = "test test test test test test test test test test test junk"


class AnvilError(RuntimeError):
    """anvil could not be found, or did not start answering in time."""


def find_anvil() -> Path:
    """Locate the anvil binary: `ANVIL_BIN`, then the npm install, then the PATH."""
    candidates = []
    if os.environ.get("ANVIL_BIN"):
        candidates.append(Path(os.environ["ANVIL_BIN"]))
    candidates.append(NPM_ANVIL / "anvil")
    on_path = shutil.which("anvil")
    if on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise AnvilError(
        f"anvil not found (looked at {', '.join(str(c) for c in candidates)}); "
        "run `make setup` to install it from npm, or set ANVIL_BIN"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Anvil(Lifecycle):
    """One anvil process on 127.0.0.1; a context manager that stops it by PID on exit."""

    def __init__(
        self,
        *,
        block_time: float | None = None,
        mnemonic: str = DEFAULT_MNEMONIC,
        accounts: int = 10,
        balance_eth: int = 10_000,
        chain_id: int | None = None,
        port: int | None = None,
        extra_args: tuple[str, ...] = (),
        startup_timeout: float = 15.0,
    ) -> None:
        self.block_time = block_time
        self.mnemonic = mnemonic
        self.accounts = accounts
        self.balance_eth = balance_eth
        self.chain_id = chain_id
        self.port = port
        self.extra_args = extra_args
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None

    @property
    def rpc_url(self) -> str:
        if self.port is None:
            raise AnvilError("anvil has not been started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def command(self, port: int) -> list[str]:
        args = [
            str(find_anvil()),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--accounts",
            str(self.accounts),
            "--balance",
            str(self.balance_eth),
            "--mnemonic",
            self.mnemonic,
        ]
        if self.block_time is not None:
            args += ["--block-time", str(self.block_time)]
        if self.chain_id is not None:
            args += ["--chain-id", str(self.chain_id)]
        return args + list(self.extra_args)

    def start(self) -> Anvil:
        """Launch anvil and wait until it answers `eth_chainId`; retries once on a port race."""
        for _attempt in range(3):
            port = self.port or free_port()
            with tempfile.NamedTemporaryFile(prefix="anvil-", suffix=".log", delete=False) as log:
                self.log_path = Path(log.name)
                self.process = subprocess.Popen(
                    self.command(port), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            self.port = port
            if self._wait_until_answering():
                return self
            self.stop()
            self.port = None
        raise AnvilError(
            f"anvil did not answer within {self.startup_timeout} s; log: {self.log_path}"
        )

    def _wait_until_answering(self) -> bool:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            try:
                reply = requests.post(
                    self.rpc_url,
                    json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
                    timeout=1,
                )
                if reply.ok and "result" in reply.json():
                    return True
            except requests.RequestException:
                pass
            time.sleep(0.02)
        return False

    def stop(self) -> None:
        """Stop the process by its PID: SIGTERM, then SIGKILL if it lingers."""
        process, self.process = self.process, None
        stop_process(process, timeout=5)

    def rpc(self, method: str, *params: object) -> object:
        """One JSON-RPC call; raises on a JSON-RPC error."""
        reply = requests.post(
            self.rpc_url,
            json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)},
            timeout=10,
        ).json()
        if "error" in reply:
            raise AnvilError(f"{method} failed: {reply['error']}")
        return reply["result"]
