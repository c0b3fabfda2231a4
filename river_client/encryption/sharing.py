"""Sharing hybrid group sessions with member devices through their inbox streams.

A session reaches another member as a ``UserInboxPayload.GroupEncryptionSessions`` event in
that member's inbox stream (``a1…``), as the Towns SDK writes it
(``Client._makeShareGroupSessionsContent`` / ``encryptAndShareGroupSessionsToStream``):

- the Olm plaintext is the protobuf-JSON of ``SessionKeys``: ``{"keys":["<hex>",…]}`` without
  spaces, each key the hex of a serialized ``HybridGroupSessionKey`` (``{}`` for no keys);
- ``session_ids`` are the hex session ids in the same order as ``keys``;
- ``ciphertexts`` maps each recipient device key to the Olm pre-key body of that JSON
  (one new Olm session per device, see ``device``); one's own device is skipped;
- ``sender_key`` is the sender's device key, ``algorithm`` is ``grpaes``.

A member's devices are the ``UserMetadataPayload.EncryptionDevice`` entries of its metadata
stream (``ad…``); a re-published device key moves to the end and senders use the last 10
(``latest_devices``).

On receipt, a device decrypts ``ciphertexts[own device key]`` only when it lacks one of the
listed sessions, parses the keys and imports the missing ones; each import re-checks the
stream id and the session id hash (``SessionStore.import_key``).

Not supported: sessions of the Megolm-style ``r.group-encryption.v1.aes-sha2`` algorithm
(an empty ``algorithm`` means that one); such events are skipped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from typing import Protocol

from google.protobuf import json_format

from river_client.encryption.device import Device, UserDevice
from river_client.encryption.exceptions import SessionMismatchError
from river_client.encryption.hybrid import (
    HYBRID_ALGORITHM,
    HybridSession,
    SessionStore,
    stream_id_bytes,
)
from river_client.proto import payloads_pb2, protocol_pb2

logger = logging.getLogger(__name__)

GroupEncryptionSessions = protocol_pb2.UserInboxPayload.GroupEncryptionSessions
LEGACY_GROUP_ALGORITHM = "r.group-encryption.v1.aes-sha2"
DEVICE_LOOKBACK = 10


class DeviceKeys(Protocol):
    """Anything with the two public keys of a device: UserDevice, EncryptionDevice, ..."""

    @property
    def device_key(self) -> str: ...

    @property
    def fallback_key(self) -> str: ...


def latest_devices(
    devices: Iterable[DeviceKeys], lookback: int = DEVICE_LOOKBACK
) -> list[UserDevice]:
    """A user's devices in publication order (re-published keys last), the last ``lookback``."""
    ordered: dict[str, UserDevice] = {}
    for device in devices:
        ordered.pop(device.device_key, None)
        ordered[device.device_key] = UserDevice(device.device_key, device.fallback_key)
    return list(ordered.values())[-lookback:] if lookback > 0 else []


def session_keys_json(sessions: Sequence[HybridSession]) -> str:
    """The ``SessionKeys`` protobuf-JSON the SDK encrypts, byte for byte."""
    if not sessions:
        return "{}"
    keys = [session.to_bytes().hex() for session in sessions]
    return json.dumps({"keys": keys}, separators=(",", ":"))


def parse_session_keys(text: str | bytes) -> list[str]:
    """The ``keys`` of a ``SessionKeys`` protobuf-JSON text; ValueError if it is not one."""
    message = payloads_pb2.SessionKeys()
    try:
        json_format.Parse(text, message, ignore_unknown_fields=True)
    except json_format.ParseError as error:
        shown = text[:80] if isinstance(text, str) else text[:80].decode("utf-8", "replace")
        raise ValueError(f"not SessionKeys protobuf-JSON: {shown!r} ({error})") from error
    return list(message.keys)


def make_group_encryption_sessions(
    device: Device,
    stream_id: bytes | str,
    sessions: Sequence[HybridSession],
    recipients: Iterable[DeviceKeys],
) -> GroupEncryptionSessions | None:
    """The inbox payload carrying ``sessions`` to every recipient device but our own.

    Returns None when no recipient remains (e.g. a user whose only device is this one),
    as the SDK then sends nothing.
    """
    stream = stream_id_bytes(stream_id)
    if not sessions:
        raise ValueError(f"no sessions to share for stream {stream.hex()}")
    for session in sessions:
        if session.stream_id != stream:
            raise ValueError(
                f"session {session.session_id_hex} belongs to stream {session.stream_id_hex}, "
                f"not to the shared stream {stream.hex()}"
            )
    cleartext = session_keys_json(sessions)

    ciphertexts: dict[str, str] = {}
    for recipient in recipients:
        if recipient.device_key == device.device_key or recipient.device_key in ciphertexts:
            continue
        ciphertexts[recipient.device_key] = device.encrypt_to(
            recipient.device_key, recipient.fallback_key, cleartext
        )
    if not ciphertexts:
        return None

    return GroupEncryptionSessions(
        stream_id=stream,
        sender_key=device.device_key,
        session_ids=[session.session_id_hex for session in sessions],
        ciphertexts=ciphertexts,
        algorithm=HYBRID_ALGORITHM,
    )


def import_group_encryption_sessions(
    device: Device, store: SessionStore, payload: GroupEncryptionSessions
) -> list[str]:
    """Import the sessions of an inbox event addressed to ``device``; returns their hex ids.

    Returns [] when the event has no ciphertext for this device, uses another algorithm, or
    brings only sessions the store already has (no Olm decryption then). Raises
    OlmMessageError when this device's ciphertext does not decrypt and SessionMismatchError
    when the keys do not line up with ``session_ids``; a single key whose stream id or hash
    is wrong is skipped (logged), as the SDK does.
    """
    body = payload.ciphertexts.get(device.device_key)
    if not body:
        return []
    algorithm = payload.algorithm or LEGACY_GROUP_ALGORITHM
    if algorithm != HYBRID_ALGORITHM:
        logger.info("skipped %s sessions from %s: not supported", algorithm, payload.sender_key)
        return []
    needed = [i for i, sid in enumerate(payload.session_ids) if sid not in store]
    if not needed:
        return []

    cleartext = device.decrypt_from(payload.sender_key, body)
    keys = parse_session_keys(cleartext)
    if len(keys) != len(payload.session_ids):
        raise SessionMismatchError(
            f"GroupEncryptionSessions from {payload.sender_key} lists "
            f"{len(payload.session_ids)} session ids but carries {len(keys)} keys"
        )

    imported: list[str] = []
    for index in needed:
        session_id = payload.session_ids[index]
        try:
            store.import_key(payload.stream_id, session_id, keys[index])
        except (SessionMismatchError, ValueError) as error:
            logger.warning("rejected shared session %s: %s", session_id, error)
            continue
        imported.append(session_id)
    return imported
