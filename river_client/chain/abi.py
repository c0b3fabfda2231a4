"""Calldata and return data for the few contract functions the chain client uses.

Solidity ABI encoding (https://docs.soliditylang.org/en/latest/abi-spec.html) through `eth_abi`.
Function signatures, selectors, event topics and custom errors are those of the Towns space
contract (MembershipFacet, ERC721AQueryable, ERC5643, Multicall) and the River registry.

    calldata("tokensOfOwner(address)", "0xf39F...")   # '0x8462151c000...'
    decode(["uint256[]"], returned_hex)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_hash.auto import keccak

ETH_CURRENCY = "0xEeeeeEeeeEeEeeEeEeEeeEEEeeeeEeeeeeeeEEeE"

MEMBERSHIP_TOKEN_ISSUED = "MembershipTokenIssued(address,uint256)"
MEMBERSHIP_TOKEN_REJECTED = "MembershipTokenRejected(address)"
TRANSFER = "Transfer(address,address,uint256)"

KNOWN_ERRORS = (
    "Membership__InsufficientPayment()",
    "Membership__InvalidPayment()",
    "Membership__MaxSupplyReached()",
    "Membership__InvalidAddress()",
    "Membership__UnexpectedValue()",
    "Membership__InvalidAction()",
    "Membership__Banned()",
    "Reentrancy()",
    "Ownable__NotOwner(address)",
)


def selector(signature: str) -> str:
    """The 4-byte function or error selector of a canonical signature, as `0x` + 8 hex."""
    return "0x" + keccak(signature.encode()).hex()[:8]


def topic(signature: str) -> str:
    """The topic 0 of an event signature, as `0x` + 64 hex."""
    return "0x" + keccak(signature.encode()).hex()


def argument_types(signature: str) -> list[str]:
    """The argument types of a flat signature such as `f(address,uint256)` (no tuples)."""
    inside = signature[signature.index("(") + 1 : signature.rindex(")")]
    return [part for part in inside.split(",") if part]


def calldata(signature: str, *args: Any) -> str:
    """Selector plus ABI-encoded arguments, as `0x` hex."""
    types = argument_types(signature)
    if len(types) != len(args):
        raise ValueError(f"{signature} takes {len(types)} arguments, got {len(args)}")
    return selector(signature) + abi_encode(types, list(args)).hex()


def decode(types: Sequence[str], data: str | bytes) -> tuple[Any, ...]:
    """Decode ABI return data (hex or bytes) into a tuple of Python values."""
    raw = bytes.fromhex(data.removeprefix("0x")) if isinstance(data, str) else data
    return tuple(abi_decode(list(types), raw))


def multicall_data(calls: Sequence[str]) -> str:
    """Calldata of `multicall(bytes[])` bundling already-encoded calls (hex strings)."""
    return calldata("multicall(bytes[])", [bytes.fromhex(c.removeprefix("0x")) for c in calls])


def decode_multicall(data: str) -> list[bytes]:
    """The `bytes[]` a multicall returned, one item per bundled call."""
    (results,) = decode(["bytes[]"], data)
    return list(results)


def topic_address(address: str) -> str:
    """An address as an indexed event topic (32 bytes, lowercase)."""
    return "0x" + "0" * 24 + address.lower().removeprefix("0x")


_ERROR_NAMES = {selector(signature): signature for signature in KNOWN_ERRORS}
_ERROR_STRING = selector("Error(string)")
_PANIC = selector("Panic(uint256)")


def describe_revert(data: object) -> str:
    """A readable name for revert data: a known custom error, Error(string), Panic, or hex."""
    if not isinstance(data, str) or not data.startswith("0x") or len(data) < 10:
        return "reverted without data"
    head = data[:10].lower()
    if head in _ERROR_NAMES:
        return _ERROR_NAMES[head]
    try:
        if head == _ERROR_STRING:
            return f"Error({decode(['string'], data[10:])[0]!r})"
        if head == _PANIC:
            return f"Panic({decode(['uint256'], data[10:])[0]:#x})"
    except Exception:
        pass
    return f"custom error {head}"
