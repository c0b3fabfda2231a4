"""Keys that sign River events: a wallet and the device (delegate) key it authorizes.

River events are signed with secp256k1 over the 32-byte event hash, with no Ethereum prefix:
65 bytes r ‖ s ‖ v where v is the recovery id 0 or 1 (deterministic RFC 6979, low s).

A client normally signs with a fresh per-client device key. The wallet authorizes it once with
a delegate signature: an EIP-191 personal-message signature (v 27/28) over
``"RIVERSIG" ‖ device public key (65 bytes, uncompressed, 04 prefix) ‖ int64-LE(expiry ms)``.
Every event then carries the wallet address as `creator_address`, the delegate signature and
its expiry (0 = never).

Usage::

    signer = DelegateSigner(wallet_private_key, expiry_epoch_ms=now_ms + 86_400_000)
    signature = signer.sign_hash(event_hash)
"""

from __future__ import annotations

import os
import struct
import time
from typing import Protocol

from coincurve import PrivateKey, PublicKey
from Crypto.Hash import keccak
from eth_utils import to_checksum_address

DELEGATE_PREFIX = b"RIVERSIG"
DEFAULT_DELEGATE_LIFETIME_MS = 24 * 3600 * 1000


def keccak256(data: bytes) -> bytes:
    """Keccak-256 (Ethereum's hash) of `data`."""
    return keccak.new(digest_bits=256, data=data).digest()


def address_of_public_key(public_key: bytes) -> bytes:
    """The 20-byte Ethereum address of a 65-byte uncompressed (or 64-byte raw) public key."""
    raw = public_key[1:] if len(public_key) == 65 else public_key
    if len(raw) != 64:
        raise ValueError(f"public key must be 64 or 65 bytes, got {len(public_key)}")
    return keccak256(raw)[12:]


def eip191_hash(message: bytes) -> bytes:
    """The hash an Ethereum personal_sign (EIP-191 version 0x45) signs for `message`."""
    return keccak256(b"\x19Ethereum Signed Message:\n" + str(len(message)).encode() + message)


def delegate_message(device_public_key: bytes, expiry_epoch_ms: int) -> bytes:
    """The bytes a wallet signs to authorize a device key: RIVERSIG ‖ pubkey ‖ int64-LE expiry."""
    return DELEGATE_PREFIX + device_public_key + struct.pack("<q", expiry_epoch_ms)


def sign_recoverable(private_key: PrivateKey, digest: bytes) -> bytes:
    """r ‖ s ‖ v (v = 0 or 1) secp256k1 signature of a 32-byte digest."""
    return bytes(private_key.sign_recoverable(digest, hasher=None))


def recover_public_key(digest: bytes, signature: bytes) -> bytes:
    """The 65-byte uncompressed public key that produced `signature` (v 0/1 or 27/28)."""
    if len(signature) != 65:
        raise ValueError(f"signature must be 65 bytes, got {len(signature)}")
    v = signature[64]
    if v >= 27:
        v -= 27
    if v not in (0, 1):
        raise ValueError(f"signature recovery id must be 0/1 or 27/28, got {signature[64]}")
    key = PublicKey.from_signature_and_message(signature[:64] + bytes([v]), digest, hasher=None)
    return bytes(key.format(compressed=False))


def recover_address(digest: bytes, signature: bytes) -> bytes:
    """The 20-byte address whose key produced `signature` over `digest`."""
    return address_of_public_key(recover_public_key(digest, signature))


def sign_delegate(wallet_key: PrivateKey, device_public_key: bytes, expiry_epoch_ms: int) -> bytes:
    """The wallet's EIP-191 signature (v 27/28) authorizing `device_public_key`."""
    digest = eip191_hash(delegate_message(device_public_key, expiry_epoch_ms))
    signature = sign_recoverable(wallet_key, digest)
    return signature[:64] + bytes([signature[64] + 27])


class EventSigner(Protocol):
    """What building an event needs from a signer."""

    @property
    def creator_address(self) -> bytes: ...

    @property
    def delegate_sig(self) -> bytes: ...

    @property
    def delegate_expiry_epoch_ms(self) -> int: ...

    def sign_hash(self, digest: bytes) -> bytes: ...


class WalletSigner:
    """Signs events with the wallet key itself (no delegate signature)."""

    def __init__(self, wallet_private_key: bytes) -> None:
        self._key = PrivateKey(wallet_private_key)
        self.public_key = bytes(self._key.public_key.format(compressed=False))
        self.creator_address = address_of_public_key(self.public_key)
        self.delegate_sig = b""
        self.delegate_expiry_epoch_ms = 0

    @property
    def user_id(self) -> str:
        """The wallet's checksummed address."""
        return str(to_checksum_address(self.creator_address))

    def sign_hash(self, digest: bytes) -> bytes:
        """r ‖ s ‖ v (v 0/1) over a 32-byte event hash."""
        return sign_recoverable(self._key, digest)

    def __repr__(self) -> str:
        return f"WalletSigner({self.user_id})"


class DelegateSigner:
    """A device key authorized by a wallet; signs events on the wallet's behalf.

    `device_private_key` defaults to a fresh random key; `expiry_epoch_ms` defaults to one day
    from now (0 means no expiry).
    """

    def __init__(
        self,
        wallet_private_key: bytes,
        expiry_epoch_ms: int | None = None,
        device_private_key: bytes | None = None,
    ) -> None:
        wallet_key = PrivateKey(wallet_private_key)
        self.creator_address = address_of_public_key(
            bytes(wallet_key.public_key.format(compressed=False))
        )
        self._device_key = PrivateKey(device_private_key or os.urandom(32))
        self.device_public_key = bytes(self._device_key.public_key.format(compressed=False))
        self.device_address = address_of_public_key(self.device_public_key)
        if expiry_epoch_ms is None:
            expiry_epoch_ms = int(time.time() * 1000) + DEFAULT_DELEGATE_LIFETIME_MS
        self.delegate_expiry_epoch_ms = expiry_epoch_ms
        self.delegate_sig = sign_delegate(wallet_key, self.device_public_key, expiry_epoch_ms)

    @property
    def user_id(self) -> str:
        """The wallet's checksummed address."""
        return str(to_checksum_address(self.creator_address))

    def sign_hash(self, digest: bytes) -> bytes:
        """r ‖ s ‖ v (v 0/1) over a 32-byte event hash, by the device key."""
        return sign_recoverable(self._device_key, digest)

    def __repr__(self) -> str:
        return f"DelegateSigner({self.user_id}, expiry={self.delegate_expiry_epoch_ms})"
