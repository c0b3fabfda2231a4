"""Checking what users type: indices, percentages, amounts, addresses, and secrets.

Each check returns the parsed value or raises an `InputError` whose message names the bad
value and says what would be valid; the command line turns that into exit code 2 before
anything is sent. Secrets (mnemonics, private keys) come from a flag, an environment variable
or a hidden prompt, in that order, and are never echoed back.
"""

from __future__ import annotations

import getpass
import os
import re
import sys
from decimal import Decimal, InvalidOperation

from eth_utils import to_checksum_address

from wallet_tools.exceptions import (
    InputError,
    InvalidAddressError,
    InvalidAmountError,
    InvalidRangeError,
)
from wallet_tools.fees import check_buffer
from wallet_tools.rpc import check_rpc_url

ADDRESS_PATTERN = re.compile(r"^0x[0-9a-fA-F]{40}$")


def parse_index(text: str, flag: str) -> int:
    """A wallet index: a whole number ≥ 0."""
    value = text.strip()
    if not value.isdigit():
        raise InvalidRangeError(f"{flag} must be a whole number ≥ 0; got {text!r}")
    return int(value)


def parse_buffer(text: str) -> int:
    """The gas buffer: a whole percentage from 0 to 100."""
    value = text.strip()
    if not value.isdigit():
        raise InvalidAmountError(
            f"--gas-buffer must be a whole percentage from 0 to 100; got {text!r}"
        )
    return check_buffer(int(value))


def parse_eth_amount(text: str) -> int:
    """A positive amount of ETH (up to 18 decimals) in wei."""
    try:
        amount = Decimal(text.strip())
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite() or amount <= 0:
        raise InvalidAmountError(
            f"--amount must be a positive number of ETH, like 0.01; got {text!r}"
        )
    wei = amount * 10**18
    if wei != wei.to_integral_value():
        raise InvalidAmountError(
            f"--amount has more than 18 decimals (finer than 1 wei); got {text!r}"
        )
    return int(wei)


def parse_address(text: str, flag: str) -> str:
    """A 20-byte hex address; mixed case must carry a valid EIP-55 checksum."""
    value = text.strip()
    if not ADDRESS_PATTERN.match(value):
        raise InvalidAddressError(f"{flag} must be 0x followed by 40 hex digits; got {text!r}")
    checksummed = to_checksum_address(value)
    body = value[2:]
    if body != body.lower() and body != body.upper() and value != checksummed:
        raise InvalidAddressError(
            f"{flag} {text!r} has a wrong EIP-55 checksum; did you mean {checksummed}?"
        )
    return checksummed


def read_secret(flag_value: str | None, env_names: tuple[str, ...], prompt: str, flag: str) -> str:
    """A secret from its flag, else the first set environment variable, else a hidden prompt."""
    if flag_value:
        return flag_value
    for name in env_names:
        if os.environ.get(name):
            return os.environ[name]
    if sys.stdin is not None and sys.stdin.isatty():
        entered = getpass.getpass(prompt)
        if entered.strip():
            return entered
    raise InputError(
        f"{flag} is missing: pass {flag}, set {' or '.join(env_names)}, "
        "or run in a terminal to type it at a hidden prompt"
    )


def parse_rpc_url(text: str) -> str:
    """An http(s) JSON-RPC URL (whether it answers is checked when connecting)."""
    return check_rpc_url(text)
