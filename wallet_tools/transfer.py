"""Moving ETH out of wallets: plan every transfer, send them all at once, await them together.

A sweep moves old wallet i's whole balance, less its fee, to new wallet i. The engine reads
every balance and nonce in one batch, prices every transaction with one fee model
(`wallet_tools.fees`), signs them all, sends them all without waiting on each other, then
polls their receipts together, so a range of wallets finishes in about one block.

Wallets are independent: a wallet that is empty or cannot pay its fee is skipped, a send that
is rejected or a transaction that reverts is a failure of that wallet alone, and the others
carry on. A transaction the node accepted but then lost (no receipt and unknown to the node) is
broadcast again, signed bytes unchanged, a few times before it counts as failed. Running a
sweep again moves nothing more: the old wallets are empty or hold only dust.

    engine = TransferEngine(JsonRpc(url), buffer_percent=10)
    plans = engine.plan_sweep(old_wallets, [w.address for w in new_wallets])
    report = engine.execute(plans)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from eth_account import Account
from eth_hash.auto import keccak

from wallet_tools.derivation import Wallet
from wallet_tools.exceptions import InsufficientFundsError, JsonRpcError, RpcError
from wallet_tools.fees import FeeModel, detect_fee_model, l1_fees, operator_fee
from wallet_tools.outcomes import PlannedTransfer, TransferOutcome, TransferReport
from wallet_tools.rpc import JsonRpc

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[str, int, int], None]
ALREADY_KNOWN = ("already known", "known transaction", "already imported")


def _int(value: Any) -> int:
    return int(value, 16) if isinstance(value, str) else int(value)


def _fmt_error(error: object) -> str:
    if isinstance(error, JsonRpcError):
        return error.rpc_message or str(error)
    return str(error)


class TransferEngine:
    """Plans and runs transfers from many wallets at once against one JSON-RPC endpoint."""

    def __init__(
        self,
        rpc: JsonRpc,
        *,
        buffer_percent: int = 10,
        fee_model: FeeModel | None = None,
        receipt_timeout: float = 120.0,
        poll_interval: float = 0.25,
        batch_size: int = 50,
        rebroadcasts: int = 3,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        self.rpc = rpc
        self.buffer_percent = buffer_percent
        self._fee_model = fee_model
        self.receipt_timeout = receipt_timeout
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self.rebroadcasts = rebroadcasts
        self.on_progress = on_progress

    @property
    def fee_model(self) -> FeeModel:
        if self._fee_model is None:
            self._fee_model = detect_fee_model(self.rpc, self.buffer_percent)
        return self._fee_model

    def _progress(self, phase: str, done: int, total: int) -> None:
        if self.on_progress is not None:
            self.on_progress(phase, done, total)

    def _chunked_batch(self, calls: Sequence[tuple[str, Sequence[object]]]) -> list[Any]:
        results: list[Any] = []
        for start in range(0, len(calls), self.batch_size):
            results += self.rpc.batch(calls[start : start + self.batch_size])
        return results

    # -- planning ------------------------------------------------------------------------------

    def balances(self, addresses: Sequence[str]) -> list[int]:
        """Balances at the latest block, in one batch per batch_size addresses."""
        results = self._chunked_batch([("eth_getBalance", [a, "latest"]) for a in addresses])
        for address, result in zip(addresses, results, strict=True):
            if isinstance(result, RpcError):
                raise RpcError(f"balance of {address}: {result}", url=self.rpc.display_url)
        return [_int(r) for r in results]

    def plan_sweep(
        self, sources: Sequence[Wallet], destinations: Sequence[str]
    ) -> list[PlannedTransfer]:
        """Plan moving each source's whole balance, less its fee, to the destination beside it."""
        model = self.fee_model
        plans = self._read_accounts(sources, destinations)
        extra_l1 = operator_fee(self.rpc) if model.op_stack else 0

        for plan in plans:
            if plan.skip_reason:
                continue
            if plan.queued:
                plan.skip_reason = (
                    f"{plan.queued} transaction(s) from this wallet still wait to be mined; "
                    "run again once they are"
                )
            elif plan.balance == 0:
                plan.skip_reason = "empty"
            elif plan.balance <= model.l2_fee():
                plan.skip_reason = (
                    f"cannot pay the fee: balance {plan.balance} wei ≤ fee {model.l2_fee()} wei"
                )
            else:
                plan.value = plan.balance - model.l2_fee()
        payable = [p for p in plans if not p.skip_reason]

        # The L1 fee depends on the transaction's bytes, the value included; estimate it for
        # the largest value, then again for the value left after it, and keep the larger.
        if model.op_stack and payable:
            for _round in range(2):
                txs = [
                    model.transaction(nonce=p.nonce, to=p.destination, value=max(p.value, 1))
                    for p in payable
                ]
                for plan, fee in zip(payable, l1_fees(self.rpc, txs), strict=True):
                    if isinstance(fee, RpcError):
                        plan.skip_reason = f"L1 fee estimate failed: {_fmt_error(fee)}"
                        continue
                    plan.l1_fee_estimate = max(plan.l1_fee_estimate, fee + extra_l1)
                    budget = model.l2_fee() + model.l1_budget(plan.l1_fee_estimate)
                    plan.value = plan.balance - budget
                    if plan.value <= 0:
                        plan.skip_reason = (
                            f"cannot pay the fee: balance {plan.balance} wei ≤ fee {budget} wei "
                            "(L2 + L1 data fee)"
                        )
                payable = [p for p in payable if not p.skip_reason]

        for plan in payable:
            plan.fee_budget = plan.balance - plan.value
            plan.tx = model.transaction(nonce=plan.nonce, to=plan.destination, value=plan.value)
        return plans

    def _read_accounts(
        self, sources: Sequence[Wallet], destinations: Sequence[str]
    ) -> list[PlannedTransfer]:
        if len(sources) != len(destinations):
            raise ValueError(f"{len(sources)} sources but {len(destinations)} destinations")
        calls: list[tuple[str, Sequence[object]]] = []
        for wallet in sources:
            calls.append(("eth_getBalance", [wallet.address, "latest"]))
            calls.append(("eth_getTransactionCount", [wallet.address, "pending"]))
            calls.append(("eth_getTransactionCount", [wallet.address, "latest"]))
        results = self._chunked_batch(calls)

        plans = []
        for i, (wallet, destination) in enumerate(zip(sources, destinations, strict=True)):
            balance, nonce, mined = results[3 * i : 3 * i + 3]
            plan = PlannedTransfer(wallet=wallet, destination=destination, balance=0, nonce=0)
            errors = [r for r in (balance, nonce, mined) if isinstance(r, RpcError)]
            if errors:
                plan.skip_reason = f"could not read the account: {_fmt_error(errors[0])}"
            else:
                plan.balance, plan.nonce = _int(balance), _int(nonce)
                plan.queued = max(plan.nonce - _int(mined), 0)
            plans.append(plan)
        self._progress("planned", len(plans), len(plans))
        return plans

    def plan_payment(self, source: Wallet, destination: str, value: int) -> PlannedTransfer:
        """Plan sending exactly `value` wei; InsufficientFundsError before anything is sent."""
        model = self.fee_model
        (plan,) = self._read_accounts([source], [destination])
        if plan.skip_reason:
            raise RpcError(plan.skip_reason, url=self.rpc.display_url)
        plan.value = value
        plan.tx = model.transaction(nonce=plan.nonce, to=destination, value=value)
        l1 = 0
        if model.op_stack:
            (fee,) = l1_fees(self.rpc, [plan.tx])
            if isinstance(fee, RpcError):
                raise fee
            l1 = model.l1_budget(fee + operator_fee(self.rpc))
        plan.l1_fee_estimate = l1
        plan.fee_budget = model.l2_fee() + l1
        if plan.balance < value + plan.fee_budget:
            raise InsufficientFundsError(source.address, plan.balance, value + plan.fee_budget)
        return plan

    # -- sending and waiting ------------------------------------------------------------------

    def execute(self, plans: Sequence[PlannedTransfer]) -> TransferReport:
        """Send every planned transfer at once, then await all receipts together."""
        started = time.monotonic()
        outcomes = {
            p.index: TransferOutcome(
                p.index, p.wallet.address, p.destination, "skipped", p.balance, reason=p.skip_reason
            )
            for p in plans
        }
        to_send = [p for p in plans if not p.skip_reason]
        raw_by_index: dict[int, str] = {}
        for plan in to_send:
            signed = Account.sign_transaction(plan.tx, plan.wallet.private_key)
            raw_by_index[plan.index] = "0x" + bytes(signed.raw_transaction).hex()

        pending: dict[str, PlannedTransfer] = {}
        sent_results = self._send_raw([raw_by_index[p.index] for p in to_send])
        for plan, result in zip(to_send, sent_results, strict=True):
            outcome = outcomes[plan.index]
            outcome.value, outcome.fee = plan.value, plan.fee_budget
            if isinstance(result, RpcError):
                outcome.status, outcome.reason = "failed", f"send rejected: {_fmt_error(result)}"
                outcome.value = outcome.fee = 0
                logger.info("wallet %d: send rejected (%s)", plan.index, _fmt_error(result))
            else:
                outcome.tx_hash = result
                pending[result] = plan
        self._progress("sent", len(pending), len(to_send))

        self._await_receipts(pending, raw_by_index, outcomes, len(to_send))
        report = TransferReport(
            self.fee_model, [outcomes[p.index] for p in plans], time.monotonic() - started
        )
        logger.info(
            "transfers: %d transferred, %d skipped, %d failed, %d blocks",
            len(report.transferred),
            len(report.skipped),
            len(report.failed),
            report.blocks_used,
        )
        return report

    def _send_raw(self, raws: Sequence[str]) -> list[str | RpcError]:
        """Broadcast signed transactions; a hash, or the error the node gave, for each.

        When a batch gets no answer at all, its transactions may or may not have reached the
        node: their hashes are returned and the receipt loop finds out (and sends them again
        if the node does not know them).
        """
        results: list[str | RpcError] = []
        for start in range(0, len(raws), self.batch_size):
            chunk = raws[start : start + self.batch_size]
            try:
                replies: list[Any] = self.rpc.batch(
                    [("eth_sendRawTransaction", [r]) for r in chunk]
                )
            except RpcError as error:
                logger.info("sending %d transactions got no answer: %s", len(chunk), error)
                replies = [None] * len(chunk)
            for raw, reply in zip(chunk, replies, strict=True):
                tx_hash = "0x" + keccak(bytes.fromhex(raw[2:])).hex()
                if reply is None:
                    results.append(tx_hash)
                elif isinstance(reply, JsonRpcError) and any(
                    k in reply.rpc_message.lower() for k in ALREADY_KNOWN
                ):
                    results.append(tx_hash)  # a retried request the node had already accepted
                elif isinstance(reply, RpcError):
                    results.append(reply)
                else:
                    results.append(str(reply))
        return results

    def _await_receipts(
        self,
        pending: dict[str, PlannedTransfer],
        raw_by_index: dict[int, str],
        outcomes: dict[int, TransferOutcome],
        total: int,
    ) -> None:
        deadline = time.monotonic() + self.receipt_timeout
        unknown_rounds: dict[str, int] = {}
        rebroadcast: dict[str, int] = {}
        done = total - len(pending)

        while pending and time.monotonic() < deadline:
            hashes = list(pending)
            try:
                receipts = self._chunked_batch([("eth_getTransactionReceipt", [h]) for h in hashes])
            except RpcError as error:
                logger.info("receipt poll failed, retrying: %s", error)
                time.sleep(self.poll_interval)
                continue

            missing = []
            for tx_hash, receipt in zip(hashes, receipts, strict=True):
                if isinstance(receipt, RpcError) or receipt is None:
                    missing.append(tx_hash)
                    continue
                plan = pending.pop(tx_hash)
                outcome = outcomes[plan.index]
                outcome.block = _int(receipt["blockNumber"])
                outcome.fee = _int(receipt["gasUsed"]) * _int(
                    receipt.get("effectiveGasPrice")
                    or plan.tx.get("gasPrice")
                    or plan.tx["maxFeePerGas"]
                ) + _int(receipt.get("l1Fee") or 0)
                if _int(receipt["status"]) == 1:
                    outcome.status = "transferred"
                else:
                    outcome.status, outcome.value = "failed", 0
                    outcome.reason = f"reverted in block {outcome.block}"
                done += 1
            self._progress("confirmed", done, total)

            if missing:
                given_up = self._rebroadcast_lost(
                    missing, pending, raw_by_index, unknown_rounds, rebroadcast
                )
                for tx_hash, reason in given_up.items():
                    outcome = outcomes[pending.pop(tx_hash).index]
                    outcome.status, outcome.reason = "failed", reason
                    outcome.value = outcome.fee = 0
                    done += 1
                time.sleep(self.poll_interval)

        for tx_hash, plan in pending.items():
            outcome = outcomes[plan.index]
            outcome.status, outcome.value, outcome.fee = "failed", 0, 0
            outcome.reason = f"no receipt for {tx_hash} after {self.receipt_timeout:.0f} s"

    def _rebroadcast_lost(
        self,
        missing: list[str],
        pending: dict[str, PlannedTransfer],
        raw_by_index: dict[int, str],
        unknown_rounds: dict[str, int],
        rebroadcast: dict[str, int],
    ) -> dict[str, str]:
        """Send again, unchanged, transactions the node no longer knows about.

        Returns the transactions given up on (lost again after every rebroadcast), with why.
        """
        try:
            known = self._chunked_batch([("eth_getTransactionByHash", [h]) for h in missing])
        except RpcError:
            return {}
        lost, given_up = [], {}
        for tx_hash, tx in zip(missing, known, strict=True):
            if tx is not None and not isinstance(tx, RpcError):
                unknown_rounds[tx_hash] = 0
                continue
            unknown_rounds[tx_hash] = unknown_rounds.get(tx_hash, 0) + 1
            if unknown_rounds[tx_hash] < 2:
                continue
            if rebroadcast.get(tx_hash, 0) >= self.rebroadcasts:
                given_up[tx_hash] = (
                    f"the node lost {tx_hash} again after {self.rebroadcasts} rebroadcasts"
                )
            else:
                lost.append(tx_hash)

        if lost:
            logger.info("broadcasting %d lost transactions again", len(lost))
            for tx_hash in lost:
                rebroadcast[tx_hash] = rebroadcast.get(tx_hash, 0) + 1
                unknown_rounds[tx_hash] = 0
            replies = self._send_raw([raw_by_index[pending[h].index] for h in lost])
            for tx_hash, reply in zip(lost, replies, strict=True):
                if isinstance(reply, RpcError):
                    given_up[tx_hash] = f"lost by the node, then refused: {_fmt_error(reply)}"
        return given_up
