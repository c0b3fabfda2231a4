"""A River encryption device: an Olm account and the to-device messages it sends and receives.

A device is what the Towns SDK calls an ``EncryptionDevice``: an Olm account whose curve25519
identity key is the *device key* and whose curve25519 fallback key is the *fallback key*, both
published as unpadded base64 (43 characters) in the user's metadata stream
(``UserMetadataPayload.EncryptionDevice``). Other devices send it group session keys with Olm
(``r.olm.v1.curve25519-aes-sha2``) the way the SDK does:

- the sender builds a NEW outbound Olm session for every message, from the recipient's
  identity key and its fallback key (in place of a one-time key), so every message is a
  pre-key message (type 0); its base64 body is what travels in
  ``GroupEncryptionSessions.ciphertexts[device_key]``;
- the receiver accepts only pre-key messages and creates an inbound session from each one.

The Olm implementation is vodozemac (the PyPI bindings), which interoperates with the libolm
build the SDK uses (``@towns-protocol/olm``). Usage::

    alice, bob = Device(), Device()
    body = alice.encrypt_to(bob.device_key, bob.fallback_key, '{"keys":[]}')
    assert bob.decrypt_from(alice.device_key, body) == b'{"keys":[]}'

A device survives restarts through ``pickle(key)`` / ``Device.from_pickle(pickled, key)``
(vodozemac's encrypted pickle, 32-byte key); ``Device.from_libolm_pickle`` loads an account
pickled by the SDK (``ExportedDevice.pickledAccount`` with its ``pickleKey``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import vodozemac

from river_client.encryption.exceptions import DeviceKeyError, OlmMessageError

logger = logging.getLogger(__name__)

OLM_ALGORITHM = "r.olm.v1.curve25519-aes-sha2"
PRE_KEY_MESSAGE_TYPE = 0
PICKLE_KEY_LENGTH = 32
# The SDK refuses longer Olm plaintexts: an event is at most 64 KiB and bodies are base64.
MAX_PLAINTEXT_LENGTH = 65536 * 3 // 4


@dataclass(frozen=True, slots=True)
class UserDevice:
    """The public half of a device as other members see it (the SDK's ``UserDevice``)."""

    device_key: str
    fallback_key: str


def unpadded_base64(data: bytes) -> str:
    """Standard base64 without ``=`` padding, the encoding Olm uses for keys and bodies."""
    return base64.b64encode(data).decode("ascii").rstrip("=")


def decode_unpadded_base64(text: str) -> bytes:
    """Decode standard base64 with or without padding; raises ValueError naming the text."""
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as error:
        raise ValueError(f"not base64: {text!r} ({error})") from error


def curve25519_key(text: str, what: str = "device key") -> vodozemac.Curve25519PublicKey:
    """Parse an unpadded base64 curve25519 public key; DeviceKeyError names the bad value."""
    if not isinstance(text, str) or len(text.rstrip("=")) != 43:
        raise DeviceKeyError(
            f"{what} {text!r} is not a curve25519 public key: expected 43 characters of "
            "unpadded base64 (32 bytes)"
        )
    try:
        return vodozemac.Curve25519PublicKey.from_base64(text.rstrip("="))
    except Exception as error:
        raise DeviceKeyError(
            f"{what} {text!r} is not a curve25519 public key in base64: {error}"
        ) from error


def pickle_key_from_secret(secret: bytes | str) -> bytes:
    """A 32-byte pickle key derived from a secret (SHA-256), e.g. from a wallet private key."""
    data = secret.encode() if isinstance(secret, str) else secret
    return hashlib.sha256(data).digest()


class Device:
    """An Olm account with a fallback key: the River device of one client.

    ``device_key`` and ``fallback_key`` never change for the life of the device (the fallback
    key is generated once and never rotated, as the SDK does).
    """

    def __init__(self, account: vodozemac.Account | None = None) -> None:
        self._account = account if account is not None else vodozemac.Account()
        # The fallback key API is missing from vodozemac's type stubs.
        untyped: Any = self._account
        if not untyped.fallback_key:
            untyped.generate_fallback_key()
        self.device_key: str = self._account.curve25519_key.to_base64()
        self.fallback_key: str = next(iter(untyped.fallback_key.values())).to_base64()

    def __repr__(self) -> str:
        return f"Device(device_key={self.device_key!r})"

    @property
    def user_device(self) -> UserDevice:
        """The keys to publish in ``UserMetadataPayload.EncryptionDevice``."""
        return UserDevice(self.device_key, self.fallback_key)

    # Persistence

    def pickle(self, pickle_key: bytes) -> str:
        """The account encrypted with a 32-byte key (vodozemac pickle format)."""
        _check_pickle_key(pickle_key)
        return self._account.pickle(pickle_key)

    @classmethod
    def from_pickle(cls, pickled: str, pickle_key: bytes) -> Device:
        """Restore a device from ``pickle``; OlmMessageError if the key or data are wrong."""
        _check_pickle_key(pickle_key)
        try:
            account = vodozemac.Account.from_pickle(pickled, pickle_key)
        except Exception as error:
            raise OlmMessageError(f"cannot unpickle the device account: {error}") from error
        return cls(account)

    @classmethod
    def from_libolm_pickle(cls, pickled: str, pickle_key: str | bytes) -> Device:
        """Load an account pickled by libolm, e.g. the SDK's ``ExportedDevice.pickledAccount``."""
        key = pickle_key.encode() if isinstance(pickle_key, str) else pickle_key
        try:
            account = vodozemac.Account.from_libolm_pickle(pickled, key)
        except Exception as error:
            raise OlmMessageError(f"cannot load the libolm account pickle: {error}") from error
        return cls(account)

    # Olm to-device messages

    def encrypt_to(self, device_key: str, fallback_key: str, plaintext: str | bytes) -> str:
        """Encrypt for one device; returns the base64 body of a pre-key (type 0) message.

        A new outbound session is created for every call, from the recipient's identity key
        and fallback key, exactly like the SDK's ``encryptUsingFallbackKey``.
        """
        data = plaintext.encode() if isinstance(plaintext, str) else plaintext
        if len(data) > MAX_PLAINTEXT_LENGTH:
            raise ValueError(
                f"Olm plaintext of {len(data)} bytes is too long: at most "
                f"{MAX_PLAINTEXT_LENGTH} bytes fit in an event"
            )
        identity = curve25519_key(device_key, "device key")
        one_time = curve25519_key(fallback_key, "fallback key")

        session = self._account.create_outbound_session(identity, one_time)
        message_type, body = session.encrypt(data).to_parts()
        if message_type != PRE_KEY_MESSAGE_TYPE:
            raise OlmMessageError(
                f"a fresh Olm session produced message type {message_type}, expected a "
                f"pre-key message (type {PRE_KEY_MESSAGE_TYPE})"
            )
        return unpadded_base64(body)

    def decrypt_from(self, sender_key: str, body: str) -> bytes:
        """Decrypt a pre-key message body sent to this device by the device ``sender_key``.

        Raises OlmMessageError when the body is not a pre-key message or was not made for
        this device's identity and fallback keys.
        """
        sender = curve25519_key(sender_key, "sender key")
        try:
            message = vodozemac.PreKeyMessage.from_base64(body.rstrip("="))
        except Exception as error:
            raise OlmMessageError(
                f"Olm body from {sender_key} is not a base64 pre-key message (type "
                f"{PRE_KEY_MESSAGE_TYPE}), the only type River devices send: {error}"
            ) from error
        try:
            _session, plaintext = self._account.create_inbound_session(sender, message)
        except Exception as error:
            raise OlmMessageError(
                f"Olm pre-key message from {sender_key} does not decrypt with device "
                f"{self.device_key}: {error}"
            ) from error
        return bytes(plaintext)


def _check_pickle_key(pickle_key: bytes) -> None:
    if not isinstance(pickle_key, bytes | bytearray) or len(pickle_key) != PICKLE_KEY_LENGTH:
        size = len(pickle_key) if isinstance(pickle_key, bytes | bytearray) else type(pickle_key)
        raise ValueError(
            f"pickle key must be {PICKLE_KEY_LENGTH} bytes, got {size}; "
            "pickle_key_from_secret() derives one from any secret"
        )
