"""Mint space memberships for many wallets from one root wallet, pipelined and exactly once.

`MintingEngine.mint_all(addresses)`:

1. Waits (briefly) for the root's own pending transactions, then reads every wallet's status in
   two round trips (multicalls in one JSON-RPC batch); active members are skipped, so a second
   run sends nothing.
2. Checks, before sending anything, that the root's balance covers every mint's value plus its
   maximum gas fee (`InsufficientFundsError` names both).
3. Sends `joinSpace(wallet)` transactions signed locally with nonces it manages itself: up to
   `max_in_flight` unconfirmed at once (16 by default, the per-sender pool slots geth-like
   nodes guarantee), each JSON-RPC batch holding every transaction that fits the window. Fees
   are read once per block; there is no delay between sends.
4. Polls the block number; on each new block, fetches the receipts of everything in flight in
   one batch and checks each: status 1 and a `MembershipTokenIssued(wallet, tokenId)` log.
5. Finally reads every minted wallet's status again; a wallet must be an active member.

Faults it rides out:
- "nonce too low": the nonce was used elsewhere; resynchronise and mint that wallet again with a
  fresh nonce (if the transaction was ours and mined, its receipt settles it instead);
- "replacement underpriced": raise the fee by 12.5 % and resend;
- a transaction the node lost (no receipt after `stale_after` seconds and unknown to the node):
  resend with the same nonce and a 12.5 % higher fee;
- a revert: that wallet is reported in `failed` with the decoded reason and the others go on;
  a payment shortfall is retried once at the full price, and running out of gas once with
  twice the gas limit;
- an endpoint that stops answering: retried with backoff for up to `outage_budget` seconds;
  transactions whose send went unanswered are resent unchanged (harmless if they arrived).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from eth_account import Account
from eth_utils import to_checksum_address

from river_client.chain.exceptions import InsufficientFundsError
from river_client.chain.membership import SDK_GAS_LIMIT, JoinPrice, SpaceContract
from river_client.chain.pipeline import JoinPipeline, MintProgress, MintReport, retry_unreachable
from river_client.chain.transactions import Fees, read_fees
from wallet_tools.rpc import JsonRpc

__all__ = ["MintProgress", "MintReport", "MintingEngine"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class MintingEngine:
    """Mints memberships of one space for many wallets, paid by the root wallet.

    `max_in_flight` bounds the unconfirmed transactions; `gas_limit` overrides the per-mint gas
    limit (default: eth_estimateGas plus 10 % and 5,000, or the SDK's 1.5 M if that fails);
    `poll_interval` is the pause between block polls; `stale_after` is how long a transaction
    may go without a receipt before the node is asked whether it still knows it;
    `outage_budget` is how long an unreachable endpoint is retried before giving up.
    """

    def __init__(
        self,
        rpc: JsonRpc,
        space_address: str,
        root_private_key: bytes | str,
        max_in_flight: int = 16,
        on_progress: Callable[[MintProgress], None] | None = None,
        *,
        gas_limit: int | None = None,
        poll_interval: float = 0.1,
        stale_after: float = 12.0,
        outage_budget: float = 120.0,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight}")
        self.rpc = rpc
        self.space = SpaceContract(rpc, space_address)
        self._key = bytes(Account.from_key(root_private_key).key)
        self.root: str = Account.from_key(self._key).address
        self.max_in_flight = max_in_flight
        self.on_progress = on_progress
        self.gas_limit = gas_limit
        self.poll_interval = poll_interval
        self.stale_after = stale_after
        self.outage_budget = outage_budget

    def __repr__(self) -> str:
        return f"MintingEngine(space={self.space.address}, root={self.root})"

    def _retry(self, step: Callable[[], T]) -> T:
        return retry_unreachable(step, self.outage_budget)

    def mint_all(self, addresses: Sequence[str]) -> MintReport:
        """Make every address an active member; see the module docstring for the steps."""
        started = time.monotonic()
        report = MintReport()
        wallets: list[str] = list(dict.fromkeys(to_checksum_address(a) for a in addresses))

        self._retry(self._wait_for_own_pending)
        statuses = self._retry(lambda: self.space.statuses(wallets))
        report.already_members = [w for w in wallets if statuses[w].active]
        to_mint = [w for w in wallets if not statuses[w].active]
        logger.info(
            "%d wallets: %d already members, %d to mint in space %s",
            len(wallets), len(report.already_members), len(to_mint), self.space.address,
        )  # fmt: skip
        if not to_mint:
            report.elapsed = time.monotonic() - started
            return report

        price, fees, chain_id = self._retry(self._read_setup)
        gas = self.gas_limit or self._retry(lambda: self._estimate_gas(to_mint, price))
        self._check_funds(to_mint, price, gas, fees)
        pipeline = JoinPipeline(
            self.rpc,
            self.space,
            self._key,
            self.root,
            chain_id=chain_id,
            gas=gas,
            fees=fees,
            max_in_flight=self.max_in_flight,
            poll_interval=self.poll_interval,
            stale_after=self.stale_after,
            outage_budget=self.outage_budget,
            report=report,
            started=started,
            on_progress=self.on_progress,
        )
        pipeline.run([(w, price.value_for(i)) for i, w in enumerate(to_mint)])
        self._verify(report)
        report.elapsed = time.monotonic() - started
        logger.info(
            "minting done: %d minted, %d failed, %d already members, %d blocks, %.1f s",
            len(report.minted), len(report.failed), len(report.already_members),
            report.blocks_used, report.elapsed,
        )  # fmt: skip
        return report

    def _read_setup(self) -> tuple[JoinPrice, Fees, int]:
        return self.space.join_price(), read_fees(self.rpc), int(self.rpc.call("eth_chainId"), 16)

    def _wait_for_own_pending(self, timeout: float = 30.0) -> None:
        """Wait until the root has no pending transaction, so statuses reflect earlier mints."""
        deadline = time.monotonic() + timeout
        while True:
            latest, pending = self.rpc.batch(
                [
                    ("eth_getTransactionCount", [self.root, "latest"]),
                    ("eth_getTransactionCount", [self.root, "pending"]),
                ]
            )
            if isinstance(latest, Exception) or isinstance(pending, Exception):
                return
            if int(pending, 16) <= int(latest, 16) or time.monotonic() > deadline:
                return
            time.sleep(self.poll_interval)

    def _estimate_gas(self, to_mint: Sequence[str], price: JoinPrice) -> int:
        for recipient in to_mint[:3]:
            gas = self.space.estimate_join_gas(self.root, recipient, price.value_for(0))
            if gas is not None:
                return gas
        return SDK_GAS_LIMIT

    def _check_funds(self, to_mint: Sequence[str], price: JoinPrice, gas: int, fees: Fees) -> None:
        value = sum(price.value_for(i) for i in range(len(to_mint)))
        needed = value + len(to_mint) * gas * fees.max_fee_per_gas
        balance = int(
            self._retry(lambda: self.rpc.call("eth_getBalance", self.root, "pending")), 16
        )
        if balance < needed:
            raise InsufficientFundsError(self.root, balance, needed, len(to_mint))
        logger.info(
            "root %s can pay: balance %d wei, up to %d wei needed "
            "(%d mints × %d gas × %d wei/gas + %d wei value)",
            self.root, balance, needed, len(to_mint), gas, fees.max_fee_per_gas, value,
        )  # fmt: skip

    def _verify(self, report: MintReport) -> None:
        """Every wallet we minted for must now be an active member."""
        minted = list(report.minted)
        statuses = self._retry(lambda: self.space.statuses(minted))
        for wallet in minted:
            if not statuses[wallet].active:
                token = report.minted.pop(wallet)
                report.failed[wallet] = f"token {token} was issued but the wallet is not active"
