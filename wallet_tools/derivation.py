"""HD test wallets: BIP-32 keys on the BIP-44 Ethereum path m/44'/60'/0'/0/i, derived fast.

Specs: BIP-39 (seed), BIP-32 (private child key derivation, CKDpriv), BIP-44 (path), EIP-55
(checksummed addresses). The result equals ethers' `HDNode.fromMnemonic(m).derivePath(...)`
and eth-account's `Account.from_mnemonic(m, account_path=...)`.

The costly part of a wallet is the seed (PBKDF2, ~2 ms) and the four levels above the wallet
index; `HDWallets` computes both once per mnemonic and keeps the m/44'/60'/0'/0 node, so each
further wallet costs one HMAC-SHA512 and one elliptic-curve multiplication.

    wallets = HDWallets("test test test test test test test test test test test junk")
    wallets.wallet(0).address   # '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266'
    for wallet in wallets.wallets(0, 40): ...
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING

from coincurve import PrivateKey, PublicKey
from eth_hash.auto import keccak
from eth_utils import to_checksum_address

from wallet_tools.exceptions import InvalidPrivateKeyError, InvalidRangeError
from wallet_tools.mnemonic import mnemonic_to_seed, validate_mnemonic

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

DEFAULT_BASE_PATH = "m/44'/60'/0'/0"
HARDENED = 0x8000_0000
SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@dataclass(frozen=True)
class Wallet:
    """One derived wallet. Its repr and str never show the private key."""

    index: int
    address: str
    private_key: bytes = field(repr=False)

    @property
    def private_key_hex(self) -> str:
        return "0x" + self.private_key.hex()

    @cached_property
    def account(self) -> LocalAccount:
        """The eth-account signer for this wallet."""
        from eth_account import Account

        return Account.from_key(self.private_key)


def address_of(private_key: bytes) -> str:
    """EIP-55 address of a 32-byte secp256k1 private key."""
    public = PublicKey.from_secret(private_key).format(compressed=False)
    return to_checksum_address(keccak(public[1:])[-20:])


def wallet_from_private_key(private_key: str | bytes, index: int = -1) -> Wallet:
    """A Wallet for a raw key (hex with or without 0x, or 32 bytes); validates the key."""
    if isinstance(private_key, str):
        text = private_key.strip()
        text = text[2:] if text[:2].lower() == "0x" else text
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise InvalidPrivateKeyError(
                "a private key is 64 hex digits (optionally 0x-prefixed); got a value of "
                f"{len(text)} characters that is not hex"
            ) from None
    else:
        raw = private_key
    if len(raw) != 32 or not 0 < int.from_bytes(raw, "big") < SECP256K1_ORDER:
        raise InvalidPrivateKeyError(
            f"a private key is 32 bytes between 1 and the secp256k1 order; got {len(raw)} bytes"
        )
    return Wallet(index=index, address=address_of(raw), private_key=raw)


def parse_path(path: str) -> list[int]:
    """BIP-32 path text ("m/44'/60'/0'/0") to child numbers, hardened ones offset by 2**31."""
    parts = path.strip().split("/")
    if not parts or parts[0] != "m":
        raise InvalidRangeError(f"a derivation path starts with 'm/'; got {path!r}")
    numbers = []
    for part in parts[1:]:
        hardened = part.endswith(("'", "h", "H"))
        digits = part[:-1] if hardened else part
        if not digits.isdigit() or int(digits) >= HARDENED:
            raise InvalidRangeError(
                f"path element {part!r} of {path!r} is not a number below 2**31 "
                "(optionally followed by ')"
            )
        numbers.append(int(digits) + (HARDENED if hardened else 0))
    return numbers


def _child(
    key: int, chain_code: bytes, number: int, public: bytes | None = None
) -> tuple[int, bytes]:
    """CKDpriv: the child's private key and chain code (BIP-32)."""
    if number >= HARDENED:
        data = b"\x00" + key.to_bytes(32, "big") + number.to_bytes(4, "big")
    else:
        if public is None:
            public = PublicKey.from_secret(key.to_bytes(32, "big")).format(compressed=True)
        data = public + number.to_bytes(4, "big")
    digest = hmac.digest(chain_code, data, hashlib.sha512)
    tweak = int.from_bytes(digest[:32], "big")
    child = (tweak + key) % SECP256K1_ORDER
    if tweak >= SECP256K1_ORDER or child == 0:
        # Probability below 2**-127; BIP-32 says to move on to the next index.
        raise InvalidRangeError(f"child {number} is not a valid key (BIP-32); use another index")
    return child, digest[32:]


@lru_cache(maxsize=32)
def _account_node(mnemonic: str, passphrase: str, base_path: str) -> tuple[int, bytes, bytes]:
    """Private key, chain code and compressed public key at base_path; seed computed once."""
    seed = mnemonic_to_seed(mnemonic, passphrase)
    digest = hmac.digest(b"Bitcoin seed", seed, hashlib.sha512)
    key, chain_code = int.from_bytes(digest[:32], "big"), digest[32:]
    for number in parse_path(base_path):
        key, chain_code = _child(key, chain_code, number)
    public = PrivateKey(key.to_bytes(32, "big")).public_key.format(compressed=True)
    return key, chain_code, public


class HDWallets:
    """The wallets of one mnemonic at base_path/i, from a node computed once per mnemonic."""

    def __init__(
        self, mnemonic: str, *, passphrase: str = "", base_path: str = DEFAULT_BASE_PATH
    ) -> None:
        self._mnemonic = validate_mnemonic(mnemonic)
        self._passphrase = passphrase
        parse_path(base_path)
        self.base_path = base_path.strip().rstrip("/")

    def __repr__(self) -> str:
        return f"HDWallets(base_path={self.base_path!r})"

    def _node(self) -> tuple[int, bytes, bytes]:
        return _account_node(self._mnemonic, self._passphrase, self.base_path)

    def wallet(self, index: int) -> Wallet:
        """The wallet at base_path/index (non-hardened index, 0 ≤ index < 2**31)."""
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < HARDENED:
            raise InvalidRangeError(f"wallet index must be an integer in [0, 2**31); got {index!r}")
        key, chain_code, public = self._node()
        child, _ = _child(key, chain_code, index, public)
        raw = child.to_bytes(32, "big")
        return Wallet(index=index, address=address_of(raw), private_key=raw)

    def wallets(self, start: int, end: int) -> list[Wallet]:
        """Wallets for every index in [start, end) (end exclusive, as the TypeScript tool)."""
        check_range(start, end)
        return [self.wallet(i) for i in range(start, end)]

    def addresses(self, start: int, end: int) -> list[str]:
        return [wallet.address for wallet in self.wallets(start, end)]


def check_range(start: int, end: int) -> None:
    """Raise InvalidRangeError unless 0 ≤ start ≤ end < 2**31."""
    for name, value in (("start", start), ("end", end)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InvalidRangeError(f"--{name} must be a non-negative integer; got {value!r}")
        if value > HARDENED:
            raise InvalidRangeError(f"--{name} must be at most 2**31; got {value}")
    if start > end:
        raise InvalidRangeError(
            f"--start ({start}) must not be greater than --end ({end}); the range is [start, end)"
        )
