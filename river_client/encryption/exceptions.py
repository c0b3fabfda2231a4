"""Errors of the encryption layer.

Every message names the offending value (a key, a session id, a stream id) and what would
have been valid. The tree::

    EncryptionError
    ├── DeviceKeyError          a device or fallback key that is not an unpadded base64
    │                           curve25519 public key (43 characters)
    ├── OlmMessageError         an Olm body that is not a pre-key message, or that does not
    │                           decrypt with this device's identity and fallback keys
    ├── SessionMismatchError    a shared hybrid session whose stream id or session id does not
    │                           match what it claims (RVR_HSK hash re-computed on import)
    └── MessageDecryptionError  EncryptedData that cannot be opened: unknown algorithm or
                                version, missing fields, a wrong key or a tampered ciphertext
"""

from __future__ import annotations


class EncryptionError(Exception):
    """Base class of every error raised by river_client.encryption."""


class DeviceKeyError(EncryptionError, ValueError):
    """A device key or fallback key is not a valid curve25519 public key."""


class OlmMessageError(EncryptionError):
    """An Olm to-device message could not be decrypted."""


class SessionMismatchError(EncryptionError, ValueError):
    """A hybrid group session key does not match its stream id or session id."""


class MessageDecryptionError(EncryptionError):
    """An EncryptedData message could not be decrypted."""
