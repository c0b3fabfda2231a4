"""Follower wallet slots, handed out by the master so no two users share a wallet.

Locust's `worker_index` is neither dense nor stable (a restarted worker gets a new one, and
users are not placed by it), so every follower asks the master for a slot when it starts, the
way locust-plugins' Distributor hands out data:

    worker user --towns_wallet_request {req}--> master allocator
    worker user <--towns_wallet_grant {req, slot}-- master allocator

Slot s is the follower's position in the run; `RunConfig.wallet_index(s)` turns it into the HD
index (1..CLIENTS_COUNT, then the session's random clients). A user that is stopped gives its
slot back (`towns_wallet_release`), and the master takes back the slots of a worker that went
missing, so users Locust re-dispatches elsewhere continue with the same wallets. In local mode
the same allocator is called directly. Only slot numbers travel; keys are derived on the worker
from its own MNEMONIC.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

import gevent.event

logger = logging.getLogger(__name__)

WALLET_REQUEST = "towns_wallet_request"
WALLET_GRANT = "towns_wallet_grant"
WALLET_RELEASE = "towns_wallet_release"
LOCAL_NODE = "local"


class SlotAllocator:
    """Master-side table of slots: free, or held by a worker (its client id)."""

    def __init__(self) -> None:
        self.total = 0
        self.holders: dict[int, str] = {}
        self.ever_granted: set[int] = set()
        self.reclaimed: dict[str, list[int]] = {}

    def reset(self, total: int) -> None:
        """A new test run: `total` followers, all slots free."""
        self.total = total
        self.holders.clear()
        self.ever_granted.clear()
        self.reclaimed.clear()

    def acquire(self, node_id: str) -> int | None:
        for slot in range(self.total):
            if slot not in self.holders:
                self.holders[slot] = node_id
                self.ever_granted.add(slot)
                return slot
        return None

    def release(self, slot: int, node_id: str) -> None:
        if self.holders.get(slot) == node_id:
            del self.holders[slot]

    def reclaim_worker(self, node_id: str) -> list[int]:
        """Free every slot a vanished worker held; returns them."""
        slots = [slot for slot, holder in self.holders.items() if holder == node_id]
        for slot in slots:
            del self.holders[slot]
        if slots:
            self.reclaimed.setdefault(node_id, []).extend(slots)
            logger.warning("worker %s vanished holding wallet slots %s", node_id, slots)
        return slots

    def holder(self, slot: int) -> str | None:
        return self.holders.get(slot)

    # master message handlers (fast: a table lookup and one send)

    def attach_master(self, runner: Any) -> None:
        self._runner = runner
        runner.register_message(WALLET_REQUEST, self._on_request)
        runner.register_message(WALLET_RELEASE, self._on_release)

    def _on_request(self, environment: Any, msg: Any, **_kwargs: Any) -> None:
        slot = self.acquire(msg.node_id)
        self._runner.send_message(
            WALLET_GRANT, {"req": msg.data["req"], "slot": slot}, client_id=msg.node_id
        )

    def _on_release(self, environment: Any, msg: Any, **_kwargs: Any) -> None:
        self.release(int(msg.data["slot"]), msg.node_id)


class SlotClient:
    """A process's way to get and return slots: messages on a worker, direct calls locally."""

    def __init__(self) -> None:
        self._runner: Any = None
        self._allocator: SlotAllocator | None = None
        self._pending: dict[int, gevent.event.AsyncResult] = {}
        self._ids = itertools.count(1)

    def attach_local(self, allocator: SlotAllocator) -> None:
        self._allocator = allocator

    def attach_worker(self, runner: Any) -> None:
        self._runner = runner
        runner.register_message(WALLET_GRANT, self._on_grant)

    def acquire(self, timeout: float = 30.0) -> int | None:
        """This user's slot, or None when every slot is taken (or the master did not answer)."""
        if self._allocator is not None:
            return self._allocator.acquire(LOCAL_NODE)
        if self._runner is None:
            raise RuntimeError("wallet slots are not attached to a Locust runner yet")
        req = next(self._ids)
        result: gevent.event.AsyncResult = gevent.event.AsyncResult()
        self._pending[req] = result
        try:
            self._runner.send_message(WALLET_REQUEST, {"req": req})
            slot = result.get(timeout=timeout)
        except gevent.Timeout:
            logger.error("the master did not grant a wallet slot within %.0f s", timeout)
            return None
        finally:
            self._pending.pop(req, None)
        return None if slot is None else int(slot)

    def release(self, slot: int) -> None:
        if self._allocator is not None:
            self._allocator.release(slot, LOCAL_NODE)
        elif self._runner is not None:
            self._runner.send_message(WALLET_RELEASE, {"slot": slot})

    def _on_grant(self, environment: Any, msg: Any, **_kwargs: Any) -> None:
        result = self._pending.get(int(msg.data["req"]))
        if result is not None:
            result.set(msg.data["slot"])


allocator = SlotAllocator()
slots = SlotClient()
