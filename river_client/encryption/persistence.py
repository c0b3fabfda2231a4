"""Saving and restoring a device with its sessions, in the SDK's ``ExportedDevice`` message.

The Towns stress client keeps each user's crypto state between runs as a serialized
``ExportedDevice`` (``payloads.proto``): {pickleKey, pickledAccount, outboundSessions,
inboundSessions, hybridGroupSessions}, where ``pickledAccount`` is a libolm account pickle
encrypted with the string ``pickleKey`` and each hybrid session carries its serialized
``HybridGroupSessionKey`` (``EncryptionDevice.exportDevice``).

``export_device`` writes the same message for our device; its account pickle is vodozemac's
(``pickleKey`` holds the hex of the 32-byte key), which libolm cannot read, so an export of
ours restores here but not in the SDK. ``import_device`` restores either kind: an SDK export
(libolm pickle) or ours. Every hybrid session is re-verified on the way in.

Not supported: the Megolm-style ``outboundSessions`` / ``inboundSessions`` of an SDK export
(the ``r.group-encryption.v1.aes-sha2`` algorithm); they are ignored.
"""

from __future__ import annotations

import logging

from river_client.encryption.device import PICKLE_KEY_LENGTH, Device
from river_client.encryption.exceptions import OlmMessageError
from river_client.encryption.hybrid import SessionStore
from river_client.proto import payloads_pb2

logger = logging.getLogger(__name__)

ExportedDevice = payloads_pb2.ExportedDevice


def export_device(device: Device, store: SessionStore, pickle_key: bytes) -> ExportedDevice:
    """The device and its hybrid sessions as an ``ExportedDevice`` message."""
    exported = ExportedDevice(pickleKey=pickle_key.hex(), pickledAccount=device.pickle(pickle_key))
    for session in store:
        exported.hybridGroupSessions.add(
            session_id=session.session_id_hex,
            stream_id=session.stream_id_hex,
            session_key=session.to_bytes(),
            miniblock_num=session.miniblock_num,
        )
    return exported


def import_device(exported: ExportedDevice | bytes) -> tuple[Device, SessionStore]:
    """Restore a device and its hybrid sessions from an SDK export or one of ours.

    Raises OlmMessageError when the account pickle opens with neither format, and
    SessionMismatchError when a hybrid session does not verify.
    """
    message = ExportedDevice.FromString(exported) if isinstance(exported, bytes) else exported
    device = _load_account(message.pickleKey, message.pickledAccount)

    store = SessionStore()
    for saved in message.hybridGroupSessions:
        store.import_key(saved.stream_id, saved.session_id, bytes(saved.session_key))
    skipped = len(message.inboundSessions) + len(message.outboundSessions)
    if skipped:
        logger.info("ignored %d Megolm sessions of an exported device", skipped)
    return device, store


def _load_account(pickle_key: str, pickled: str) -> Device:
    own_key = _own_pickle_key(pickle_key)
    if own_key is not None:
        try:
            return Device.from_pickle(pickled, own_key)
        except OlmMessageError:
            pass
    try:
        return Device.from_libolm_pickle(pickled, pickle_key)
    except OlmMessageError as error:
        raise OlmMessageError(
            "exported account opens neither as a vodozemac pickle (pickleKey = 64 hex) nor as "
            f"a libolm pickle with pickleKey {pickle_key!r}"
        ) from error


def _own_pickle_key(pickle_key: str) -> bytes | None:
    if len(pickle_key) != 2 * PICKLE_KEY_LENGTH:
        return None
    try:
        return bytes.fromhex(pickle_key)
    except ValueError:
        return None
