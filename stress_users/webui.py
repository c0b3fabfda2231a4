"""A "Chat run" tab in Locust's web UI: where the root and the followers are.

Uses the React UI's extension points (Locust 2.4x): `extended_tabs` and `extended_tables` in
the page's template arguments declare the tab and its columns, and every `/stats/requests`
answer (polled by the UI every few seconds) gets an `extended_stats` entry with the rows.
The same rows are served as JSON on `/chat-run` for scripts. Rows: the session, the root's
phase, minting progress, when the signal went out (and whether it succeeded), followers
waiting / joining / chatting / done / failed / lost, and the worker summaries received.

Only the master (or local process) has a web UI, and none with `--headless`.
"""

from __future__ import annotations

import json
import time
from typing import Any

from stress_users.progress import RunProgress

TAB_KEY = "chat_run"


def progress_rows(progress: RunProgress) -> list[dict[str, str]]:
    counts = progress.counts()
    signal = "not yet"
    if progress.signal_sent_at is not None:
        signal = time.strftime("%H:%M:%S", time.localtime(progress.signal_sent_at))
        after = progress.signal_sent_at - progress.started_at
        signal += f" (+{after:.1f} s, {'ok' if progress.signal_ok else progress.signal_reason})"
    rows = [
        ("session", progress.session_id or "-"),
        ("root", progress.root_phase),
        (
            "minting",
            f"{progress.minted}/{progress.mint_total} minted, "
            f"{progress.already_members} already members, {progress.mint_failed} failed",
        ),
        ("signal", signal),
    ]
    for phase in ("not_started", "waiting", "joining", "chatting", "done", "failed", "lost"):
        rows.append((f"followers {phase.replace('_', ' ')}", str(counts[phase])))
    rows.append(("followers joined", f"{counts['joined']}/{progress.total}"))
    rows.append(("worker summaries", str(len(progress.workers))))
    return [{"item": item, "value": value} for item, value in rows]


def install(web_ui: Any, progress: RunProgress) -> None:
    """Add the tab, the rows on `/stats/requests`, and `/chat-run`."""
    web_ui.template_args.setdefault("extended_tabs", []).append(
        {"title": "Chat run", "key": TAB_KEY}
    )
    web_ui.template_args.setdefault("extended_tables", []).append(
        {
            "key": TAB_KEY,
            "structure": [{"key": "item", "title": "Phase"}, {"key": "value", "title": "State"}],
        }
    )
    app = web_ui.app

    @app.after_request
    def add_chat_run(response: Any) -> Any:
        from flask import request

        if request.path.endswith("/stats/requests") and response.is_json:
            body = response.get_json()
            body.setdefault("extended_stats", []).append(
                {"key": TAB_KEY, "data": progress_rows(progress)}
            )
            response.set_data(json.dumps(body))
        return response

    @app.route("/chat-run")
    @web_ui.auth_required_if_enabled
    def chat_run() -> Any:
        from flask import jsonify

        return jsonify({"rows": progress_rows(progress), "counts": progress.counts()})
