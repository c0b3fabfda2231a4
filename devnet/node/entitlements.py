"""Space membership checks on the chain, cached like River's auth_impl_cache.go.

A wallet may create its user streams (with a `spaceId`) and join a space or its channels only
while it holds an active membership of the space contract: a token from `tokensOfOwner` whose
`expiresAt` is 0 or in the future (river_client.chain.membership does the reads). Results are
cached per (space, wallet): positive results for `positive_ttl` seconds (configurable; River's
local config uses 5 s), negative ones for `negative_ttl` (2 s, as River's node), so a wallet
refused just before its membership was minted gets in at most that long after.

Reads run in one worker thread, off the event loop; checks that arrive while a read is running
are batched into the next read (one multicall for many wallets of a space). Without an RPC URL
every check passes, like a River node with `disableBaseChain`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from devnet.node.errors import Err, NodeError

logger = logging.getLogger(__name__)


class Status(Protocol):
    """What the node needs from a membership status (river_client.chain.membership)."""

    @property
    def is_member(self) -> bool: ...

    @property
    def is_expired(self) -> bool: ...


Reader = Callable[[str, Sequence[str]], dict[str, Status]]


def chain_reader(rpc_url: str) -> Reader:
    """Membership reads through river_client.chain.membership on `rpc_url`."""
    from river_client.chain.membership import SpaceContract
    from wallet_tools.rpc import JsonRpc

    rpc = JsonRpc(rpc_url, timeout=10.0)
    contracts: dict[str, SpaceContract] = {}

    def read(space_address: str, users: Sequence[str]) -> dict[str, Status]:
        contract = contracts.get(space_address)
        if contract is None:
            contract = contracts[space_address] = SpaceContract(rpc, space_address)
        return dict(contract.statuses(list(users)))

    return read


def checksum(address: bytes) -> str:
    from eth_utils import to_checksum_address

    return str(to_checksum_address(address))


class Entitlements:
    """Cached, batched membership checks; `require_space_member` raises PERMISSION_DENIED."""

    def __init__(
        self,
        reader: Reader | None,
        positive_ttl: float = 5.0,
        negative_ttl: float = 2.0,
    ) -> None:
        self.reader = reader
        self.positive_ttl = positive_ttl
        self.negative_ttl = negative_ttl
        self._cache: dict[tuple[str, str], tuple[bool, bool, float]] = {}
        self._waiting: dict[tuple[str, str], asyncio.Future[tuple[bool, bool]]] = {}
        self._queue: dict[str, list[str]] = {}
        self._runner: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="membership")
        self.reads = 0

    async def status(self, space_address: str, user: str) -> tuple[bool, bool]:
        """(is_member, is_expired) of `user` in the space, from the cache or the chain."""
        key = (space_address, user)
        cached = self._cache.get(key)
        if cached is not None and cached[2] > time.monotonic():
            return cached[0], cached[1]
        waiting = self._waiting.get(key)
        if waiting is None:
            waiting = asyncio.get_running_loop().create_future()
            self._waiting[key] = waiting
            self._queue.setdefault(space_address, []).append(user)
            if self._runner is None or self._runner.done():
                self._runner = asyncio.create_task(self._run())
        return await asyncio.shield(waiting)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            space_address, users = self._queue.popitem()
            assert self.reader is not None
            try:
                self.reads += 1
                result = await loop.run_in_executor(
                    self._executor, self.reader, space_address, users
                )
            except Exception as exc:
                logger.warning("membership read on %s failed: %s", space_address, exc)
                for user in users:
                    future = self._waiting.pop((space_address, user), None)
                    if future is not None and not future.done():
                        future.set_exception(
                            NodeError(
                                Err.UNAVAILABLE,
                                "cannot read space membership from the chain",
                                spaceAddress=space_address,
                                error=str(exc)[:200],
                            )
                        )
                continue
            now = time.monotonic()
            for user in users:
                status = result.get(user)
                member = bool(status is not None and status.is_member)
                expired = bool(status is not None and status.is_expired)
                ttl = self.positive_ttl if member and not expired else self.negative_ttl
                self._cache[(space_address, user)] = (member, expired, now + ttl)
                future = self._waiting.pop((space_address, user), None)
                if future is not None and not future.done():
                    future.set_result((member, expired))

    async def require_space_member(self, space_id: bytes, user_address: bytes) -> None:
        """Raise PERMISSION_DENIED (reason MEMBERSHIP / MEMBERSHIP_EXPIRED) unless a member."""
        if self.reader is None:
            return
        space_address = checksum(space_id[1:21])
        user = checksum(user_address)
        member, expired = await self.status(space_address, user)
        if member and not expired:
            return
        raise NodeError(
            Err.PERMISSION_DENIED,
            "IsEntitled failed",
            reason="MEMBERSHIP_EXPIRED" if member else "MEMBERSHIP",
            spaceId=space_id.hex(),
            userId=user,
        )

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
