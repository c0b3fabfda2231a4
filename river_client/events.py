"""River events: the framed event hash, building signed envelopes, and verifying them.

Event hash (River's "TownsHash")::

    keccak256("CSBLANCA" ‖ uint64-LE(len(event)) ‖ "ABCDEFG>" ‖ event ‖ "<GFEDCBA")

with header "SNAPSHOT" instead of "CSBLANCA" for snapshot envelopes. The hash covers the exact
serialized `StreamEvent` bytes carried in `Envelope.event`; the event id is its hex.

An inception event (stream creation) carries no previous miniblock; every later event carries
`prev_miniblock_hash` and `prev_miniblock_num` of a recent miniblock of its stream.
`verify_envelope` is a pure function (no I/O, no clock unless `now_ms` is given) that applies
the node's checks: hash, signature, delegate signature, delegate expiry.
"""

from __future__ import annotations

import os
import struct
import time
from dataclasses import dataclass

from google.protobuf.message import DecodeError, Message

from river_client.errors import EnvelopeError, Err
from river_client.proto import protocol_pb2 as pb
from river_client.signing import (
    EventSigner,
    address_of_public_key,
    delegate_message,
    eip191_hash,
    keccak256,
    recover_public_key,
)

_EVENT_HEADER = b"CSBLANCA"
_SNAPSHOT_HEADER = b"SNAPSHOT"
_SEPARATOR = b"ABCDEFG>"
_FOOTER = b"<GFEDCBA"

# StreamEvent's payload oneof: payload message type -> field name.
PAYLOAD_FIELDS: dict[str, str] = {
    field.message_type.full_name: field.name
    for field in pb.StreamEvent.DESCRIPTOR.oneofs_by_name["payload"].fields
    if field.message_type is not None
}


@dataclass(frozen=True, slots=True)
class MiniblockRef:
    """A miniblock an event builds on: its hash and number."""

    hash: bytes
    num: int


def _framed_hash(header: bytes, data: bytes) -> bytes:
    return keccak256(header + struct.pack("<Q", len(data)) + _SEPARATOR + data + _FOOTER)


def river_hash(event_bytes: bytes) -> bytes:
    """The event hash (event id bytes) of serialized StreamEvent bytes."""
    return _framed_hash(_EVENT_HEADER, event_bytes)


def river_snapshot_hash(snapshot_bytes: bytes) -> bytes:
    """The hash of a serialized Snapshot (header "SNAPSHOT")."""
    return _framed_hash(_SNAPSHOT_HEADER, snapshot_bytes)


def make_stream_event(
    signer: EventSigner,
    payload: Message,
    prev_miniblock: MiniblockRef | None = None,
    *,
    tags: pb.Tags | None = None,
    ephemeral: bool = False,
    created_at_epoch_ms: int | None = None,
) -> pb.StreamEvent:
    """The StreamEvent for `payload` (a MemberPayload, ChannelPayload, UserPayload, ...)."""
    field = PAYLOAD_FIELDS.get(payload.DESCRIPTOR.full_name)
    if field is None:
        raise ValueError(
            f"{payload.DESCRIPTOR.full_name} is not a StreamEvent payload; "
            f"expected one of {sorted(PAYLOAD_FIELDS)}"
        )
    event = pb.StreamEvent(
        creator_address=signer.creator_address,
        delegate_sig=signer.delegate_sig,
        salt=os.urandom(16),
        created_at_epoch_ms=(
            int(time.time() * 1000) if created_at_epoch_ms is None else created_at_epoch_ms
        ),
        delegate_expiry_epoch_ms=signer.delegate_expiry_epoch_ms,
        ephemeral=ephemeral,
    )
    getattr(event, field).CopyFrom(payload)
    if tags is not None:
        event.tags.CopyFrom(tags)
    if prev_miniblock is not None:
        event.prev_miniblock_hash = prev_miniblock.hash
        event.prev_miniblock_num = prev_miniblock.num
    return event


def sign_event(signer: EventSigner, event: pb.StreamEvent) -> pb.Envelope:
    """Serialize, hash and sign a StreamEvent into an Envelope."""
    event_bytes = event.SerializeToString()
    digest = river_hash(event_bytes)
    return pb.Envelope(hash=digest, signature=signer.sign_hash(digest), event=event_bytes)


def make_envelope(
    signer: EventSigner,
    payload: Message,
    prev_miniblock: MiniblockRef | None = None,
    *,
    tags: pb.Tags | None = None,
    ephemeral: bool = False,
    created_at_epoch_ms: int | None = None,
) -> pb.Envelope:
    """A signed envelope for `payload`; `prev_miniblock` None = inception (field absent)."""
    event = make_stream_event(
        signer,
        payload,
        prev_miniblock,
        tags=tags,
        ephemeral=ephemeral,
        created_at_epoch_ms=created_at_epoch_ms,
    )
    return sign_event(signer, event)


@dataclass(frozen=True, slots=True)
class ParsedEvent:
    """A verified (or merely decoded) envelope with its StreamEvent."""

    envelope: pb.Envelope
    event: pb.StreamEvent
    hash: bytes
    signer_public_key: bytes | None

    @property
    def event_id(self) -> str:
        """Hex of the event hash, River's event id."""
        return self.hash.hex()

    @property
    def creator_address(self) -> bytes:
        return self.event.creator_address

    @property
    def payload_case(self) -> str | None:
        """Name of the StreamEvent payload field that is set (e.g. "channel_payload")."""
        return self.event.WhichOneof("payload")


def _bad(code: int, text: str, **tags: str) -> EnvelopeError:
    return EnvelopeError(code, Err.Name(code), text, tags=tags)


def parse_envelope(envelope: pb.Envelope) -> ParsedEvent:
    """Decode an envelope's StreamEvent without checking hash or signature."""
    try:
        event = pb.StreamEvent.FromString(envelope.event)
    except DecodeError as exc:
        raise _bad(Err.BAD_EVENT, f"event bytes are not a StreamEvent: {exc}") from exc
    return ParsedEvent(envelope, event, bytes(envelope.hash), None)


def verify_envelope(envelope: pb.Envelope, now_ms: int | None = None) -> ParsedEvent:
    """Check an envelope as a River node does; return it parsed or raise EnvelopeError.

    Checks: hash of `event` equals `hash` (BAD_EVENT_HASH); the signature recovers a key
    (BAD_EVENT_SIGNATURE); without delegate_sig that key's address is the creator; with one,
    the wallet recovered from delegate_sig over RIVERSIG ‖ key ‖ expiry is the creator
    (BAD_EVENT_SIGNATURE, as the node reports it). With `now_ms`, an expired delegate gives
    PERMISSION_DENIED "event delegate has expired".
    """
    digest = river_hash(envelope.event)
    if digest != envelope.hash:
        raise _bad(
            Err.BAD_EVENT_HASH,
            "event hash does not match the hash of the event bytes",
            expected="0x" + digest.hex(),
            actual="0x" + bytes(envelope.hash).hex(),
        )
    parsed = parse_envelope(envelope)
    event = parsed.event
    try:
        public_key = recover_public_key(digest, envelope.signature)
    except ValueError as exc:
        raise _bad(Err.BAD_EVENT_SIGNATURE, f"cannot recover the event signer: {exc}") from exc

    creator = bytes(event.creator_address)
    if not event.delegate_sig:
        signer = address_of_public_key(public_key)
        if signer != creator:
            raise _bad(
                Err.BAD_EVENT_SIGNATURE,
                "event signature does not match creator_address",
                signer="0x" + signer.hex(),
                creator="0x" + creator.hex(),
            )
    else:
        expiry = event.delegate_expiry_epoch_ms
        wallets: list[bytes] = []
        for key in (public_key, public_key[1:]):
            digest191 = eip191_hash(delegate_message(key, expiry))
            try:
                wallets.append(
                    address_of_public_key(recover_public_key(digest191, event.delegate_sig))
                )
            except ValueError:
                continue
        if creator not in wallets:
            raise _bad(
                Err.BAD_EVENT_SIGNATURE,
                "delegate_sig does not match creator_address",
                creator="0x" + creator.hex(),
            )
        if now_ms is not None and expiry > 0 and now_ms > expiry:
            raise _bad(
                Err.PERMISSION_DENIED,
                "event delegate has expired",
                expiry=str(expiry),
                now=str(now_ms),
            )
    return ParsedEvent(envelope, event, digest, public_key)
