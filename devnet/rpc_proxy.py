"""A JSON-RPC fault proxy for tests: sits in front of a chain node and injects failures.

It forwards JSON-RPC 2.0 requests (single or batch) from 127.0.0.1 to an upstream node such as
anvil, and on demand:

- `reject_sender(address)`: answers `eth_sendRawTransaction` of transactions signed by that
  address with a JSON-RPC error (the sender is recovered from the raw transaction);
- `drop_transactions(n, sender=None)`: answers the next n `eth_sendRawTransaction` (of that
  sender, if given) with the transaction's hash but never forwards them, as a node that loses
  a transaction would;
- `outage(seconds)`: for that long, closes every connection without answering.

Every method seen is logged in `.requests`, in order.

    with RpcProxy(anvil.rpc_url) as proxy:
        proxy.reject_sender("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")
        run_something_against(proxy.url)
        assert "eth_sendRawTransaction" in proxy.requests

The server is thread based (one thread per connection) and is shut down by `stop()` or at the
end of the `with` block.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests
from eth_account import Account
from eth_hash.auto import keccak
from eth_utils import to_checksum_address

from devnet.processes import Lifecycle

logger = logging.getLogger(__name__)

REJECTED_CODE = -32003


class RpcProxy(Lifecycle):
    """A fault-injecting JSON-RPC proxy on 127.0.0.1 (a free port) in front of upstream_url."""

    def __init__(self, upstream_url: str, timeout: float = 30.0) -> None:
        self.upstream_url = upstream_url
        self.timeout = timeout
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._rejected: dict[str, str] = {}
        self._drops_left: dict[str | None, int] = {}
        self.dropped: list[str] = []
        self._outage_until = 0.0
        self._local = threading.local()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- faults --------------------------------------------------------------------------------

    def reject_sender(
        self, address: str, message: str = "transaction rejected by the fault proxy"
    ) -> None:
        """Answer eth_sendRawTransaction from this sender with a JSON-RPC error."""
        with self._lock:
            self._rejected[to_checksum_address(address)] = message

    def accept_sender(self, address: str) -> None:
        """Undo reject_sender."""
        with self._lock:
            self._rejected.pop(to_checksum_address(address), None)

    def drop_transactions(self, count: int, sender: str | None = None) -> None:
        """Swallow the next `count` raw transactions (of `sender` only, if given)."""
        key = to_checksum_address(sender) if sender else None
        with self._lock:
            self._drops_left[key] = count

    def outage(self, seconds: float) -> None:
        """For `seconds` from now, close every connection without answering."""
        with self._lock:
            self._outage_until = time.monotonic() + seconds

    def in_outage(self) -> bool:
        with self._lock:
            return time.monotonic() < self._outage_until

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the proxy has not been started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> RpcProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                proxy._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="rpc-proxy", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    # -- request handling ----------------------------------------------------------------------

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length)
        if self.in_outage():
            handler.close_connection = True
            return

        try:
            payload = json.loads(body)
        except ValueError:
            self._reply(
                handler, 200, {"jsonrpc": "2.0", "id": None, "error": _error(-32700, "parse error")}
            )
            return

        items = payload if isinstance(payload, list) else [payload]
        answered: dict[int, dict[str, Any]] = {}
        forward: list[tuple[int, Any]] = []
        for position, item in enumerate(items):
            method = item.get("method") if isinstance(item, dict) else None
            with self._lock:
                self.requests.append(str(method))
            synthetic = self._intercept(item) if method == "eth_sendRawTransaction" else None
            if synthetic is not None:
                answered[position] = synthetic
            else:
                forward.append((position, item))

        if forward:
            try:
                upstream = self._forward(
                    [item for _, item in forward], batch=isinstance(payload, list)
                )
            except requests.RequestException as error:
                logger.info("upstream %s failed: %s", self.upstream_url, type(error).__name__)
                handler.close_connection = True
                self._reply(handler, 502, {"error": f"upstream failed: {type(error).__name__}"})
                return
            replies = upstream if isinstance(upstream, list) else [upstream]
            by_id = {json.dumps(r.get("id")): r for r in replies if isinstance(r, dict)}
            for position, item in forward:
                key = json.dumps(item.get("id") if isinstance(item, dict) else None)
                answered[position] = by_id.get(key) or {
                    "jsonrpc": "2.0",
                    "id": None,
                    "error": _error(-32603, "no upstream reply"),
                }

        ordered = [answered[i] for i in range(len(items))]
        self._reply(handler, 200, ordered if isinstance(payload, list) else ordered[0])

    def _intercept(self, item: dict[str, Any]) -> dict[str, Any] | None:
        """A synthetic reply for a raw transaction, or None to forward it."""
        params = item.get("params") or []
        raw = params[0] if params else ""
        try:
            sender = Account.recover_transaction(raw)
        except Exception:  # not a decodable transaction: let the node judge it
            return None

        with self._lock:
            message = self._rejected.get(sender)
            key: str | None = sender if self._drops_left.get(sender) else None
            drop = message is None and self._drops_left.get(key, 0) > 0
            if drop:
                self._drops_left[key] -= 1
        if message is not None:
            return {"jsonrpc": "2.0", "id": item.get("id"), "error": _error(REJECTED_CODE, message)}
        if drop:
            tx_hash = "0x" + keccak(bytes.fromhex(raw.removeprefix("0x"))).hex()
            with self._lock:
                self.dropped.append(tx_hash)
            return {"jsonrpc": "2.0", "id": item.get("id"), "result": tx_hash}
        return None

    def _forward(self, items: list[Any], *, batch: bool) -> Any:
        reply = self._session().post(
            self.upstream_url, json=items if batch else items[0], timeout=self.timeout
        )
        return reply.json()

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)


def _error(code: int, message: str) -> dict[str, Any]:
    return {"code": code, "message": message}
