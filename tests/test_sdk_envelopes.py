"""Our envelopes against the official SDK: every kind our client produces passes the SDK's
`unpackEnvelope` (hash and signature), tampered ones fail with the SDK's error codes, and the
SDK's own envelopes pass our `verify_envelope` and decode field for field with our schema.

The SDK is the reference: a failure here means our bytes differ from what River accepts.
Facts: research/river-protocol.md §2–§4 and §10.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from sdk_peer import SdkPeer, SdkPeerError, b64, unb64

from river_client import ids
from river_client.encryption.device import Device
from river_client.encryption.hybrid import HybridSession, encrypt_channel_message
from river_client.encryption.sharing import make_group_encryption_sessions
from river_client.encryption.solicitation import make_key_solicitation
from river_client.events import MiniblockRef, make_envelope, river_hash, verify_envelope
from river_client.proto import payloads_pb2 as pl
from river_client.proto import protocol_pb2 as pb
from river_client.signing import DelegateSigner, EventSigner, WalletSigner

pytest_plugins = ("sdk_peer",)

WALLET_KEY = bytes.fromhex("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")
OTHER_KEY = bytes.fromhex("5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a")
SPACE_ADDRESS = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
BAD_EVENT_ID = 21
BAD_EVENT_SIGNATURE = 22
BAD_DELEGATE_SIG = 31
PREV = MiniblockRef(hash=bytes(range(32)), num=7)

# Fields of the current River schema that the published SDK 1.0.3 (proto 0.0.455) predates: the
# SDK keeps them as unknown fields, so they count in the hash but not in its decoded view.
NEWER_THAN_SDK = {
    "channelPayload.inception": "spaceId",
    "userPayload.userMembership": "streamParentId",
    "memberPayload.membership": "streamParentId",
}


@dataclass(frozen=True)
class Kind:
    """One kind of event our client sends: its payload, miniblock reference and tags."""

    payload: Message
    prev: MiniblockRef | None = PREV
    tags: pb.Tags | None = None
    ephemeral: bool = False


def _world() -> dict[str, Kind]:
    """Every event kind a stress client, its bootstrap and the dev stack produce."""
    address = WalletSigner(WALLET_KEY).creator_address
    space_id = ids.space_stream_id(SPACE_ADDRESS)
    channel_id = ids.make_channel_stream_id(space_id)
    device, other = Device(), Device()
    session = HybridSession.create(channel_id, 7, PREV.hash)
    parent_id = os.urandom(32).hex()

    def message(plaintext: pl.ChannelMessage) -> pb.ChannelPayload:
        encrypted = encrypt_channel_message(session, plaintext, sender_key=device.device_key)
        return pb.ChannelPayload(message=encrypted)

    def post(body: str, thread_id: str | None = None) -> pl.ChannelMessage.Post:
        text = pl.ChannelMessage.Post.Content.Text(body=body)
        if thread_id is None:
            return pl.ChannelMessage.Post(text=text)
        return pl.ChannelMessage.Post(text=text, thread_id=thread_id, thread_preview="🙉")

    def tags(kind: int, thread: str | None = None) -> pb.Tags:
        found = pb.Tags(message_interaction_type=kind)  # type: ignore[arg-type]
        if thread is not None:
            found.thread_id = bytes.fromhex(thread)
        return found

    sessions = make_group_encryption_sessions(device, channel_id, [session], [other.user_device])
    assert sessions is not None
    solicitation = make_key_solicitation(other.user_device, [session.session_id_hex], True)
    inbox_ack = pb.UserInboxPayload.Ack(device_key=device.device_key, miniblock_num=3)
    return {
        "user inception": Kind(
            pb.UserPayload(
                inception=pb.UserPayload.Inception(stream_id=ids.user_stream_id(address))
            ),
            prev=None,
        ),
        "settings inception": Kind(
            pb.UserSettingsPayload(
                inception=pb.UserSettingsPayload.Inception(
                    stream_id=ids.user_settings_stream_id(address)
                )
            ),
            prev=None,
        ),
        "metadata inception": Kind(
            pb.UserMetadataPayload(
                inception=pb.UserMetadataPayload.Inception(
                    stream_id=ids.user_metadata_stream_id(address)
                )
            ),
            prev=None,
        ),
        "inbox inception": Kind(
            pb.UserInboxPayload(
                inception=pb.UserInboxPayload.Inception(stream_id=ids.user_inbox_stream_id(address))
            ),
            prev=None,
        ),
        "space inception": Kind(
            pb.SpacePayload(inception=pb.SpacePayload.Inception(stream_id=space_id)), prev=None
        ),
        "channel inception": Kind(
            pb.ChannelPayload(
                inception=pb.ChannelPayload.Inception(stream_id=channel_id, space_id=space_id)
            ),
            prev=None,
        ),
        "creator membership": Kind(
            pb.MemberPayload(
                membership=pb.MemberPayload.Membership(
                    op=pb.SO_JOIN, user_address=address, initiator_address=address
                )
            ),
            prev=None,
        ),
        "join space": Kind(
            pb.UserPayload(
                user_membership=pb.UserPayload.UserMembership(stream_id=space_id, op=pb.SO_JOIN)
            )
        ),
        "join channel": Kind(
            pb.UserPayload(
                user_membership=pb.UserPayload.UserMembership(
                    stream_id=channel_id, op=pb.SO_JOIN, stream_parent_id=space_id
                )
            )
        ),
        "device keys": Kind(
            pb.UserMetadataPayload(
                encryption_device=pb.UserMetadataPayload.EncryptionDevice(
                    device_key=device.device_key, fallback_key=device.fallback_key
                )
            )
        ),
        "post": Kind(
            message(pl.ChannelMessage(post=post("hello 🌊"))),
            tags=tags(pb.MESSAGE_INTERACTION_TYPE_POST),
        ),
        "thread reply": Kind(
            message(pl.ChannelMessage(post=post("reply", thread_id=parent_id))),
            tags=tags(pb.MESSAGE_INTERACTION_TYPE_REPLY, parent_id),
        ),
        "reaction": Kind(
            message(
                pl.ChannelMessage(
                    reaction=pl.ChannelMessage.Reaction(ref_event_id=parent_id, reaction="👍")
                )
            ),
            tags=tags(pb.MESSAGE_INTERACTION_TYPE_REACTION),
        ),
        "edit": Kind(
            message(
                pl.ChannelMessage(
                    edit=pl.ChannelMessage.Edit(ref_event_id=parent_id, post=post("Clients: 2/2"))
                )
            ),
            tags=tags(pb.MESSAGE_INTERACTION_TYPE_EDIT),
        ),
        "group sessions": Kind(pb.UserInboxPayload(group_encryption_sessions=sessions)),
        "inbox ack": Kind(pb.UserInboxPayload(ack=inbox_ack)),
        "key solicitation": Kind(pb.MemberPayload(key_solicitation=solicitation), ephemeral=True),
        "key fulfillment": Kind(
            pb.MemberPayload(
                key_fulfillment=pb.MemberPayload.KeyFulfillment(
                    user_address=address,
                    device_key=other.device_key,
                    session_ids=[session.session_id_hex],
                )
            )
        ),
    }


WORLD = _world()
SIGNERS: dict[str, Callable[[], EventSigner]] = {
    "delegate": lambda: DelegateSigner(WALLET_KEY),
    "wallet": lambda: WalletSigner(WALLET_KEY),
}


def _envelope(kind: Kind, signer: EventSigner) -> pb.Envelope:
    return make_envelope(signer, kind.payload, kind.prev, tags=kind.tags, ephemeral=kind.ephemeral)


def _sdk_code(peer: SdkPeer, envelope: pb.Envelope) -> int | None:
    with pytest.raises(SdkPeerError) as refused:
        peer.verify_envelope(envelope.SerializeToString())
    return refused.value.code


def _event_dict(event: pb.StreamEvent) -> dict[str, object]:
    """Our decoded event as the SDK's protobuf JSON shows it (fields it predates left out)."""
    found = MessageToDict(event)
    for path, name in NEWER_THAN_SDK.items():
        node: object = found
        for step in path.split("."):
            node = node.get(step) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(name, None)
    return found


@pytest.mark.parametrize("signer_kind", sorted(SIGNERS))
@pytest.mark.parametrize("name", sorted(WORLD))
def test_sdk_accepts_our_envelope(sdk_peer: SdkPeer, name: str, signer_kind: str) -> None:
    signer = SIGNERS[signer_kind]()
    envelope = _envelope(WORLD[name], signer)

    parsed = sdk_peer.verify_envelope(envelope.SerializeToString())

    assert parsed["eventId"] == envelope.hash.hex()
    assert parsed["creatorUserId"] == ids.user_id(signer.creator_address)
    event = pb.StreamEvent.FromString(envelope.event)
    assert parsed["event"] == _event_dict(event), "the SDK reads other fields than we wrote"


def test_river_hash_matches_sdk(sdk_peer: SdkPeer) -> None:
    for size in (0, 1, 55, 56, 1000, 70_000):
        data = os.urandom(size)
        assert sdk_peer.request("river-hash", data=b64(data))["hash"] == river_hash(data).hex()


def test_stream_ids_match_sdk(sdk_peer: SdkPeer) -> None:
    address = WalletSigner(WALLET_KEY).creator_address
    sdk_ids = sdk_peer.request(
        "stream-ids", address="0x" + address.hex(), spaceAddress=SPACE_ADDRESS
    )
    space_id = ids.space_stream_id(SPACE_ADDRESS)

    assert sdk_ids["userId"] == ids.user_id(address)
    assert sdk_ids["user"] == ids.user_stream_id(address).hex()
    assert sdk_ids["settings"] == ids.user_settings_stream_id(address).hex()
    assert sdk_ids["metadata"] == ids.user_metadata_stream_id(address).hex()
    assert sdk_ids["inbox"] == ids.user_inbox_stream_id(address).hex()
    assert sdk_ids["space"] == space_id.hex()
    assert sdk_ids["defaultChannel"] == ids.default_channel_stream_id(space_id).hex()


def test_sdk_rejects_changed_event_bytes(sdk_peer: SdkPeer) -> None:
    envelope = _envelope(WORLD["post"], DelegateSigner(WALLET_KEY))
    changed = bytearray(envelope.event)
    changed[-1] ^= 0x01
    envelope.event = bytes(changed)

    assert _sdk_code(sdk_peer, envelope) == BAD_EVENT_ID


def test_sdk_rejects_changed_hash(sdk_peer: SdkPeer) -> None:
    envelope = _envelope(WORLD["join space"], WalletSigner(WALLET_KEY))
    envelope.hash = river_hash(envelope.event + b"\x00")

    assert _sdk_code(sdk_peer, envelope) == BAD_EVENT_ID


def test_sdk_rejects_flipped_recovery_bit(sdk_peer: SdkPeer) -> None:
    wallet_signed = _envelope(WORLD["join space"], WalletSigner(WALLET_KEY))
    delegated = _envelope(WORLD["join space"], DelegateSigner(WALLET_KEY))
    for envelope in (wallet_signed, delegated):
        envelope.signature = envelope.signature[:64] + bytes([envelope.signature[64] ^ 1])

    assert _sdk_code(sdk_peer, wallet_signed) == BAD_EVENT_SIGNATURE
    assert _sdk_code(sdk_peer, delegated) == BAD_DELEGATE_SIG


def test_sdk_rejects_signature_of_another_key(sdk_peer: SdkPeer) -> None:
    envelope = _envelope(WORLD["device keys"], WalletSigner(WALLET_KEY))
    envelope.signature = WalletSigner(OTHER_KEY).sign_hash(envelope.hash)

    assert _sdk_code(sdk_peer, envelope) == BAD_EVENT_SIGNATURE


def test_sdk_rejects_delegate_of_another_wallet(sdk_peer: SdkPeer) -> None:
    impostor = DelegateSigner(OTHER_KEY)
    event = pb.StreamEvent.FromString(_envelope(WORLD["post"], impostor).event)
    event.creator_address = WalletSigner(WALLET_KEY).creator_address
    event_bytes = event.SerializeToString()
    digest = river_hash(event_bytes)
    envelope = pb.Envelope(hash=digest, signature=impostor.sign_hash(digest), event=event_bytes)

    assert _sdk_code(sdk_peer, envelope) == BAD_DELEGATE_SIG


def test_sdk_rejects_changed_delegate_expiry(sdk_peer: SdkPeer) -> None:
    signer = DelegateSigner(WALLET_KEY)
    event = pb.StreamEvent.FromString(_envelope(WORLD["join channel"], signer).event)
    event.delegate_expiry_epoch_ms += 1
    event_bytes = event.SerializeToString()
    digest = river_hash(event_bytes)
    envelope = pb.Envelope(hash=digest, signature=signer.sign_hash(digest), event=event_bytes)

    assert _sdk_code(sdk_peer, envelope) == BAD_DELEGATE_SIG


@pytest.mark.parametrize("with_delegate", [True, False], ids=["delegate", "wallet"])
@pytest.mark.parametrize("name", ["user inception", "join space", "post", "group sessions"])
def test_sdk_envelope_passes_our_checks(sdk_peer: SdkPeer, name: str, with_delegate: bool) -> None:
    kind = WORLD[name]
    payload_field = kind.payload.DESCRIPTOR.name[0].lower() + kind.payload.DESCRIPTOR.name[1:]
    expiry = int(time.time() * 1000) + 3_600_000
    made = sdk_peer.make_envelope(
        WALLET_KEY,
        {payload_field: MessageToDict(kind.payload)},
        delegate_private_key=OTHER_KEY if with_delegate else None,
        expiry_epoch_ms=expiry if with_delegate else None,
        prev_miniblock_hash=kind.prev.hash if kind.prev else None,
        prev_miniblock_num=kind.prev.num if kind.prev else None,
    )
    envelope = pb.Envelope.FromString(unb64(made["envelope"]))

    parsed = verify_envelope(envelope, now_ms=int(time.time() * 1000))

    assert parsed.event_id == made["eventId"]
    assert parsed.creator_address == WalletSigner(WALLET_KEY).creator_address
    assert getattr(parsed.event, parsed.payload_case or "") == kind.payload
    assert parsed.event.HasField("prev_miniblock_hash") == (kind.prev is not None)
    assert _event_dict(parsed.event) == made["eventJson"], "our schema reads SDK fields otherwise"
