"""Hybrid group encryption (``grpaes``): River channel messages under a shared AES-256-GCM key.

This is the Towns SDK's default group algorithm (``HybridGroupEncryption``): a stream's
members share a 32-byte AES key (a *hybrid session*), distributed to each member device with
Olm (see ``sharing``). Its definitions, as the SDK's ``@towns-protocol/encryption`` has them:

- session id = SHA-256( ``"RVR_HSK:"`` ‖ stream id (32 B) ‖ key (32 B) ‖
  uint64-BE(miniblock_num) ‖ miniblock_hash (32 B) ), where (num, hash) name the stream's
  latest miniblock when the session was created; it travels as 32 bytes in
  ``EncryptedData.session_id_bytes`` and as 64 lowercase hex characters everywhere else;
- a session is stored and shared as a serialized ``HybridGroupSessionKey``
  {session_id, stream_id, key, miniblock_num, miniblock_hash}; an importer re-checks the
  stream id and re-computes the session id hash;
- encryption: AES-256-GCM, a random 12-byte IV, the 16-byte tag appended to the ciphertext
  (WebCrypto layout), no associated data; empty plaintexts are refused;
- ``EncryptedData`` = {algorithm ``grpaes``, sender_key (the sender's device key),
  session_id_bytes, ciphertext_bytes, iv_bytes, version 1 (plaintext = a serialized
  ``ChannelMessage``)} plus ``ref_event_id`` for reactions, edits, redactions and thread posts;
- decryption: version 0 gives UTF-8 text, version 1 gives bytes;
- a stream's outbound session is the stored one with the HIGHEST miniblock_num, imported
  sessions included, so the members of a stream converge on one key.

Not supported: the Megolm-style ``r.group-encryption.v1.aes-sha2`` algorithm (older
clients); its messages are reported as undecryptable.
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf import json_format

from river_client.encryption.exceptions import MessageDecryptionError, SessionMismatchError
from river_client.encryption.stream_sessions import StreamSessions
from river_client.proto import payloads_pb2, protocol_pb2

logger = logging.getLogger(__name__)

HYBRID_ALGORITHM = "grpaes"
SESSION_ID_PREFIX = b"RVR_HSK:"
KEY_LENGTH = 32
IV_LENGTH = 12
TAG_LENGTH = 16
STREAM_ID_LENGTH = 32
MINIBLOCK_HASH_LENGTH = 32
VERSION_TEXT = protocol_pb2.ENCRYPTED_DATA_VERSION_0
VERSION_BYTES = protocol_pb2.ENCRYPTED_DATA_VERSION_1


def stream_id_bytes(stream_id: bytes | str) -> bytes:
    """A stream id as its 32 wire bytes, from bytes or 64 hex characters."""
    data = stream_id if isinstance(stream_id, bytes) else _from_hex(stream_id, "stream id")
    if len(data) != STREAM_ID_LENGTH:
        raise ValueError(f"stream id {data.hex()!r} has {len(data)} bytes, expected 32")
    return data


def hybrid_session_id(
    stream_id: bytes, key: bytes, miniblock_num: int, miniblock_hash: bytes
) -> bytes:
    """SHA-256 of ``RVR_HSK:`` ‖ stream id ‖ key ‖ uint64-BE(miniblock_num) ‖ miniblock hash."""
    if not 0 <= miniblock_num < 2**64:
        raise ValueError(f"miniblock_num {miniblock_num} is not a uint64")
    digest = hashlib.sha256(SESSION_ID_PREFIX)
    digest.update(stream_id)
    digest.update(key)
    digest.update(struct.pack(">Q", miniblock_num))
    digest.update(miniblock_hash)
    return digest.digest()


def encrypt_aes_gcm(key: bytes, plaintext: bytes) -> tuple[bytes, bytes]:
    """AES-256-GCM with a random 12-byte IV; returns (ciphertext ‖ tag, iv)."""
    if not plaintext:
        raise ValueError("refusing to encrypt an empty plaintext: its length would reveal it")
    iv = os.urandom(IV_LENGTH)
    return AESGCM(key).encrypt(iv, plaintext, None), iv


def decrypt_aes_gcm(key: bytes, ciphertext: bytes, iv: bytes) -> bytes:
    """Open (ciphertext ‖ tag) with AES-256-GCM; MessageDecryptionError on any failure."""
    if len(iv) != IV_LENGTH:
        raise MessageDecryptionError(f"IV has {len(iv)} bytes, expected {IV_LENGTH}")
    if len(ciphertext) <= TAG_LENGTH:
        raise MessageDecryptionError(
            f"ciphertext of {len(ciphertext)} bytes is too short: at least "
            f"{TAG_LENGTH + 1} (one byte and the 16-byte tag)"
        )
    try:
        return AESGCM(key).decrypt(iv, ciphertext, None)
    except InvalidTag as error:
        raise MessageDecryptionError(
            "AES-GCM tag check failed: wrong key or tampered ciphertext"
        ) from error


@dataclass(frozen=True, slots=True)
class HybridSession:
    """One hybrid group session of a stream; ``session_id`` is derived, never given."""

    stream_id: bytes
    key: bytes = field(repr=False)
    miniblock_num: int
    miniblock_hash: bytes
    session_id: bytes = field(init=False)
    session_id_hex: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.stream_id) != STREAM_ID_LENGTH:
            raise ValueError(f"stream id {self.stream_id.hex()!r} must be 32 bytes")
        if len(self.key) != KEY_LENGTH:
            raise ValueError(f"AES key has {len(self.key)} bytes, expected {KEY_LENGTH}")
        session_id = hybrid_session_id(
            self.stream_id, self.key, self.miniblock_num, self.miniblock_hash
        )
        object.__setattr__(self, "session_id", session_id)
        # Interned: the clients of one process share the text of the ids they all know.
        object.__setattr__(self, "session_id_hex", sys.intern(session_id.hex()))

    @classmethod
    def create(
        cls, stream_id: bytes | str, miniblock_num: int, miniblock_hash: bytes
    ) -> HybridSession:
        """A new session with a random key, anchored at the stream's latest miniblock."""
        return cls(
            stream_id_bytes(stream_id), os.urandom(KEY_LENGTH), miniblock_num, miniblock_hash
        )

    @property
    def stream_id_hex(self) -> str:
        return self.stream_id.hex()

    def to_proto(self) -> payloads_pb2.HybridGroupSessionKey:
        return payloads_pb2.HybridGroupSessionKey(
            session_id=self.session_id,
            stream_id=self.stream_id,
            key=self.key,
            miniblock_num=self.miniblock_num,
            miniblock_hash=self.miniblock_hash,
        )

    def to_bytes(self) -> bytes:
        """The serialized ``HybridGroupSessionKey``, as stored and shared by the SDK."""
        return self.to_proto().SerializeToString(deterministic=True)

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        stream_id: bytes | str | None = None,
        session_id: bytes | str | None = None,
    ) -> HybridSession:
        """Parse and verify a serialized ``HybridGroupSessionKey``.

        The session must belong to ``stream_id`` and carry ``session_id`` when those are
        given, and its session id must equal the RVR_HSK hash of its own fields; otherwise
        SessionMismatchError names the values that disagree.
        """
        try:
            proto = payloads_pb2.HybridGroupSessionKey.FromString(data)
        except Exception as error:
            raise SessionMismatchError(
                f"not a serialized HybridGroupSessionKey ({len(data)} bytes): {error}"
            ) from error
        if stream_id is not None and proto.stream_id != stream_id_bytes(stream_id):
            raise SessionMismatchError(
                f"hybrid session for stream {proto.stream_id.hex()} was shared as a key of "
                f"stream {stream_id_bytes(stream_id).hex()}"
            )
        if session_id is not None:
            claimed = session_id if isinstance(session_id, bytes) else _from_hex(session_id, "id")
            if proto.session_id != claimed:
                raise SessionMismatchError(
                    f"hybrid session {proto.session_id.hex()} was shared under session id "
                    f"{claimed.hex()}"
                )
        try:
            session = cls(proto.stream_id, proto.key, proto.miniblock_num, proto.miniblock_hash)
        except ValueError as error:
            raise SessionMismatchError(f"malformed hybrid session: {error}") from error
        if session.session_id != proto.session_id:
            raise SessionMismatchError(
                f"hybrid session id {proto.session_id.hex()} does not match its key: the "
                f"RVR_HSK hash of its fields is {session.session_id.hex()}"
            )
        return session


class SessionStore:
    """The hybrid sessions a device knows, for every stream, keyed by session id.

    ``outbound(stream)`` is the session a message to that stream is encrypted with: the
    one with the highest miniblock_num, whether created here or imported from a member.
    """

    def __init__(self) -> None:
        self._by_id: dict[bytes, HybridSession] = {}
        self._by_stream: dict[bytes, StreamSessions] = {}
        self._outbound: dict[bytes, HybridSession] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[HybridSession]:
        return iter(list(self._by_id.values()))

    def __contains__(self, session_id: object) -> bool:
        if isinstance(session_id, str):
            return self.get(session_id) is not None
        return session_id in self._by_id

    def add(self, session: HybridSession) -> bool:
        """Store a session; False if it was already known."""
        if session.session_id in self._by_id:
            return False
        self._by_id[session.session_id] = session
        stream = self._by_stream.get(session.stream_id)
        if stream is None:
            stream = self._by_stream[session.stream_id] = StreamSessions()
        stream.add(session)
        current = self._outbound.get(session.stream_id)
        if current is None or session.miniblock_num > current.miniblock_num:
            self._outbound[session.stream_id] = session
        return True

    def import_key(
        self, stream_id: bytes | str, session_id: bytes | str, session_key: bytes | str
    ) -> HybridSession:
        """Verify and store a shared session (``session_key``: serialized bytes or their hex).

        Raises SessionMismatchError when the stream id or the session id hash disagree.
        """
        data = session_key if isinstance(session_key, bytes) else _from_hex(session_key, "key")
        session = HybridSession.from_bytes(data, stream_id=stream_id, session_id=session_id)
        self.add(session)
        return session

    def get(self, session_id: bytes | str) -> HybridSession | None:
        if isinstance(session_id, str):
            try:
                session_id = bytes.fromhex(session_id)
            except ValueError:
                return None
        return self._by_id.get(session_id)

    def outbound(self, stream_id: bytes | str) -> HybridSession | None:
        """The session to encrypt with: the stream's session with the highest miniblock_num."""
        return self._outbound.get(stream_id_bytes(stream_id))

    def stream(self, stream_id: bytes | str) -> StreamSessions:
        """The index of a stream's sessions (empty, and not kept, for an unknown stream)."""
        return self._by_stream.get(stream_id_bytes(stream_id)) or StreamSessions()

    def sessions(self, stream_id: bytes | str) -> list[HybridSession]:
        return self.stream(stream_id).sessions()

    def session_ids(self, stream_id: bytes | str) -> list[str]:
        """Hex session ids known for a stream, sorted (as the SDK lists them)."""
        return self.stream(stream_id).session_ids()

    def export(self) -> list[bytes]:
        """Every session as serialized ``HybridGroupSessionKey`` bytes, for persistence."""
        return [s.to_bytes() for s in self._by_id.values()]

    @classmethod
    def restore(cls, exported: list[bytes]) -> SessionStore:
        """A store holding the sessions of ``export()`` (each one re-verified)."""
        store = cls()
        for data in exported:
            store.add(HybridSession.from_bytes(data))
        return store


def encrypt_message(
    session: HybridSession,
    plaintext: bytes,
    sender_key: str,
    ref_event_id: str | None = None,
) -> protocol_pb2.EncryptedData:
    """``EncryptedData`` version 1 of a serialized ``ChannelMessage`` under a hybrid session."""
    ciphertext, iv = encrypt_aes_gcm(session.key, plaintext)
    data = protocol_pb2.EncryptedData(
        algorithm=HYBRID_ALGORITHM,
        sender_key=sender_key,
        session_id_bytes=session.session_id,
        ciphertext_bytes=ciphertext,
        iv_bytes=iv,
        version=VERSION_BYTES,
    )
    if ref_event_id:
        data.ref_event_id = ref_event_id
    return data


def encrypt_channel_message(
    session: HybridSession, message: payloads_pb2.ChannelMessage, sender_key: str
) -> protocol_pb2.EncryptedData:
    """Encrypt a ``ChannelMessage``, with ``ref_event_id`` set as the SDK sets it."""
    return encrypt_message(
        session, message.SerializeToString(), sender_key, ref_event_id_of(message)
    )


def ref_event_id_of(message: payloads_pb2.ChannelMessage) -> str | None:
    """The cleartext reference the SDK puts in EncryptedData: a thread root or target event."""
    kind = message.WhichOneof("payload")
    if kind == "post":
        return message.post.thread_id if message.post.HasField("thread_id") else None
    if kind == "reaction":
        return message.reaction.ref_event_id or None
    if kind == "edit":
        return message.edit.ref_event_id or None
    if kind == "redaction":
        return message.redaction.ref_event_id or None
    return None


def missing_session_id(store: SessionStore, data: protocol_pb2.EncryptedData) -> str | None:
    """The hex session id ``data`` needs when the store lacks it, else None."""
    if data.algorithm != HYBRID_ALGORITHM or not data.session_id_bytes:
        return None
    return None if data.session_id_bytes in store else data.session_id_bytes.hex()


def decrypt_message(
    store: SessionStore,
    data: protocol_pb2.EncryptedData,
    stream_id: bytes | str | None = None,
) -> bytes | str | None:
    """Decrypt ``grpaes`` EncryptedData: bytes for version 1, text for version 0.

    Returns None when the store has no session with that id (ask for it with a key
    solicitation); raises MessageDecryptionError for other algorithms, missing fields, a
    session of another stream, an unknown version or a failed tag check.
    """
    if data.algorithm != HYBRID_ALGORITHM:
        raise MessageDecryptionError(
            f"EncryptedData algorithm {data.algorithm!r} is not supported: only "
            f"{HYBRID_ALGORITHM!r} (hybrid group encryption)"
        )
    if not (data.sender_key and data.session_id_bytes and data.ciphertext_bytes and data.iv_bytes):
        raise MessageDecryptionError(
            "grpaes EncryptedData needs sender_key, session_id_bytes, ciphertext_bytes and "
            "iv_bytes; some are empty"
        )
    session = store.get(data.session_id_bytes)
    if session is None:
        return None
    if stream_id is not None and session.stream_id != stream_id_bytes(stream_id):
        raise MessageDecryptionError(
            f"session {session.session_id_hex} belongs to stream {session.stream_id_hex}, "
            f"not to {stream_id_bytes(stream_id).hex()}"
        )

    plaintext = decrypt_aes_gcm(session.key, data.ciphertext_bytes, data.iv_bytes)
    if data.version == VERSION_BYTES:
        return plaintext
    if data.version == VERSION_TEXT:
        return plaintext.decode("utf-8")
    raise MessageDecryptionError(
        f"EncryptedData version {data.version} is not supported: 0 (text) or 1 (bytes)"
    )


def decrypt_channel_message(
    store: SessionStore,
    data: protocol_pb2.EncryptedData,
    stream_id: bytes | str | None = None,
) -> payloads_pb2.ChannelMessage | None:
    """Decrypt and parse a ``ChannelMessage`` (version 1 protobuf, or version 0 JSON text)."""
    plaintext = decrypt_message(store, data, stream_id)
    if plaintext is None:
        return None
    message = payloads_pb2.ChannelMessage()
    try:
        if isinstance(plaintext, bytes):
            message.ParseFromString(plaintext)
        else:
            json_format.Parse(plaintext, message, ignore_unknown_fields=True)
    except Exception as error:
        raise MessageDecryptionError(
            f"decrypted plaintext of session {data.session_id_bytes.hex()} is not a "
            f"ChannelMessage: {error}"
        ) from error
    return message


def _from_hex(text: str, what: str) -> bytes:
    try:
        return bytes.fromhex(text.removeprefix("0x"))
    except ValueError as error:
        raise ValueError(f"{what} {text!r} is not hex") from error
