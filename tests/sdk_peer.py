"""The official Towns TypeScript SDK as an independent peer, driven from Python tests.

`SdkPeer` starts one long-lived `tsx tests/peer/peer.mts` process (the SDK import takes several
seconds, so one process serves a whole test session), sends it line-delimited JSON commands and
returns the parsed replies. The process runs in its own process group and is killed by its PID
when the peer stops, whatever happened. Bytes go to the peer as base64, keys and ids as hex;
the command set is documented in tests/peer/peer.mts and research/river-protocol.md §10.

Test modules get the session-wide peer with ``pytest_plugins = ("sdk_peer",)`` and the
``sdk_peer`` fixture::

    def test_envelope(sdk_peer: SdkPeer) -> None:
        sdk_peer.verify_envelope(envelope_bytes)  # raises SdkPeerError if the SDK refuses it

PYTEST_DONT_REWRITE: test modules import this module before pytest loads it as a plugin.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from devnet.processes import Lifecycle

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
PEER_SCRIPT = ROOT / "tests" / "peer" / "peer.mts"
TSX = ROOT / "node" / "node_modules" / ".bin" / "tsx"

JsonObject = dict[str, Any]


class SdkPeerError(Exception):
    """The SDK refused a command; `error` holds the peer's description of why.

    Fields of `error`: `message` always; `code` and `codeName` for the SDK's own checks (River
    `Err`, e.g. 21 BAD_EVENT_ID); `connectCode`, `rawMessage` and `riverError` (the
    `x-river-error` name) for errors a node returned to the SDK's RPC client.
    """

    def __init__(self, command: str, error: JsonObject) -> None:
        self.command = command
        self.error = error
        super().__init__(f"SDK peer command {command!r} failed: {error.get('message')}")

    @property
    def code(self) -> int | None:
        code = self.error.get("code")
        return code if isinstance(code, int) else None

    @property
    def river_error(self) -> str | None:
        name = self.error.get("riverError") or self.error.get("codeName")
        return name if isinstance(name, str) else None


class SdkPeerUnavailableError(RuntimeError):
    """The peer process could not be started or died; the message holds its last stderr lines."""


def b64(data: bytes) -> str:
    """Bytes as the peer (and protobuf JSON) expect them."""
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


def hex_key(key: bytes | str) -> str:
    """A private key as 0x-prefixed hex, from raw bytes or hex text."""
    if isinstance(key, bytes):
        return "0x" + key.hex()
    return key if key.startswith("0x") else "0x" + key


def wait(future: Future[JsonObject], timeout: float) -> JsonObject:
    """A peer reply; under gevent the wait yields, so greenlets (a client's sync) keep running."""
    gevent = sys.modules.get("gevent")
    if gevent is None:
        return future.result(timeout=timeout)
    deadline = time.monotonic() + timeout
    while not future.done() and time.monotonic() < deadline:
        gevent.sleep(0.005)
    return future.result(timeout=0)


class SdkPeer(Lifecycle):
    """One SDK peer process; a context manager that always kills the process on exit."""

    def __init__(self, startup_timeout: float = 90.0, env: dict[str, str] | None = None) -> None:
        self.startup_timeout = startup_timeout
        self.import_ms: int | None = None
        self._env = env
        self._process: subprocess.Popen[bytes] | None = None
        self._pending: dict[int, tuple[str, Future[JsonObject]]] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._ready: Future[JsonObject] = Future()
        self._stderr: deque[str] = deque(maxlen=60)

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self) -> SdkPeer:
        if not TSX.exists():
            raise SdkPeerUnavailableError(f"{TSX} is missing; run `make setup` to install it")
        env = {**os.environ, **(self._env or {})}
        self._process = subprocess.Popen(
            [str(TSX), str(PEER_SCRIPT)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        threading.Thread(target=self._read_stdout, name="sdk-peer-stdout", daemon=True).start()
        threading.Thread(target=self._read_stderr, name="sdk-peer-stderr", daemon=True).start()
        try:
            ready = self._ready.result(timeout=self.startup_timeout)
        except Exception as exc:
            self.stop()
            raise SdkPeerUnavailableError(
                f"SDK peer did not start within {self.startup_timeout} s: {exc}; "
                f"stderr tail:\n{self.stderr_tail()}"
            ) from exc
        self.import_ms = int(ready.get("importMs", 0))
        logger.info("SDK peer pid %s ready (SDK import %d ms)", self.pid, self.import_ms)
        return self

    def stop(self) -> None:
        """Close stdin, give the peer a moment to stop its clients, then kill its group."""
        process = self._process
        if process is None:
            return
        with contextlib.suppress(OSError):
            if process.stdin is not None:
                process.stdin.close()
        ready = self._ready.done() and self._ready.exception() is None
        if ready:  # a peer still importing the SDK does not read its stdin yet
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
        # A child forked while the first signal went out (tsx starting node) escapes it:
        # signal the group again until it is gone (or only zombies are left, for 2 s at most).
        for _ in range(20):
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                break
            time.sleep(0.1)
        self._fail_pending("the SDK peer was stopped")
        logger.info("SDK peer pid %s stopped", process.pid)

    def stderr_tail(self) -> str:
        return "\n".join(self._stderr)

    # Commands: raw form.

    def submit(self, command: str, **fields: Any) -> Future[JsonObject]:
        """Send a command without waiting; the future holds the result or an SdkPeerError."""
        process = self._process
        if process is None or process.stdin is None or process.poll() is not None:
            raise SdkPeerUnavailableError(f"SDK peer is not running; stderr:\n{self.stderr_tail()}")
        request_id = next(self._ids)
        future: Future[JsonObject] = Future()
        with self._lock:
            self._pending[request_id] = (command, future)
        line = json.dumps({"id": request_id, "cmd": command, **fields}) + "\n"
        try:
            process.stdin.write(line.encode())
            process.stdin.flush()
        except OSError as exc:
            with self._lock:
                self._pending.pop(request_id, None)
            raise SdkPeerUnavailableError(f"SDK peer closed its stdin: {exc}") from exc
        return future

    def request(self, command: str, timeout: float = 60.0, **fields: Any) -> JsonObject:
        """Send a command and wait for its result; raises SdkPeerError if the SDK refused."""
        return wait(self.submit(command, **fields), timeout)

    # Commands: typed helpers.

    def verify_envelope(self, envelope: bytes, *, check_hash: bool = True) -> JsonObject:
        """The SDK's `unpackEnvelope` on serialized Envelope bytes: event id, creator, payload."""
        return self.request(
            "verify-envelope", envelope=b64(envelope), disableHashValidation=not check_hash
        )

    def verify_miniblock(self, miniblock: bytes) -> JsonObject:
        return self.request("verify-miniblock", miniblock=b64(miniblock))

    def make_envelope(
        self,
        private_key: bytes | str,
        payload: JsonObject,
        *,
        delegate_private_key: bytes | str | None = None,
        expiry_epoch_ms: int | None = None,
        prev_miniblock_hash: bytes | None = None,
        prev_miniblock_num: int | None = None,
        tags: JsonObject | None = None,
        ephemeral: bool = False,
    ) -> JsonObject:
        """An envelope built and signed by the SDK's `makeEvent`; `envelope` is base64."""
        fields: JsonObject = {"privateKey": hex_key(private_key), "payload": payload}
        if delegate_private_key is not None:
            fields["delegatePrivateKey"] = hex_key(delegate_private_key)
        if expiry_epoch_ms is not None:
            fields["expiryEpochMs"] = str(expiry_epoch_ms)
        if prev_miniblock_hash is not None:
            fields["prevMiniblockHash"] = prev_miniblock_hash.hex()
        if prev_miniblock_num is not None:
            fields["prevMiniblockNum"] = str(prev_miniblock_num)
        if tags is not None:
            fields["tags"] = tags
        return self.request("make-envelope", ephemeral=ephemeral, **fields)

    def rpc(
        self,
        url: str,
        method: str,
        request: JsonObject | None = None,
        *,
        unpack: bool = False,
        retries: int = 0,
        codec: str = "binary",
        timeout: float = 60.0,
    ) -> JsonObject:
        """A StreamService call by the SDK's `makeStreamRpcClient` (camelCase method name);
        `codec="json"` speaks Connect JSON as the SDK does under RIVER_DEBUG_TRANSPORT=true."""
        return self.request(
            "rpc",
            timeout=timeout,
            url=url,
            method=method,
            request=request or {},
            unpack=unpack,
            retries=retries,
            codec=codec,
        )

    def init_user(
        self,
        url: str,
        private_key: bytes | str,
        space_id: str | None = None,
        *,
        timeout: float = 60.0,
    ) -> JsonObject:
        """A full SDK `Client` whose `initializeUser({spaceId})` ran; returns its `handle`."""
        return self.request(
            "init-user", timeout=timeout, url=url, privateKey=hex_key(private_key), spaceId=space_id
        )

    def create_space_and_channel(self, handle: str, space_id: str, channel_id: str) -> None:
        """The SDK client `handle` creates the space stream and a channel stream in it."""
        self.request("client-create-space", handle=handle, spaceId=space_id)
        self.request("client-create-channel", handle=handle, spaceId=space_id, channelId=channel_id)

    # Reader threads.

    def _read_stdout(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for raw in self._process.stdout:
            line = raw.decode(errors="replace").strip()
            if not line.startswith("{"):
                self._stderr.append(f"[stdout] {line}")
                continue
            try:
                reply = json.loads(line)
            except json.JSONDecodeError:
                self._stderr.append(f"[stdout] {line}")
                continue
            if reply.get("ready") is True and not self._ready.done():
                self._ready.set_result(reply)
                continue
            with self._lock:
                command, future = self._pending.pop(reply.get("id"), ("", None))
            if future is None:
                continue
            if reply.get("ok"):
                future.set_result(reply.get("result") or {})
            else:
                future.set_exception(SdkPeerError(command, reply.get("error") or {}))
        self._fail_pending("the SDK peer exited")

    def _read_stderr(self) -> None:
        assert self._process is not None and self._process.stderr is not None
        for raw in self._process.stderr:
            self._stderr.append(raw.decode(errors="replace").rstrip())

    def _fail_pending(self, reason: str) -> None:
        if not self._ready.done():
            self._ready.set_exception(SdkPeerUnavailableError(reason))
        with self._lock:
            pending = list(self._pending.values())
            self._pending.clear()
        for _command, future in pending:
            if not future.done():
                future.set_exception(
                    SdkPeerUnavailableError(f"{reason}; stderr tail:\n{self.stderr_tail()}")
                )


@pytest.fixture(scope="session")
def sdk_peer() -> Iterator[SdkPeer]:
    """One SDK peer for the whole test session, killed at teardown."""
    with SdkPeer() as peer:
        yield peer
