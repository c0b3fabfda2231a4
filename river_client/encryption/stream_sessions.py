"""The hybrid sessions one device knows for one stream, indexed for key solicitations.

A ``SessionStore`` keeps one ``StreamSessions`` per stream. Members of a busy channel each
know hundreds of its sessions and see hundreds of solicitations, so the index answers the
questions a solicitation asks without walking every session:

- which of the requested hex session ids are known: one dict lookup per requested id;
- every session id of the stream in sorted order (how the SDK lists them, and what a new
  device is sent): kept sorted as sessions are added, never re-sorted per question.

Sessions are only ever added (a device does not forget a group key), so the index is never
invalidated.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from river_client.encryption.hybrid import HybridSession


class StreamSessions:
    """The sessions of one stream by hex session id, with the ids kept sorted."""

    __slots__ = ("_by_hex", "_sorted_ids")

    def __init__(self) -> None:
        self._by_hex: dict[str, HybridSession] = {}
        self._sorted_ids: list[str] = []

    def __len__(self) -> int:
        return len(self._by_hex)

    def __contains__(self, session_id_hex: object) -> bool:
        return session_id_hex in self._by_hex

    def add(self, session: HybridSession) -> bool:
        """Index a session of this stream; False if it was already known."""
        session_id = session.session_id_hex
        if session_id in self._by_hex:
            return False
        self._by_hex[session_id] = session
        bisect.insort(self._sorted_ids, session_id)
        return True

    def get(self, session_id_hex: str) -> HybridSession | None:
        return self._by_hex.get(session_id_hex)

    def sessions(self) -> list[HybridSession]:
        """Every session, in the order they were added."""
        return list(self._by_hex.values())

    def session_ids(self) -> list[str]:
        """Every hex session id, sorted."""
        return list(self._sorted_ids)

    def sorted_sessions(self) -> list[HybridSession]:
        """Every session, sorted by hex session id."""
        by_hex = self._by_hex
        return [by_hex[session_id] for session_id in self._sorted_ids]

    def known_ids(self, session_ids: Iterable[str]) -> list[str]:
        """The given hex ids this stream has a session for, sorted and without repeats."""
        by_hex = self._by_hex
        return sorted({session_id for session_id in session_ids if session_id in by_hex})
