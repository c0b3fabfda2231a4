"""End-to-end encryption of River messages, as the Towns SDK does it; pure, no network.

- ``device``: the Olm account of a client (device key, fallback key) and Olm to-device
  messages (one new session per message, always pre-key).
- ``hybrid``: hybrid group sessions (``grpaes``, AES-256-GCM), EncryptedData, SessionStore.
- ``stream_sessions``: a SessionStore's index of one stream's sessions (sorted hex ids).
- ``sharing``: GroupEncryptionSessions inbox payloads carrying SessionKeys to member devices.
- ``solicitation``: KeySolicitation / KeyFulfillment for members that miss session keys.
- ``exceptions``: the error tree.
"""

from river_client.encryption.device import Device, UserDevice
from river_client.encryption.exceptions import (
    DeviceKeyError,
    EncryptionError,
    MessageDecryptionError,
    OlmMessageError,
    SessionMismatchError,
)
from river_client.encryption.hybrid import (
    HYBRID_ALGORITHM,
    HybridSession,
    SessionStore,
    decrypt_channel_message,
    decrypt_message,
    encrypt_channel_message,
    encrypt_message,
)

__all__ = [
    "HYBRID_ALGORITHM",
    "Device",
    "DeviceKeyError",
    "EncryptionError",
    "HybridSession",
    "MessageDecryptionError",
    "OlmMessageError",
    "SessionMismatchError",
    "SessionStore",
    "UserDevice",
    "decrypt_channel_message",
    "decrypt_message",
    "encrypt_channel_message",
    "encrypt_message",
]
