"""SQLite storage of the dev node: streams' events and miniblocks, in WAL mode.

Every accepted event is a row (stream id, event number in the stream, envelope bytes); every
sealed miniblock is a row (number, hash, header envelope, snapshot envelope if it has one, and
the range of event numbers it covers). A stream's minipool is therefore the events after its
last miniblock's range, so sealing a block never rewrites event rows.

Writes are queued and written by `commit()` in one transaction (group commit). The node calls
it before acknowledging any of the queued writes, so an acknowledged event is in the WAL file.
With `synchronous=NORMAL` a WAL commit survives the process being killed (kill -9); only an
operating-system crash or power loss can lose the last commits. Checkpoints (copying the WAL
into the database file, with fsyncs) run every few seconds in a thread of their own, so the
event loop's commits never wait for one.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    stream_id BLOB NOT NULL,
    event_num INTEGER NOT NULL,
    envelope BLOB NOT NULL,
    PRIMARY KEY (stream_id, event_num)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS miniblocks (
    stream_id BLOB NOT NULL,
    num INTEGER NOT NULL,
    hash BLOB NOT NULL,
    created_ms INTEGER NOT NULL,
    event_num_offset INTEGER NOT NULL,
    event_count INTEGER NOT NULL,
    snapshot_num INTEGER NOT NULL,
    header BLOB NOT NULL,
    snapshot BLOB,
    PRIMARY KEY (stream_id, num)
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class MiniblockRow:
    """A sealed miniblock as stored; `snapshot_num`: the latest snapshot block up to it."""

    stream_id: bytes
    num: int
    hash: bytes
    created_ms: int
    event_num_offset: int
    event_count: int
    snapshot_num: int
    header: bytes
    snapshot: bytes | None


class Store:
    """The node's database; used from the node's event-loop thread only."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._events: list[tuple[bytes, int, bytes]] = []
        self._miniblocks: list[MiniblockRow] = []
        self._stop = threading.Event()
        self._checkpointer: threading.Thread | None = None
        if str(path) != ":memory:":
            self._db.execute("PRAGMA wal_autocheckpoint=0")
            self._checkpointer = threading.Thread(
                target=self._checkpoint_loop, name="wal-checkpoint", daemon=True
            )
            self._checkpointer.start()

    def _checkpoint_loop(self, interval: float = 2.0) -> None:
        db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        try:
            while not self._stop.wait(interval):
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as exc:
                    logger.warning("WAL checkpoint of %s failed: %s", self.path, exc)
        finally:
            db.close()

    # writes -----------------------------------------------------------------------------

    def queue_event(self, stream_id: bytes, event_num: int, envelope: bytes) -> None:
        self._events.append((stream_id, event_num, envelope))

    def queue_miniblock(self, row: MiniblockRow) -> None:
        self._miniblocks.append(row)

    @property
    def has_pending(self) -> bool:
        return bool(self._events or self._miniblocks)

    def commit(self) -> int:
        """Write every queued row in one transaction; returns how many rows were written."""
        events, self._events = self._events, []
        miniblocks, self._miniblocks = self._miniblocks, []
        if not events and not miniblocks:
            return 0
        db = self._db
        db.execute("BEGIN")
        try:
            if events:
                db.executemany(
                    "INSERT OR IGNORE INTO events (stream_id, event_num, envelope) VALUES (?,?,?)",
                    events,
                )
            if miniblocks:
                db.executemany(
                    "INSERT OR IGNORE INTO miniblocks (stream_id, num, hash, created_ms,"
                    " event_num_offset, event_count, snapshot_num, header, snapshot)"
                    " VALUES (?,?,?,?,?,?,?,?,?)",
                    [
                        (
                            r.stream_id,
                            r.num,
                            r.hash,
                            r.created_ms,
                            r.event_num_offset,
                            r.event_count,
                            r.snapshot_num,
                            r.header,
                            r.snapshot,
                        )
                        for r in miniblocks
                    ],
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return len(events) + len(miniblocks)

    def set_meta(self, key: str, value: bytes) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def get_meta(self, key: str) -> bytes | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return bytes(row[0]) if row else None

    # reads ------------------------------------------------------------------------------

    def stream_ids(self) -> list[bytes]:
        rows = self._db.execute("SELECT stream_id FROM miniblocks WHERE num = 0").fetchall()
        return [bytes(r[0]) for r in rows]

    def miniblocks(self, stream_id: bytes, from_num: int, to_num: int) -> list[MiniblockRow]:
        """Miniblocks with from_num <= num < to_num, in order."""
        rows = self._db.execute(
            "SELECT stream_id, num, hash, created_ms, event_num_offset, event_count,"
            " snapshot_num, header, snapshot FROM miniblocks"
            " WHERE stream_id = ? AND num >= ? AND num < ? ORDER BY num",
            (stream_id, from_num, to_num),
        ).fetchall()
        return [
            MiniblockRow(
                bytes(r[0]), r[1], bytes(r[2]), r[3], r[4], r[5], r[6], bytes(r[7]),
                bytes(r[8]) if r[8] is not None else None,
            )
            for r in rows
        ]  # fmt: skip

    def last_miniblock_num(self, stream_id: bytes) -> int:
        row = self._db.execute(
            "SELECT MAX(num) FROM miniblocks WHERE stream_id = ?", (stream_id,)
        ).fetchone()
        return int(row[0]) if row and row[0] is not None else -1

    def events(self, stream_id: bytes, from_num: int, to_num: int | None = None) -> list[bytes]:
        """Envelope bytes of events with from_num <= event_num (< to_num), in order."""
        if to_num is None:
            rows = self._db.execute(
                "SELECT envelope FROM events WHERE stream_id = ? AND event_num >= ?"
                " ORDER BY event_num",
                (stream_id, from_num),
            ).fetchall()
        else:
            rows = self._db.execute(
                "SELECT envelope FROM events WHERE stream_id = ? AND event_num >= ?"
                " AND event_num < ? ORDER BY event_num",
                (stream_id, from_num, to_num),
            ).fetchall()
        return [bytes(r[0]) for r in rows]

    def close(self) -> None:
        if self.has_pending:
            self.commit()
        self._stop.set()
        if self._checkpointer is not None:
            self._checkpointer.join(timeout=10)
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._db.close()
