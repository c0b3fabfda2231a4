"""Stream ids, the event hash, event and delegate signatures, and envelope verification.

Vectors: stream-id layouts from River's id rules, the hash framing recomputed independently,
delegate signatures checked against eth-account's EIP-191 signing.
"""

from __future__ import annotations

import struct

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import keccak

from river_client import ids
from river_client.chain import spaces
from river_client.errors import EnvelopeError, Err
from river_client.events import (
    MiniblockRef,
    make_envelope,
    parse_envelope,
    river_hash,
    river_snapshot_hash,
    verify_envelope,
)
from river_client.proto import protocol_pb2 as pb
from river_client.signing import (
    DelegateSigner,
    WalletSigner,
    delegate_message,
    recover_address,
)

# anvil's first default account
WALLET_KEY = bytes.fromhex("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
WALLET = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


def test_user_stream_ids_follow_the_prefix_address_zero_layout() -> None:
    tail = WALLET[2:].lower() + "00" * 11
    assert ids.user_stream_id(WALLET).hex() == "a8" + tail
    assert ids.user_settings_stream_id(WALLET).hex() == "a5" + tail
    assert ids.user_metadata_stream_id(WALLET).hex() == "ad" + tail
    assert ids.user_inbox_stream_id(WALLET).hex() == "a1" + tail
    assert ids.user_id(WALLET.lower()) == WALLET
    assert (
        ids.user_address_from_stream_id(ids.user_inbox_stream_id(WALLET)).hex()
        == WALLET[2:].lower()
    )


def test_space_and_channel_ids() -> None:
    space_address = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    space = ids.space_stream_id(space_address)
    assert space.hex() == "10" + space_address[2:].lower() + "00" * 11
    default = ids.default_channel_stream_id(space.hex())
    assert default.hex() == "20" + space_address[2:].lower() + "00" * 11
    assert ids.is_default_channel(default)
    channel = ids.make_channel_stream_id(space)
    assert channel[:21] == default[:21] and len(channel) == 32
    assert ids.space_id_from_channel_id(channel) == space
    assert ids.space_address(channel) == space_address
    # the same layout as the chain package's hex helpers
    assert space.hex() == spaces.space_id_from_address(space_address)
    assert default.hex() == spaces.default_channel_id(space.hex())


def test_bad_ids_name_the_value() -> None:
    with pytest.raises(ValueError, match="not a stream id: 'abcd'"):
        ids.stream_id_bytes("abcd")
    with pytest.raises(ValueError, match="0x12"):
        ids.user_stream_id("0x12")
    with pytest.raises(ValueError, match="expected prefix 10"):
        ids.default_channel_stream_id(ids.user_stream_id(WALLET))


def test_river_hash_is_the_framed_keccak() -> None:
    event = b"\x0a\x14" + bytes(20) + b"payload"
    framed = b"CSBLANCA" + struct.pack("<Q", len(event)) + b"ABCDEFG>" + event + b"<GFEDCBA"
    assert river_hash(event) == keccak(framed)
    snapshot = b"SNAPSHOT" + struct.pack("<Q", len(event)) + b"ABCDEFG>" + event + b"<GFEDCBA"
    assert river_snapshot_hash(event) == keccak(snapshot)
    assert river_hash(b"") == keccak(b"CSBLANCA" + bytes(8) + b"ABCDEFG><GFEDCBA")


def test_delegate_signature_is_eip191_by_the_wallet() -> None:
    signer = DelegateSigner(WALLET_KEY, expiry_epoch_ms=1_700_000_000_000)
    message = delegate_message(signer.device_public_key, 1_700_000_000_000)
    assert message[:8] == b"RIVERSIG" and len(message) == 8 + 65 + 8
    assert message[8] == 4 and message[-8:] == struct.pack("<q", 1_700_000_000_000)
    expected = Account.sign_message(encode_defunct(primitive=message), WALLET_KEY).signature
    assert signer.delegate_sig == bytes(expected)
    assert signer.delegate_sig[64] in (27, 28)
    assert signer.user_id == WALLET


def test_event_signature_is_raw_recoverable_by_the_device_key() -> None:
    signer = DelegateSigner(WALLET_KEY)
    payload = pb.UserPayload(
        inception=pb.UserPayload.Inception(stream_id=ids.user_stream_id(WALLET))
    )
    envelope = make_envelope(signer, payload)
    assert envelope.signature[64] in (0, 1)
    assert recover_address(envelope.hash, envelope.signature) == signer.device_address
    parsed = verify_envelope(envelope, now_ms=0)
    assert parsed.event.creator_address.hex() == WALLET[2:].lower()
    assert parsed.event_id == envelope.hash.hex()
    assert not parsed.event.HasField("prev_miniblock_hash")
    assert not parsed.event.HasField("prev_miniblock_num")
    assert len(parsed.event.salt) == 16


def test_events_after_inception_carry_the_miniblock_reference() -> None:
    signer = WalletSigner(WALLET_KEY)
    ref = MiniblockRef(bytes(range(32)), 7)
    envelope = make_envelope(signer, pb.ChannelPayload(message=pb.EncryptedData()), ref)
    event = verify_envelope(envelope).event
    assert event.prev_miniblock_hash == ref.hash and event.prev_miniblock_num == 7
    assert event.delegate_sig == b"" and event.delegate_expiry_epoch_ms == 0
    # a reference at block 0 is still present on the wire
    zero = parse_envelope(make_envelope(signer, pb.ChannelPayload(), MiniblockRef(bytes(32), 0)))
    assert zero.event.HasField("prev_miniblock_num") and zero.event.prev_miniblock_num == 0


def test_tampered_envelopes_are_rejected_with_the_node_codes() -> None:
    signer = DelegateSigner(WALLET_KEY, expiry_epoch_ms=1000)
    envelope = make_envelope(signer, pb.UserPayload(), MiniblockRef(bytes(32), 1))

    tampered = pb.Envelope(
        hash=envelope.hash, signature=envelope.signature, event=envelope.event + b"\x00"
    )
    with pytest.raises(EnvelopeError) as bad_hash:
        verify_envelope(tampered)
    assert bad_hash.value.code == Err.BAD_EVENT_HASH

    flipped = bytearray(envelope.signature)
    flipped[64] ^= 1
    with pytest.raises(EnvelopeError) as bad_sig:
        verify_envelope(
            pb.Envelope(hash=envelope.hash, signature=bytes(flipped), event=envelope.event)
        )
    assert bad_sig.value.code == Err.BAD_EVENT_SIGNATURE

    other = DelegateSigner(bytes(31) + b"\x07")
    forged = make_envelope(signer, pb.UserPayload(), MiniblockRef(bytes(32), 1))
    forged_event = pb.StreamEvent.FromString(forged.event)
    forged_event.delegate_sig = other.delegate_sig
    data = forged_event.SerializeToString()
    digest = river_hash(data)
    with pytest.raises(EnvelopeError, match="delegate_sig does not match"):
        verify_envelope(pb.Envelope(hash=digest, signature=signer.sign_hash(digest), event=data))

    with pytest.raises(EnvelopeError, match="event delegate has expired") as expired:
        verify_envelope(envelope, now_ms=2000)
    assert expired.value.code == Err.PERMISSION_DENIED
    verify_envelope(envelope, now_ms=999)


def test_wallet_signed_event_must_match_the_creator() -> None:
    signer = WalletSigner(WALLET_KEY)
    event = pb.StreamEvent(creator_address=bytes(20), user_payload=pb.UserPayload())
    data = event.SerializeToString()
    digest = river_hash(data)
    with pytest.raises(EnvelopeError, match="does not match creator_address"):
        verify_envelope(pb.Envelope(hash=digest, signature=signer.sign_hash(digest), event=data))
