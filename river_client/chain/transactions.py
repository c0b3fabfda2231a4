"""Fees, signing and receipts for membership transactions (EIP-1559, type 2).

Fees follow the usual EIP-1559 rule: `maxFeePerGas = 2 × baseFee + tip`, the tip from
`eth_maxPriorityFeePerGas` (or `eth_gasPrice − baseFee` where that method is missing). A
replacement for a stuck or dropped transaction raises both by at least 12.5 %, above the 10 %
that geth-like pools require. Signing is local (eth-account); nothing here waits or sleeps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import rlp  # type: ignore[import-untyped]  # a dependency of eth-account, untyped
from eth_account import Account
from eth_hash.auto import keccak

from river_client.chain.abi import MEMBERSHIP_TOKEN_ISSUED, calldata, topic, topic_address
from wallet_tools.exceptions import JsonRpcError
from wallet_tools.rpc import JsonRpc

ISSUED_TOPIC = topic(MEMBERSHIP_TOKEN_ISSUED)
DEFAULT_TIP_WEI = 1_000_000  # 0.001 gwei, what Base usually needs; only when no method answers
BUMP_NUMERATOR, BUMP_DENOMINATOR = 9, 8  # +12.5 %
MAX_BATCH = 100  # calls per JSON-RPC batch request


def batched(rpc: JsonRpc, calls: Sequence[tuple[str, Sequence[object]]]) -> list[Any]:
    """`rpc.batch` in HTTP requests of at most MAX_BATCH calls (public endpoints cap batches)."""
    results: list[Any] = []
    for start in range(0, len(calls), MAX_BATCH):
        results += rpc.batch(calls[start : start + MAX_BATCH])
    return results


@dataclass(frozen=True)
class Fees:
    """EIP-1559 fee caps for one block."""

    block_number: int
    base_fee: int
    max_priority_fee_per_gas: int
    max_fee_per_gas: int

    def bumped(self, current: Fees | None = None) -> Fees:
        """Fees for a replacement: +12.5 % on both caps, and never below `current`."""
        tip = self.max_priority_fee_per_gas * BUMP_NUMERATOR // BUMP_DENOMINATOR + 1
        cap = self.max_fee_per_gas * BUMP_NUMERATOR // BUMP_DENOMINATOR + 1
        if current is not None:
            tip = max(tip, current.max_priority_fee_per_gas)
            cap = max(cap, current.max_fee_per_gas)
        return Fees(
            current.block_number if current else self.block_number,
            self.base_fee,
            tip,
            max(cap, tip),
        )


def fees_from(block: dict[str, Any], tip_reply: object, gas_price_reply: object = None) -> Fees:
    """Fees from a block header and the answers to eth_maxPriorityFeePerGas / eth_gasPrice."""
    base_fee = int(block.get("baseFeePerGas") or "0x0", 16)
    if isinstance(tip_reply, str):
        tip = int(tip_reply, 16)
    elif isinstance(gas_price_reply, str):
        tip = max(int(gas_price_reply, 16) - base_fee, 0)
    else:
        tip = DEFAULT_TIP_WEI
    return Fees(int(block["number"], 16), base_fee, tip, 2 * base_fee + tip)


def read_fees(rpc: JsonRpc) -> Fees:
    """Current fees in one round trip."""
    block, tip, gas_price = rpc.batch(
        [
            ("eth_getBlockByNumber", ["latest", False]),
            ("eth_maxPriorityFeePerGas", []),
            ("eth_gasPrice", []),
        ]
    )
    if not isinstance(block, dict):
        raise block if isinstance(block, Exception) else ValueError("no latest block")
    return fees_from(block, tip, gas_price)


@dataclass(frozen=True)
class SignedTransaction:
    raw: str
    hash: str


def sign_join(
    private_key: bytes,
    *,
    chain_id: int,
    space_address: str,
    recipient: str,
    nonce: int,
    value: int,
    gas: int,
    fees: Fees,
) -> SignedTransaction:
    """A signed `joinSpace(recipient)` transaction (EIP-1559) and its hash, computed locally.

    The EIP-2718 envelope is RLP-encoded here and its signing hash signed with eth-account's
    `unsafe_sign_hash`: byte for byte what `Account.sign_transaction` produces (RFC 6979
    signatures are deterministic), at a quarter of its cost, which matters for hundreds of
    mints signed at once.
    """
    fields: list[Any] = [
        chain_id,
        nonce,
        fees.max_priority_fee_per_gas,
        fees.max_fee_per_gas,
        gas,
        bytes.fromhex(space_address.removeprefix("0x")),
        value,
        bytes.fromhex(calldata("joinSpace(address)", recipient).removeprefix("0x")),
        [],  # access list
    ]
    signature = Account.unsafe_sign_hash(keccak(b"\x02" + rlp.encode(fields)), private_key)
    y_parity = signature.v - 27 if signature.v >= 27 else signature.v
    raw = b"\x02" + rlp.encode([*fields, y_parity, signature.r, signature.s])
    return SignedTransaction("0x" + raw.hex(), "0x" + keccak(raw).hex())


def issued_token(receipt: dict[str, Any], space_address: str, recipient: str) -> int | None:
    """The token id of the MembershipTokenIssued log for `recipient` in a receipt, if any."""
    wanted = topic_address(recipient)
    for log in receipt.get("logs") or []:
        topics = [t.lower() for t in log.get("topics") or []]
        if (
            str(log.get("address", "")).lower() == space_address.lower()
            and len(topics) == 3
            and topics[0] == ISSUED_TOPIC
            and topics[1] == wanted
        ):
            return int(topics[2], 16)
    return None


def revert_data(rpc: JsonRpc, transaction: dict[str, Any], block: str | int) -> object:
    """Replay a call with eth_call and return the revert data it produces (None if it passes)."""
    tag = hex(block) if isinstance(block, int) else block
    try:
        rpc.call("eth_call", transaction, tag)
    except JsonRpcError as error:
        return error.data if error.data is not None else error.rpc_message
    return None


NONCE_TOO_LOW = ("nonce too low", "noncetoolow", "oldnonce", "nonce has already been used")
UNDERPRICED = ("replacement transaction underpriced", "replacement underpriced", "underpriced")
ALREADY_KNOWN = ("already known", "alreadyknown", "known transaction", "already imported")


def classify_send_error(message: str) -> str:
    """`nonce_too_low`, `underpriced`, `already_known` or `other` for a send error message."""
    text = message.lower().replace("_", " ")
    compact = text.replace(" ", "")
    for kind, needles in (
        ("already_known", ALREADY_KNOWN),
        ("nonce_too_low", NONCE_TOO_LOW),
        ("underpriced", UNDERPRICED),
    ):
        if any(needle in text or needle.replace(" ", "") in compact for needle in needles):
            return kind
    return "other"
