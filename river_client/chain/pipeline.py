"""The send window behind MintingEngine: joinSpace transactions with locally managed nonces.

`JoinPipeline.run()` keeps up to `max_in_flight` signed transactions unconfirmed, sends every
new one of a round in one JSON-RPC batch, and on each new block fetches the receipts of all of
them in one batch. Fault handling (nonce too low, replacement underpriced, a lost transaction,
a revert, an unreachable endpoint) is described in `river_client.chain.minting`.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from river_client.chain.abi import calldata, describe_revert
from river_client.chain.exceptions import MintError
from river_client.chain.membership import SDK_GAS_LIMIT, SpaceContract
from river_client.chain.transactions import (
    Fees,
    batched,
    classify_send_error,
    fees_from,
    issued_token,
    revert_data,
    sign_join,
)
from wallet_tools.exceptions import RpcError, RpcUnavailableError
from wallet_tools.rpc import JsonRpc

logger = logging.getLogger(__name__)

T = TypeVar("T")
MAX_SEND_ATTEMPTS = 5
REFUSED_RETRY_DELAY = 0.2


@dataclass(frozen=True)
class MintProgress:
    minted: int
    total: int
    failed: int
    in_flight: int
    rate_per_s: float
    elapsed: float


@dataclass
class MintReport:
    minted: dict[str, int] = field(default_factory=dict)  # wallet -> token id
    already_members: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # wallet -> reason
    transactions_sent: int = 0
    first_send_block: int | None = None  # latest block when the first mint was sent
    first_send_after: float | None = None  # seconds from the start to the first send
    last_block: int | None = None  # block of the last confirmed mint
    blocks_used: int = 0  # distinct blocks holding our mints
    elapsed: float = 0.0

    @property
    def blocks_after_first_send(self) -> int | None:
        if self.first_send_block is None or self.last_block is None:
            return None
        return self.last_block - self.first_send_block


def retry_unreachable(
    step: Callable[[], T], budget: float, on_retry: Callable[[], None] | None = None
) -> T:
    """Run a step, retrying with backoff while the endpoint is unreachable, for up to budget s."""
    deadline = time.monotonic() + budget
    delay = 0.5
    while True:
        try:
            return step()
        except RpcUnavailableError as error:
            if time.monotonic() + delay > deadline:
                raise
            logger.warning("RPC endpoint unreachable (%s); retrying in %.1f s", error, delay)
            if on_retry is not None:
                on_retry()
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


@dataclass
class _Mint:
    recipient: str
    value: int
    nonce: int
    fees: Fees
    gas: int
    raw: str = ""
    hashes: list[str] = field(default_factory=list)
    needs_send: bool = True
    sent_at: float = 0.0
    send_attempts: int = 0
    not_before: float = 0.0  # after a refused send, wait until then
    nonce_consumed: bool = False
    consumed_block: int = 0  # latest block when "nonce too low" came back
    consumed_at: float = 0.0


class JoinPipeline:
    """One run of joinSpace transactions from one root wallet; fills a MintReport."""

    def __init__(
        self,
        rpc: JsonRpc,
        space: SpaceContract,
        root_key: bytes,
        root: str,
        *,
        chain_id: int,
        gas: int,
        fees: Fees,
        max_in_flight: int,
        poll_interval: float,
        stale_after: float,
        outage_budget: float,
        report: MintReport,
        started: float,
        on_progress: Callable[[MintProgress], None] | None = None,
    ) -> None:
        self.rpc, self.space, self._key, self.root = rpc, space, root_key, root
        self.max_in_flight, self.poll_interval = max_in_flight, poll_interval
        self.stale_after, self.outage_budget = stale_after, outage_budget
        self.on_progress = on_progress
        self._chain_id, self._gas, self._fees = chain_id, gas, fees
        self._report, self._started = report, started
        self._queue: deque[tuple[str, int]] = deque()
        self._in_flight: dict[int, _Mint] = {}
        self._blocks: set[int] = set()
        self._repriced: set[str] = set()
        self._gas_for: dict[str, int] = {}  # a larger gas limit after running out of gas
        self._first_send_time: float | None = None
        self._last_block = fees.block_number
        self._last_receipt_poll = 0.0
        self._next_nonce = 0
        self._total = 0

    def _retry(self, step: Callable[[], T]) -> T:
        return retry_unreachable(step, self.outage_budget, self._mark_unanswered)

    def _mark_unanswered(self) -> None:
        """Transactions whose send may not have arrived are resent unchanged next time."""
        for mint in self._in_flight.values():
            if mint.send_attempts and not mint.needs_send and not mint.nonce_consumed:
                mint.needs_send = True

    def run(self, mints: Sequence[tuple[str, int]]) -> None:
        """Mint for every (wallet, value) until each is confirmed or has failed."""
        self._queue.extend(mints)
        self._total = len(mints)
        self._next_nonce = int(
            self._retry(lambda: self.rpc.call("eth_getTransactionCount", self.root, "pending")), 16
        )
        while self._queue or self._in_flight:
            self._retry(self._fill_and_send)
            time.sleep(self.poll_interval)
            self._retry(self._poll)

    def _fill_and_send(self) -> None:
        while self._queue and len(self._in_flight) < self.max_in_flight:
            recipient, value = self._queue.popleft()
            gas = self._gas_for.get(recipient, self._gas)
            mint = _Mint(recipient, value, self._next_nonce, self._fees, gas)
            self._next_nonce += 1
            self._sign(mint)
            self._in_flight[mint.nonce] = mint

        now = time.monotonic()
        to_send = [m for m in self._in_flight.values() if m.needs_send and m.not_before <= now]
        if not to_send:
            return
        if self._report.first_send_block is None:
            self._report.first_send_block = self._last_block
            self._report.first_send_after = time.monotonic() - self._started
            self._first_send_time = time.monotonic()
        for mint in to_send:
            mint.send_attempts += 1
            mint.sent_at = time.monotonic()
        self._report.transactions_sent += len(to_send)
        replies = batched(self.rpc, [("eth_sendRawTransaction", [m.raw]) for m in to_send])
        for mint, reply in zip(to_send, replies, strict=True):
            mint.needs_send = False
            if isinstance(reply, RpcError):
                self._on_send_error(mint, reply)

    def _sign(self, mint: _Mint) -> None:
        signed = sign_join(
            self._key,
            chain_id=self._chain_id,
            space_address=self.space.address,
            recipient=mint.recipient,
            nonce=mint.nonce,
            value=mint.value,
            gas=mint.gas,
            fees=mint.fees,
        )
        mint.raw = signed.raw
        if signed.hash not in mint.hashes:
            mint.hashes.append(signed.hash)
        mint.needs_send = True

    def _on_send_error(self, mint: _Mint, error: RpcError) -> None:
        kind = classify_send_error(str(error))
        if kind == "already_known":
            return
        if kind == "nonce_too_low":
            # Ours and already mined (the receipt poll will find it), or used by someone else.
            mint.nonce_consumed = True
            mint.consumed_block, mint.consumed_at = self._last_block, time.monotonic()
            return
        if mint.send_attempts >= MAX_SEND_ATTEMPTS:
            raise MintError(
                f"the node refused joinSpace({mint.recipient}) with nonce {mint.nonce} "
                f"{mint.send_attempts} times; last answer: {error}",
                mint.recipient,
            )
        if kind == "underpriced":
            logger.info("nonce %d: replacement underpriced, raising the fee", mint.nonce)
            mint.fees = mint.fees.bumped(self._fees)
            self._sign(mint)
            return
        delay = min(REFUSED_RETRY_DELAY * 2 ** (mint.send_attempts - 1), 3.0)
        logger.warning("nonce %d: send refused (%s); resending in %.1f s", mint.nonce, error, delay)
        mint.needs_send = True
        mint.not_before = time.monotonic() + delay

    def _poll(self) -> None:
        block = self.rpc.call("eth_getBlockByNumber", "latest", False)
        number = int(block["number"], 16)
        now = time.monotonic()
        new_block = number != self._last_block
        if new_block:
            self._last_block = number
            self._fees = fees_from(block, self._safe_call("eth_maxPriorityFeePerGas"))
        stale_check = now - self._last_receipt_poll >= min(self.stale_after / 2, 1.0)
        if not self._in_flight or not (new_block or stale_check):
            return
        self._last_receipt_poll = now
        self._collect_receipts()
        self._handle_stuck(now)

    def _safe_call(self, method: str) -> object:
        try:
            return self.rpc.call(method)
        except RpcError as error:
            if isinstance(error, RpcUnavailableError):
                raise
            return None

    def _collect_receipts(self) -> None:
        lookups = [(m, h) for m in self._in_flight.values() for h in m.hashes]
        receipts = batched(self.rpc, [("eth_getTransactionReceipt", [h]) for _, h in lookups])

        done: set[int] = set()
        for (mint, tx_hash), receipt in zip(lookups, receipts, strict=True):
            if isinstance(receipt, dict) and mint.nonce not in done:
                done.add(mint.nonce)
                self._settle(mint, tx_hash, receipt)
        for nonce in done:
            del self._in_flight[nonce]

        # Requeue only once a later block (or 2 s) brought no receipt for any of its hashes, so a
        # lagging endpoint cannot make us mint twice for the same wallet.
        now = time.monotonic()
        consumed = [
            m
            for m in self._in_flight.values()
            if m.nonce_consumed
            and (self._last_block > m.consumed_block or now - m.consumed_at >= 2.0)
        ]
        if consumed:
            chain_nonce = int(self.rpc.call("eth_getTransactionCount", self.root, "pending"), 16)
            self._next_nonce = max(self._next_nonce, chain_nonce)
            for mint in consumed:
                logger.warning(
                    "nonce %d was used by another transaction; minting for %s again",
                    mint.nonce, mint.recipient,
                )  # fmt: skip
                del self._in_flight[mint.nonce]
                self._queue.appendleft((mint.recipient, mint.value))
        if done:
            self._progress()

    def _settle(self, mint: _Mint, tx_hash: str, receipt: dict[str, Any]) -> None:
        block = int(receipt["blockNumber"], 16)
        self._blocks.add(block)
        self._report.blocks_used = len(self._blocks)
        self._report.last_block = max(self._report.last_block or 0, block)
        if int(receipt["status"], 16) == 1:
            token_id = issued_token(receipt, self.space.address, mint.recipient)
            if token_id is None:
                self._report.failed[mint.recipient] = (
                    f"{tx_hash} succeeded without a MembershipTokenIssued log for this wallet"
                )
            else:
                self._report.minted[mint.recipient] = token_id
            return

        if int(receipt["gasUsed"], 16) >= mint.gas and mint.recipient not in self._gas_for:
            self._gas_for[mint.recipient] = min(mint.gas * 2, SDK_GAS_LIMIT)
            logger.warning(
                "%s: out of gas at %d; minting again with more", mint.recipient, mint.gas
            )
            self._queue.appendleft((mint.recipient, mint.value))
            return

        call = {
            "from": self.root,
            "to": self.space.address,
            "value": hex(mint.value),
            "data": calldata("joinSpace(address)", mint.recipient),
        }
        reason = describe_revert(revert_data(self.rpc, call, max(block - 1, 0)))
        if reason == "Membership__InsufficientPayment()" and mint.recipient not in self._repriced:
            self._repriced.add(mint.recipient)
            full = self.space.join_price().membership_price
            logger.info("%s: free slots used up meanwhile; minting at %d wei", mint.recipient, full)
            self._queue.appendleft((mint.recipient, full))
            return
        logger.warning("joinSpace(%s) reverted in %s: %s", mint.recipient, tx_hash, reason)
        self._report.failed[mint.recipient] = f"reverted in {tx_hash} (block {block}): {reason}"

    def _handle_stuck(self, now: float) -> None:
        """Resend, with a higher fee and the same nonce, what the node no longer knows."""
        stale = [
            m
            for m in self._in_flight.values()
            if not m.nonce_consumed and not m.needs_send and now - m.sent_at >= self.stale_after
        ]
        if not stale:
            return
        known = batched(self.rpc, [("eth_getTransactionByHash", [m.hashes[-1]]) for m in stale])
        for mint, transaction in zip(stale, known, strict=True):
            if isinstance(transaction, dict) and mint.fees.max_fee_per_gas >= self._fees.base_fee:
                continue  # waiting in the pool, priced to be mined
            if transaction is None:
                why = "not known to the node"
            elif isinstance(transaction, dict):
                why = "priced under the base fee"
            else:
                why = f"lookup failed ({transaction})"
            logger.warning(
                "nonce %d for %s: %s; resending with a higher fee", mint.nonce, mint.recipient, why
            )
            mint.fees = mint.fees.bumped(self._fees)
            self._sign(mint)

    def _progress(self) -> None:
        report = self._report
        elapsed = time.monotonic() - self._started
        since_send = time.monotonic() - (self._first_send_time or self._started)
        rate = len(report.minted) / since_send if since_send > 0 else 0.0
        logger.info(
            "minted %d/%d (%.1f/s), %d failed, %d in flight",
            len(report.minted), self._total, rate, len(report.failed), len(self._in_flight),
        )  # fmt: skip
        if self.on_progress is not None:
            self.on_progress(
                MintProgress(
                    len(report.minted),
                    self._total,
                    len(report.failed),
                    len(self._in_flight),
                    rate,
                    elapsed,
                )
            )
