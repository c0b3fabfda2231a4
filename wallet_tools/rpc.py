"""A small Ethereum JSON-RPC 2.0 client over plain `requests`, with batches and retries.

Spec: JSON-RPC 2.0 (https://www.jsonrpc.org/specification), including batch requests, and the
Ethereum execution API method names. It uses `requests` only, so it cooperates with gevent once
the process is monkey-patched (as under Locust).

    rpc = JsonRpc("http://127.0.0.1:8545")
    rpc.call("eth_chainId")                                    # '0x7a69'
    rpc.batch([("eth_getBalance", [a, "latest"]) for a in addresses])

`batch` sends one HTTP request and returns one item per call, in order: the result, or a
JsonRpcError instance for a call that failed on its own. Connection failures, timeouts and
HTTP 429/5xx are retried with exponential backoff, then raise RpcUnavailableError naming the
URL.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlparse

import requests

from wallet_tools.exceptions import (
    InvalidRpcUrlError,
    JsonRpcError,
    RpcError,
    RpcUnavailableError,
)

logger = logging.getLogger(__name__)

RETRIABLE_STATUS = {429, 500, 502, 503, 504}


def check_rpc_url(url: str) -> str:
    """Return url if it is an http(s) URL with a host, else raise InvalidRpcUrlError."""
    parsed = urlparse(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise InvalidRpcUrlError(
            f"RPC URL {url!r} is not an http:// or https:// URL with a host "
            "(for example https://sepolia.base.org)"
        )
    return url.strip()


def redact_url(url: str) -> str:
    """The URL without user info or query (API keys often live there)."""
    parsed = urlparse(url)
    host = parsed.hostname or ""
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{host}{port}{parsed.path}"


class JsonRpc:
    """A JSON-RPC endpoint. Thread-safe; one keep-alive session per instance."""

    def __init__(
        self,
        url: str,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.25,
        session: requests.Session | None = None,
    ) -> None:
        self.url = check_rpc_url(url)
        self.display_url = redact_url(self.url)
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._session = session or requests.Session()
        self._ids = itertools.count(1)
        self._id_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"JsonRpc({self.display_url!r})"

    def _next_id(self) -> int:
        with self._id_lock:
            return next(self._ids)

    def _post(self, payload: object) -> Any:
        """POST payload, retrying transport failures; returns the decoded JSON body."""
        attempt = 0
        while True:
            try:
                reply = self._session.post(self.url, json=payload, timeout=self.timeout)
                if reply.status_code in RETRIABLE_STATUS:
                    raise RpcUnavailableError(
                        f"{self.display_url} answered HTTP {reply.status_code}",
                        url=self.display_url,
                    )
                if reply.status_code >= 400 and not reply.content:
                    raise RpcError(
                        f"{self.display_url} answered HTTP {reply.status_code} with no body",
                        url=self.display_url,
                    )
                try:
                    return reply.json()
                except ValueError:
                    raise RpcError(
                        f"{self.display_url} did not answer with JSON "
                        f"(HTTP {reply.status_code}, {reply.content[:80]!r}); is it a JSON-RPC "
                        "endpoint?",
                        url=self.display_url,
                    ) from None
            except (requests.ConnectionError, requests.Timeout, RpcUnavailableError) as error:
                attempt += 1
                if attempt > self.retries:
                    reason = (
                        error if isinstance(error, RpcUnavailableError) else type(error).__name__
                    )
                    raise RpcUnavailableError(
                        f"RPC endpoint {self.display_url} did not answer after "
                        f"{attempt} attempts ({reason})",
                        url=self.display_url,
                    ) from error
                delay = self.backoff * 2 ** (attempt - 1)
                logger.info(
                    "retrying %s in %.2f s (%s)", self.display_url, delay, type(error).__name__
                )
                time.sleep(delay)
            except requests.RequestException as error:
                raise RpcUnavailableError(
                    f"RPC endpoint {self.display_url} failed: {type(error).__name__}",
                    url=self.display_url,
                ) from error

    def _unwrap(self, method: str, item: Any) -> Any:
        if not isinstance(item, dict):
            return RpcError(
                f"{method}: malformed reply from {self.display_url}", url=self.display_url
            )
        if "error" in item and item["error"] is not None:
            error = item["error"]
            if not isinstance(error, dict):
                return JsonRpcError(method, -32603, str(error), url=self.display_url)
            return JsonRpcError(
                method,
                int(error.get("code", -32603)),
                str(error.get("message", "")),
                error.get("data"),
                url=self.display_url,
            )
        if "result" not in item:
            return RpcError(
                f"{method}: reply from {self.display_url} has neither result nor error",
                url=self.display_url,
            )
        return item["result"]

    def call(self, method: str, *params: object) -> Any:
        """One call; returns its result or raises JsonRpcError / RpcUnavailableError."""
        request_id = self._next_id()
        body = self._post(
            {"jsonrpc": "2.0", "id": request_id, "method": method, "params": list(params)}
        )
        result = self._unwrap(method, body)
        if isinstance(result, RpcError):
            raise result
        return result

    def _single(self, method: str, params: Sequence[object]) -> Any:
        try:
            return self.call(method, *params)
        except JsonRpcError as error:
            return error

    def batch(self, calls: Sequence[tuple[str, Sequence[object]]]) -> list[Any]:
        """Many calls in one HTTP request; each item is a result or a JsonRpcError/RpcError."""
        if not calls:
            return []
        ids = [self._next_id() for _ in calls]
        payload = [
            {"jsonrpc": "2.0", "id": request_id, "method": method, "params": list(params)}
            for request_id, (method, params) in zip(ids, calls, strict=True)
        ]
        body = self._post(payload)

        if isinstance(body, dict):
            # An endpoint without batch support answers with one object: ask one at a time.
            logger.info(
                "%s answered a batch with one object; sending calls singly", self.display_url
            )
            return [self._single(method, params) for method, params in calls]
        if not isinstance(body, list):
            raise RpcError(
                f"{self.display_url} answered a batch with {type(body).__name__}",
                url=self.display_url,
            )

        by_id = {item.get("id"): item for item in body if isinstance(item, dict)}
        results: list[Any] = []
        for request_id, (method, _params) in zip(ids, calls, strict=True):
            if request_id in by_id:
                results.append(self._unwrap(method, by_id[request_id]))
            else:
                results.append(
                    RpcError(
                        f"{method}: no reply in the batch from {self.display_url}",
                        url=self.display_url,
                    )
                )
        return results

    def close(self) -> None:
        self._session.close()
