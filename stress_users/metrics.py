"""River and chain calls as Locust request events, plus this process's error tally.

Every call a root or follower makes is reported to Locust's statistics:

- request type "river" for River node RPCs, named by the RPC (`CreateStream`, `AddEvent`,
  `GetStream`, ...), failures carrying the River error name (`PERMISSION_DENIED`, ...);
- request type "chain" for every Base chain JSON-RPC exchange, named by its method
  (`eth_call`, `eth_sendRawTransaction`, "batch eth_call", ...), plus "mint_all" for the root's
  whole minting step;
- request type "delivery", name "message": how long a message took from its sender
  (`created_at_ms` in the event) to another user's sync;
- request type "signal", name "MEMBERSHIPS_MINTED": from the master's send to the follower's
  release (same clock only when master and worker share a host);
- request type "phase", names "join" and "check-in": a follower's whole join step.

Names are kept to a fixed, small set so the statistics tables stay readable at any scale.
`ErrorTally` counts failures by error name in this process, for the worker's summary and the
PERMISSION_DENIED rule of the exit code.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

RIVER = "river"
CHAIN = "chain"
DELIVERY = "delivery"
SIGNAL = "signal"
PHASE = "phase"
PERMISSION_DENIED = "PERMISSION_DENIED"
CHAIN_POOL = 256


class ReportedError(Exception):
    """A failure as Locust shows it: the error name first, so the failures table groups well."""

    def __init__(self, name: str, detail: str = "") -> None:
        super().__init__(f"{name}: {detail}" if detail else name)
        self.name = name


def error_name(error: BaseException) -> str:
    """River's error name when there is one (RiverError.name), else the exception's class."""
    name = getattr(error, "name", None)
    if isinstance(name, str) and name:
        return name
    return type(error).__name__


class ErrorTally:
    """Failures seen in this process, by error name."""

    def __init__(self) -> None:
        self.by_name: Counter[str] = Counter()

    def add(self, name: str) -> None:
        self.by_name[name] += 1

    @property
    def permission_denied(self) -> int:
        return self.by_name[PERMISSION_DENIED]

    def as_dict(self) -> dict[str, int]:
        return dict(self.by_name)


errors = ErrorTally()


class Reporter:
    """Fires request events on one Locust environment; the callbacks RiverClient accepts."""

    def __init__(self, environment: Any) -> None:
        self._fire = environment.events.request.fire

    def record(
        self, kind: str, name: str, elapsed_ms: float, error: BaseException | None = None
    ) -> None:
        exception: Exception | None = None
        if error is not None:
            label = error_name(error)
            errors.add(label)
            exception = ReportedError(label, str(error)[:200])
        self._fire(
            request_type=kind,
            name=name,
            response_time=elapsed_ms,
            response_length=0,
            exception=exception,
            context={},
        )

    def on_call(self, kind: str, name: str, elapsed_ms: float, error: BaseException | None) -> None:
        """RiverClient's hook: one event per RPC."""
        self.record(kind or RIVER, name, elapsed_ms, error)

    def delivery(self, created_at_ms: float, now_ms: float | None = None) -> None:
        seen = time.time() * 1000.0 if now_ms is None else now_ms
        self.record(DELIVERY, "message", max(0.0, seen - created_at_ms))

    def chain_session(self) -> Any:
        """A requests Session for `wallet_tools.rpc.JsonRpc` that reports every HTTP exchange
        as a "chain" request named by its JSON-RPC method ("batch <method>" for batches)."""
        import requests

        session = requests.Session()
        # One session serves every follower of the process: keep a connection per follower.
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=CHAIN_POOL)
        session.mount("http://", adapter)
        session.mount("https://", adapter)

        def report(response: Any, *_args: Any, **_kwargs: Any) -> None:
            name, error = _json_rpc_name(response.request.body), None
            if response.status_code >= 400:
                error = ReportedError(f"HTTP_{response.status_code}", name)
            self.record(CHAIN, name, response.elapsed.total_seconds() * 1e3, error)

        session.hooks["response"].append(report)
        return session

    def timed(self, kind: str, name: str) -> _Timed:
        """`with reporter.timed("chain", "membership_status"):` reports the block's duration."""
        return _Timed(self, kind, name)


def _json_rpc_name(body: Any) -> str:
    try:
        payload = json.loads(body)
    except (TypeError, ValueError):
        return "unknown"
    if isinstance(payload, list):
        methods = Counter(str(item.get("method")) for item in payload if isinstance(item, dict))
        return f"batch {methods.most_common(1)[0][0]}" if methods else "batch"
    return str(payload.get("method", "unknown")) if isinstance(payload, dict) else "unknown"


class _Timed:
    def __init__(self, reporter: Reporter, kind: str, name: str) -> None:
        self.reporter, self.kind, self.name = reporter, kind, name
        self.started = 0.0

    def __enter__(self) -> _Timed:
        self.started = time.perf_counter()
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        elapsed = (time.perf_counter() - self.started) * 1000.0
        if exc is None or isinstance(exc, Exception):
            self.reporter.record(self.kind, self.name, elapsed, exc)
