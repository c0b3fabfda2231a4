"""The results of transfers: one wallet's plan and outcome, and the report of a whole run.

All amounts are integers in wei; `as_json` gives them as decimal strings so that scripts
reading `--json` output never lose precision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from wallet_tools.derivation import Wallet
from wallet_tools.fees import FeeModel

Status = Literal["transferred", "skipped", "failed"]


@dataclass
class PlannedTransfer:
    """One wallet's transfer as planned; `skip_reason` is set when it will not be sent."""

    wallet: Wallet
    destination: str
    balance: int
    nonce: int
    queued: int = 0
    value: int = 0
    fee_budget: int = 0
    l1_fee_estimate: int = 0
    skip_reason: str = ""
    tx: dict[str, Any] = field(default_factory=dict)

    @property
    def index(self) -> int:
        return self.wallet.index


@dataclass
class TransferOutcome:
    """What happened to one wallet's transfer."""

    index: int
    source: str
    destination: str
    status: Status
    balance: int
    value: int = 0
    fee: int = 0
    tx_hash: str | None = None
    block: int | None = None
    reason: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "from": self.source,
            "to": self.destination,
            "status": self.status,
            "balance_wei": str(self.balance),
            "value_wei": str(self.value),
            "fee_wei": str(self.fee),
            "tx_hash": self.tx_hash,
            "block": self.block,
            "reason": self.reason,
        }


@dataclass
class TransferReport:
    """The whole run: every wallet's outcome, totals, blocks used and wall time."""

    fee_model: FeeModel
    outcomes: list[TransferOutcome]
    elapsed: float

    def _with(self, status: Status) -> list[TransferOutcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def transferred(self) -> list[TransferOutcome]:
        return self._with("transferred")

    @property
    def skipped(self) -> list[TransferOutcome]:
        return self._with("skipped")

    @property
    def failed(self) -> list[TransferOutcome]:
        return self._with("failed")

    @property
    def total_moved(self) -> int:
        return sum(o.value for o in self.transferred)

    @property
    def total_fees(self) -> int:
        return sum(o.fee for o in self.outcomes if o.tx_hash and o.block is not None)

    @property
    def blocks_used(self) -> int:
        return len({o.block for o in self.outcomes if o.block is not None})

    def as_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.fee_model.chain_id,
            "fee_model": self.fee_model.kind,
            "price_per_gas_wei": str(self.fee_model.price),
            "transferred": len(self.transferred),
            "skipped": len(self.skipped),
            "failed": len(self.failed),
            "total_moved_wei": str(self.total_moved),
            "total_fees_wei": str(self.total_fees),
            "blocks_used": self.blocks_used,
            "elapsed_s": round(self.elapsed, 3),
            "wallets": [o.as_json() for o in self.outcomes],
        }
