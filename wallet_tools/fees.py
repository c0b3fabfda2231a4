"""Transaction fees for sweeping a wallet: EIP-1559 or legacy, plus the OP-stack L1 data fee.

Specs: EIP-1559 (type-2 transactions, base fee), EIP-2718 (typed envelopes), EIP-155 (legacy
chain id), the OP-stack GasPriceOracle predeploy at 0x420000000000000000000000000000000000000F
(`getL1Fee(bytes)` over the unsigned RLP transaction; `getOperatorFee(uint256)` since Isthmus).

To leave as little as possible behind, the per-gas price is deterministic: a type-2
transaction with maxFeePerGas = maxPriorityFeePerGas = P (or a legacy one with gasPrice = P)
is charged exactly P per gas whatever the base fee is at inclusion, as long as P covers it.
P is the node's suggested price plus the buffer, and at least the highest base fee the next
block can have (+12.5 %) plus the suggested tip. A plain transfer then costs exactly
21,000 × P on L2, so nothing of the L2 fee stays behind.

On OP-stack chains (Base) the L1 data fee comes on top and is only estimated (L1 prices move
between estimate and inclusion), so the buffer is added to that estimate. What stays in a swept
wallet is that margin plus the estimate's error: the least the fee model allows. The buffer is
a percentage of the fee, never of the amount transferred.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from eth_abi import encode as abi_encode
from eth_hash.auto import keccak

from wallet_tools.exceptions import InvalidAmountError, RpcError
from wallet_tools.rpc import JsonRpc

GAS_PRICE_ORACLE = "0x420000000000000000000000000000000000000F"
TRANSFER_GAS = 21_000
GET_L1_FEE = keccak(b"getL1Fee(bytes)")[:4]
GET_OPERATOR_FEE = keccak(b"getOperatorFee(uint256)")[:4]


def check_buffer(percent: int) -> int:
    if not isinstance(percent, int) or isinstance(percent, bool) or not 0 <= percent <= 100:
        raise InvalidAmountError(
            f"--gas-buffer must be a whole percentage from 0 to 100; got {percent!r}"
        )
    return percent


def add_percent(value: int, percent: int) -> int:
    """value × (100 + percent) / 100, rounded up, in integers."""
    return -(-value * (100 + percent) // 100)


@dataclass(frozen=True)
class FeeModel:
    """How a chain charges for a transaction, with the per-gas price chosen for this run."""

    chain_id: int
    eip1559: bool
    op_stack: bool
    base_fee: int | None
    suggested_price: int
    price: int
    buffer_percent: int

    @property
    def kind(self) -> str:
        tx_type = "EIP-1559" if self.eip1559 else "legacy"
        return f"{tx_type}, OP-stack L1 fee" if self.op_stack else tx_type

    def l2_fee(self, gas: int = TRANSFER_GAS) -> int:
        """What the execution part costs, exactly, at the chosen price."""
        return gas * self.price

    def price_fields(self) -> dict[str, int]:
        if self.eip1559:
            return {"type": 2, "maxFeePerGas": self.price, "maxPriorityFeePerGas": self.price}
        return {"gasPrice": self.price}

    def transaction(
        self, *, nonce: int, to: str, value: int, gas: int = TRANSFER_GAS
    ) -> dict[str, Any]:
        """An unsigned transaction dict for eth_account, priced by this model."""
        return {
            "chainId": self.chain_id,
            "nonce": nonce,
            "to": to,
            "value": value,
            "gas": gas,
            "data": b"",
            **self.price_fields(),
        }

    def l1_budget(self, l1_fee_estimate: int) -> int:
        """The L1 fee to reserve: the estimate plus the buffer."""
        return add_percent(l1_fee_estimate, self.buffer_percent)


def _int(value: Any) -> int:
    return int(value, 16) if isinstance(value, str) else int(value)


def detect_fee_model(rpc: JsonRpc, buffer_percent: int = 10) -> FeeModel:
    """Ask the chain (one batch): chain id, latest block, gas price, tip, predeploy code."""
    check_buffer(buffer_percent)
    chain_id, block, gas_price, tip, code = rpc.batch(
        [
            ("eth_chainId", []),
            ("eth_getBlockByNumber", ["latest", False]),
            ("eth_gasPrice", []),
            ("eth_maxPriorityFeePerGas", []),
            ("eth_getCode", [GAS_PRICE_ORACLE, "latest"]),
        ]
    )
    for name, value in (
        ("eth_chainId", chain_id),
        ("eth_getBlockByNumber", block),
        ("eth_gasPrice", gas_price),
    ):
        if isinstance(value, RpcError):
            raise value
        if value is None:
            raise RpcError(f"{name} returned nothing at {rpc.display_url}", url=rpc.display_url)

    suggested = _int(gas_price)
    base_fee = _int(block["baseFeePerGas"]) if block.get("baseFeePerGas") is not None else None
    op_stack = isinstance(code, str) and code not in ("0x", "0x0", "")

    if base_fee is not None:
        tip = (
            _int(tip)
            if not isinstance(tip, RpcError) and tip is not None
            else max(suggested - base_fee, 0)
        )
        # The next block's base fee is at most 12.5 % higher than this one's (EIP-1559).
        price = max(add_percent(suggested, buffer_percent), math.ceil(base_fee * 9 / 8) + tip)
    else:
        price = add_percent(suggested, buffer_percent)

    return FeeModel(
        chain_id=_int(chain_id),
        eip1559=base_fee is not None,
        op_stack=op_stack,
        base_fee=base_fee,
        suggested_price=suggested,
        price=max(price, 1),
        buffer_percent=buffer_percent,
    )


RlpItem = int | bytes | list["RlpItem"]


def rlp_encode(item: RlpItem) -> bytes:
    """Recursive Length Prefix encoding (Ethereum yellow paper, appendix B)."""
    if isinstance(item, int):
        item = item.to_bytes((item.bit_length() + 7) // 8, "big") if item else b""
    if isinstance(item, bytes):
        if len(item) == 1 and item[0] < 0x80:
            return item
        return _rlp_length(len(item), 0x80) + item
    payload = b"".join(rlp_encode(element) for element in item)
    return _rlp_length(len(payload), 0xC0) + payload


def _rlp_length(length: int, offset: int) -> bytes:
    if length < 56:
        return bytes([offset + length])
    size = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([offset + 55 + len(size)]) + size


def unsigned_rlp(tx: dict[str, Any]) -> bytes:
    """The unsigned, fully RLP-encoded transaction (type byte first for typed ones)."""
    to = bytes.fromhex(str(tx["to"])[2:])
    data = bytes(tx.get("data") or b"")
    if tx.get("type") == 2:
        fields: list[RlpItem] = [
            tx["chainId"],
            tx["nonce"],
            tx["maxPriorityFeePerGas"],
            tx["maxFeePerGas"],
            tx["gas"],
            to,
            tx["value"],
            data,
            [],
        ]
        return b"\x02" + rlp_encode(fields)
    # EIP-155 signing payload of a legacy transaction.
    return rlp_encode(
        [tx["nonce"], tx["gasPrice"], tx["gas"], to, tx["value"], data, tx["chainId"], 0, 0]
    )


def l1_fee_call(tx: dict[str, Any]) -> tuple[str, list[object]]:
    """The eth_call asking the GasPriceOracle for this transaction's L1 data fee."""
    data = GET_L1_FEE + abi_encode(["bytes"], [unsigned_rlp(tx)])
    return ("eth_call", [{"to": GAS_PRICE_ORACLE, "data": "0x" + data.hex()}, "latest"])


def l1_fees(rpc: JsonRpc, txs: list[dict[str, Any]]) -> list[int | RpcError]:
    """L1 data fee of each transaction (one batch); an RpcError where the oracle failed."""
    results = rpc.batch([l1_fee_call(tx) for tx in txs])
    return [r if isinstance(r, RpcError) else _int(r) for r in results]


def operator_fee(rpc: JsonRpc, gas: int = TRANSFER_GAS) -> int:
    """Isthmus operator fee for `gas`; 0 on chains whose oracle does not have it."""
    data = GET_OPERATOR_FEE + gas.to_bytes(32, "big")
    try:
        result = rpc.call("eth_call", {"to": GAS_PRICE_ORACLE, "data": "0x" + data.hex()}, "latest")
    except RpcError:
        return 0
    return _int(result) if result not in (None, "0x") else 0
