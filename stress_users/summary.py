"""The end of a run: each worker's `Done` summary and the master's run summary.

Worker side (`post_done`, called by the process's first user, or by the user that takes
over when Locust moves the first one elsewhere): once every follower of the process is done
or failed (or the chat phase ended long enough ago), it summarises the process (followers by
phase, check-ins its followers decrypted per channel, posts seen, errors by name), posts
`Done` with that summary as a reply in the kickoff's thread, and sends it to the master
(`towns_worker_summary`).

Master side (`run_summary`, `write_summary`): the whole run, from the followers' reported
phases, the workers' summaries, Locust's error table and the signal time: printed to the log,
and written as `<prefix>_summary.json` and `.txt` beside the CSV reports (or beside the HTML
report, or under `reports/`). `exit_code_for` applies the run's rule: non-zero when a follower
failed to join or any PERMISSION_DENIED happened.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import gevent

from stress_users.config import RunConfig
from stress_users.metrics import PERMISSION_DENIED, errors
from stress_users.progress import FINAL, WORKER_SUMMARY, RunProgress
from stress_users.signal import membership_signal
from stress_users.stalls import stalls

logger = logging.getLogger(__name__)

DONE_GRACE_S = 30.0
FAILED_EXIT_CODE = 1


def worker_summary(user: Any, config: RunConfig) -> dict[str, Any]:
    from stress_users import runtime

    return {
        "session_id": config.session_id,
        "worker": runtime.process_name(user.environment),
        "followers": runtime.tally.counts(),
        "failures": {str(slot): reason for slot, reason in runtime.tally.failures.items()},
        "check_ins": dict(runtime.check_ins),
        "messages_seen": dict(runtime.messages_seen),
        "errors": errors.as_dict(),
        "permission_denied": errors.permission_denied,
        "kickoff_not_decrypted": runtime.kickoffs_not_decrypted,
        "hub_stalls": stalls.as_dict(),
    }


def done_text(summary: dict[str, Any], config: RunConfig) -> str:
    followers = summary["followers"]
    check_ins = ", ".join(
        f"{channel[:10]}…={summary['check_ins'].get(channel, 0)}" for channel in config.channel_ids
    )
    error_text = ", ".join(f"{k}={v}" for k, v in sorted(summary["errors"].items())) or "none"
    return (
        f"Done {summary['worker']}: {followers['done']} done, {followers['failed']} failed; "
        f"check-ins per channel: {check_ins}; errors: {error_text}"
    )


def post_done(user: Any, config: RunConfig) -> None:
    """The process's first user: wait for its followers, then post and send the summary."""
    from stress_users import runtime

    deadline = time.time() + config.follower_signal_timeout_s + config.duration_s + DONE_GRACE_S
    outcome = membership_signal.outcome(config.session_id)
    if outcome is not None:
        deadline = min(deadline, outcome.chat_ends_at + DONE_GRACE_S)
    runner = user.environment.runner
    while time.time() < deadline and not (
        runtime.tally.all_final() and len(runtime.tally.phases) >= runner.user_count
    ):
        gevent.sleep(0.5)

    if runtime.tally.done_sent:
        return
    runtime.tally.done_sent = True
    summary = worker_summary(user, config)
    client, kickoff = user.client, user.kickoff
    if client is not None and kickoff is not None:
        try:
            client.post(config.announce_channel_id, done_text(summary, config), kickoff.event_id)
        except Exception as exc:
            logger.warning("could not post the Done summary: %s", exc)
    if runtime.is_worker():
        user.environment.runner.send_message(WORKER_SUMMARY, summary)
    else:
        runtime.progress.add_worker_summary("local", summary)
    logger.info("worker summary: %s", done_text(summary, config))


def permission_denied_count(environment: Any) -> int:
    total = 0
    for entry in environment.stats.errors.values():
        if PERMISSION_DENIED in str(entry.error):
            total += int(entry.occurrences)
    return total


def run_summary(environment: Any, progress: RunProgress) -> dict[str, Any]:
    counts = progress.counts()
    check_ins: dict[str, int] = {}
    for summary in progress.workers.values():
        for channel, count in summary.get("check_ins", {}).items():
            check_ins[channel] = max(check_ins.get(channel, 0), int(count))
    signal_at = progress.signal_sent_at
    first_stream = progress.first_stream_at
    return {
        "session_id": progress.session_id,
        "followers": progress.total,
        "phases": counts,
        "failures": {str(slot): reason for slot, reason in progress.failures().items()},
        "root": progress.root_phase,
        "minting": {
            "minted": progress.minted,
            "already_members": progress.already_members,
            "failed": progress.mint_failed,
            "total": progress.mint_total,
        },
        "signal": {
            "sent_at": signal_at,
            "ok": progress.signal_ok,
            "reason": progress.signal_reason,
        },
        "first_follower_stream_at": first_stream,
        "no_stream_before_signal": first_stream is None
        or (signal_at is not None and first_stream >= signal_at),
        "lost_workers": {node: slots for node, slots in progress.lost_workers.items()},
        "workers": progress.workers,
        "check_ins_per_channel": check_ins,
        "kickoff_not_decrypted": sum(
            int(w.get("kickoff_not_decrypted", 0)) for w in progress.workers.values()
        ),
        "permission_denied": permission_denied_count(environment),
        "master_hub_stalls": stalls.as_dict(),
        "requests": int(environment.stats.total.num_requests),
        "request_failures": int(environment.stats.total.num_failures),
        "duration_s": round(time.time() - progress.started_at, 1),
    }


def summary_text(summary: dict[str, Any]) -> str:
    phases = summary["phases"]
    lines = [
        f"Chat run {summary['session_id']}: {phases['joined']}/{summary['followers']} followers "
        f"joined, {phases['done']} done, {phases['failed']} failed, {phases['lost']} lost, "
        f"{phases['not_started'] + phases['waiting'] + phases['joining']} never joined, "
        f"{phases['chatting']} still chatting",
        f"  root: {summary['root']}; minting: {summary['minting']['minted']} minted, "
        f"{summary['minting']['already_members']} already members, "
        f"{summary['minting']['failed']} failed",
        f"  PERMISSION_DENIED: {summary['permission_denied']}; requests "
        f"{summary['requests']}, failures {summary['request_failures']}; no follower stream "
        f"before the signal: {summary['no_stream_before_signal']}",
        f"  check-ins per channel: {summary['check_ins_per_channel'] or 'none'}; followers "
        f"that reacted by the signal's kickoff id (kickoff not decrypted): "
        f"{summary['kickoff_not_decrypted']}",
        f"  master: {stall_text(summary.get('master_hub_stalls'))}",
    ]
    for node, slots in summary["lost_workers"].items():
        lines.append(f"  worker {node} vanished mid-run; followers lost: {sorted(slots)}")
    for slot, reason in sorted(summary["failures"].items())[:10]:
        lines.append(f"  follower {slot} failed: {reason}")
    for summary_of_worker in summary["workers"].values():
        lines.append(
            f"  {summary_of_worker['worker']}: {summary_of_worker['followers']}, "
            f"errors {summary_of_worker['errors'] or 'none'}; "
            f"{stall_text(summary_of_worker.get('hub_stalls'))}"
        )
    return "\n".join(lines)


def stall_text(found: dict[str, Any] | None) -> str:
    """A process's hub stalls (`stress_users.stalls`), or a note when it did not report them."""
    if not found:
        return "hub stalls not reported"
    return f"longest hub stall {found['worst_ms']:g} ms, {found['over_1s']} of 1 s or more"


def summary_paths(options: Any) -> tuple[Path, Path]:
    if getattr(options, "csv_prefix", None):
        prefix = Path(f"{options.csv_prefix}_summary")
    elif getattr(options, "html_file", None):
        prefix = (
            Path(options.html_file)
            .with_suffix("")
            .with_name(Path(options.html_file).stem + "_summary")
        )
    else:
        prefix = Path("reports") / "summary"
    return prefix.with_suffix(".json"), prefix.with_suffix(".txt")


def write_summary(options: Any, summary: dict[str, Any]) -> Path:
    json_path, text_path = summary_paths(options)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    text_path.write_text(summary_text(summary) + "\n")
    return json_path


def exit_code_for(summary: dict[str, Any]) -> int:
    phases = summary["phases"]
    unfinished = phases["not_started"] + phases["waiting"] + phases["joining"]
    failed_to_join = phases["failed"] + unfinished
    if failed_to_join or summary["permission_denied"]:
        return FAILED_EXIT_CODE
    return 0


def is_final(phase: str) -> bool:
    return phase in FINAL
