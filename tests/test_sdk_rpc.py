"""The SDK's own RPC client (`makeStreamRpcClient`: Connect, binary, HTTP/2) against our dev node:
Info, CreateStream, GetStream, GetLastMiniblockHash, AddEvent and SyncStreams, with every stream
the node returns unpacked by the SDK (miniblock headers, snapshots and events: hashes and the
node's signatures), and errors read the way the SDK reads them (`errorContains`,
`getRpcErrorProperty`).

The node runs without a chain (every membership check passes); the membership rules are the
dev node's own tests. Facts: research/river-protocol.md §1, §3.5, §4.1, §5, §6 and §11.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from google.protobuf.json_format import MessageToDict
from sdk_peer import JsonObject, SdkPeer, SdkPeerError, b64, unb64

from devnet.stack import NodeProcess
from river_client import ids
from river_client.events import MiniblockRef, make_envelope
from river_client.proto import protocol_pb2 as pb
from river_client.signing import DelegateSigner

pytest_plugins = ("sdk_peer",)

SPACE_ID = ids.space_stream_id("0x5FbDB2315678afecb367f032d93F642f64180aa3")


@pytest.fixture(scope="module")
def node_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db_path = tmp_path_factory.mktemp("sdk-rpc") / "node.sqlite"
    with NodeProcess(db_path) as node:
        yield node.url


def _envelope_json(envelope_b64: str) -> JsonObject:
    return MessageToDict(pb.Envelope.FromString(unb64(envelope_b64)))


def _metadata_inception(peer: SdkPeer, wallet_key: bytes, stream_id: bytes) -> JsonObject:
    """The SDK's inception of a user's metadata stream, signed through a delegate device key."""
    return peer.make_envelope(
        wallet_key,
        {"userMetadataPayload": {"inception": {"streamId": b64(stream_id)}}},
        delegate_private_key=os.urandom(32),
        expiry_epoch_ms=int(time.time() * 1000) + 3_600_000,
    )


def _create_metadata_stream(peer: SdkPeer, url: str) -> tuple[bytes, bytes, JsonObject]:
    """A new wallet's metadata stream created by the SDK: (wallet key, stream id, reply)."""
    wallet_key = os.urandom(32)
    address = DelegateSigner(wallet_key).creator_address
    stream_id = ids.user_metadata_stream_id(address)
    made = _metadata_inception(peer, wallet_key, stream_id)
    reply = peer.rpc(
        url,
        "createStream",
        {
            "events": [_envelope_json(str(made["envelope"]))],
            "streamId": b64(stream_id),
            "metadata": {"spaceId": b64(SPACE_ID)},
        },
        unpack=True,
    )
    assert made["eventId"] in reply["stream"]["eventIds"]
    return wallet_key, stream_id, reply


def _last_miniblock(peer: SdkPeer, url: str, stream_id: bytes) -> MiniblockRef:
    response = peer.rpc(url, "getLastMiniblockHash", {"streamId": b64(stream_id)})["response"]
    return MiniblockRef(hash=unb64(response["hash"]), num=int(response.get("miniblockNum", "0")))


def _device_event(peer: SdkPeer, wallet_key: bytes, prev: MiniblockRef) -> JsonObject:
    return peer.make_envelope(
        wallet_key,
        {"userMetadataPayload": {"encryptionDevice": {"deviceKey": "dk", "fallbackKey": "fk"}}},
        delegate_private_key=os.urandom(32),
        prev_miniblock_hash=prev.hash,
        prev_miniblock_num=prev.num,
    )


def _add(peer: SdkPeer, url: str, stream_id: bytes, envelope_b64: str) -> JsonObject:
    request = {"streamId": b64(stream_id), "event": _envelope_json(envelope_b64)}
    return peer.rpc(url, "addEvent", request)


def test_info(sdk_peer: SdkPeer, node_url: str) -> None:
    reply = sdk_peer.rpc(node_url, "info")

    assert isinstance(reply["response"], dict)


def test_create_stream_then_get_stream(sdk_peer: SdkPeer, node_url: str) -> None:
    _wallet_key, stream_id, created = _create_metadata_stream(sdk_peer, node_url)

    got = sdk_peer.rpc(node_url, "getStream", {"streamId": b64(stream_id)}, unpack=True)

    assert created["stream"]["miniblockNums"] == ["0"]
    assert got["stream"]["miniblockNums"][0] == "0"
    assert set(created["stream"]["eventIds"]) <= set(got["stream"]["eventIds"])
    last = _last_miniblock(sdk_peer, node_url, stream_id)
    assert last.hash.hex() == got["stream"]["prevMiniblockHash"]
    assert last.num == int(got["stream"]["minipoolGen"]) - 1


def test_get_stream_of_a_missing_stream(sdk_peer: SdkPeer, node_url: str) -> None:
    missing = ids.user_metadata_stream_id(os.urandom(20))

    optional = sdk_peer.rpc(node_url, "getStream", {"streamId": b64(missing), "optional": True})
    with pytest.raises(SdkPeerError) as refused:
        sdk_peer.rpc(node_url, "getStream", {"streamId": b64(missing)})

    assert "stream" not in optional["response"]
    assert refused.value.error["connectCode"] == "not_found"


def test_add_event_from_the_sdk_and_from_our_client(sdk_peer: SdkPeer, node_url: str) -> None:
    wallet_key, stream_id, _created = _create_metadata_stream(sdk_peer, node_url)
    prev = _last_miniblock(sdk_peer, node_url, stream_id)
    sdk_made = _device_event(sdk_peer, wallet_key, prev)
    ours = make_envelope(
        DelegateSigner(wallet_key),
        pb.UserMetadataPayload(
            encryption_device=pb.UserMetadataPayload.EncryptionDevice(
                device_key="ours", fallback_key="ours-fallback"
            )
        ),
        prev,
    )

    _add(sdk_peer, node_url, stream_id, str(sdk_made["envelope"]))
    _add(sdk_peer, node_url, stream_id, b64(ours.SerializeToString()))

    deadline = time.monotonic() + 10
    while True:
        stream = sdk_peer.rpc(node_url, "getStream", {"streamId": b64(stream_id)}, unpack=True)
        sealed = set(stream["stream"]["eventIds"]) - set(stream["stream"]["minipoolEventIds"])
        if {sdk_made["eventId"], ours.hash.hex()} <= sealed or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    assert {sdk_made["eventId"], ours.hash.hex()} <= sealed, "events not sealed in a miniblock"
    assert int(stream["stream"]["minipoolGen"]) >= 2


def test_add_event_with_an_unknown_prev_miniblock_hash(sdk_peer: SdkPeer, node_url: str) -> None:
    wallet_key, stream_id, _created = _create_metadata_stream(sdk_peer, node_url)
    last = _last_miniblock(sdk_peer, node_url, stream_id)
    made = sdk_peer.make_envelope(
        wallet_key,
        {"userMetadataPayload": {"encryptionDevice": {"deviceKey": "dk", "fallbackKey": "fk"}}},
        prev_miniblock_hash=os.urandom(32),
    )

    with pytest.raises(SdkPeerError) as refused:
        _add(sdk_peer, node_url, stream_id, str(made["envelope"]))

    error = refused.value.error
    assert error["riverError"] == "BAD_PREV_MINIBLOCK_HASH"
    assert error["sdkErrCodes"] == [pb.BAD_PREV_MINIBLOCK_HASH]
    assert error["sdkProperties"]["expected"] == "0x" + last.hash.hex()
    assert error["sdkProperties"]["expNum"] == str(last.num)


def test_add_event_with_a_wrong_hash_for_its_miniblock_number(
    sdk_peer: SdkPeer, node_url: str
) -> None:
    # River (events/stream_view.go ValidateNextEvent): a known number with another hash is
    # DATA_LOSS, not a retryable BAD_PREV_MINIBLOCK_HASH.
    wallet_key, stream_id, _created = _create_metadata_stream(sdk_peer, node_url)
    last = _last_miniblock(sdk_peer, node_url, stream_id)
    wrong = _device_event(sdk_peer, wallet_key, MiniblockRef(hash=os.urandom(32), num=last.num))

    with pytest.raises(SdkPeerError) as refused:
        _add(sdk_peer, node_url, stream_id, str(wrong["envelope"]))

    assert refused.value.error["riverError"] == "DATA_LOSS"
    assert refused.value.error["connectCode"] == "data_loss"
    assert refused.value.error["sdkErrCodes"] == [pb.DATA_LOSS]


def test_add_event_with_a_future_miniblock_without_hash_history(
    sdk_peer: SdkPeer, node_url: str
) -> None:
    wallet_key, stream_id, _created = _create_metadata_stream(sdk_peer, node_url)
    last = _last_miniblock(sdk_peer, node_url, stream_id)
    stale = _device_event(
        sdk_peer, wallet_key, MiniblockRef(hash=os.urandom(32), num=last.num + 50)
    )

    with pytest.raises(SdkPeerError) as refused:
        _add(sdk_peer, node_url, stream_id, str(stale["envelope"]))

    assert refused.value.error["riverError"] == "MINIBLOCK_TOO_NEW"
    assert refused.value.error["sdkErrCodes"] == [pb.MINIBLOCK_TOO_NEW]


def test_add_event_with_a_changed_hash(sdk_peer: SdkPeer, node_url: str) -> None:
    wallet_key, stream_id, _created = _create_metadata_stream(sdk_peer, node_url)
    made = _device_event(sdk_peer, wallet_key, _last_miniblock(sdk_peer, node_url, stream_id))
    envelope = pb.Envelope.FromString(unb64(str(made["envelope"])))
    envelope.hash = bytes(32)

    with pytest.raises(SdkPeerError) as refused:
        _add(sdk_peer, node_url, stream_id, b64(envelope.SerializeToString()))

    assert refused.value.error["riverError"] == "BAD_EVENT_HASH"
    assert refused.value.error["connectCode"] == "failed_precondition"
    assert refused.value.error["sdkErrCodes"] == [pb.BAD_EVENT_HASH]


def test_sync_streams_delivers_a_new_event(sdk_peer: SdkPeer, node_url: str) -> None:
    wallet_key, stream_id, created = _create_metadata_stream(sdk_peer, node_url)
    cookie = created["response"]["stream"]["nextSyncCookie"]
    made = _device_event(sdk_peer, wallet_key, _last_miniblock(sdk_peer, node_url, stream_id))
    sync = sdk_peer.submit(
        "sync", url=node_url, syncPos=[cookie], untilEventId=made["eventId"], timeoutMs=8000
    )
    time.sleep(0.5)

    _add(sdk_peer, node_url, stream_id, str(made["envelope"]))

    result = sync.result(timeout=15)
    messages = result["messages"]
    assert messages[0]["syncOp"] == "SYNC_NEW" and messages[0]["syncId"]
    assert result["ended"] == "complete", f"event not delivered; got {messages}"
    assert messages[-1]["syncOp"] == "SYNC_UPDATE"


def test_miniblocks_and_a_new_snapshot_pass_the_sdk(sdk_peer: SdkPeer, node_url: str) -> None:
    wallet_key, stream_id, _created = _create_metadata_stream(sdk_peer, node_url)
    prev = _last_miniblock(sdk_peer, node_url, stream_id)
    added = set()
    for _ in range(12):
        made = _device_event(sdk_peer, wallet_key, prev)
        _add(sdk_peer, node_url, stream_id, str(made["envelope"]))
        added.add(made["eventId"])

    deadline = time.monotonic() + 10
    while True:
        stream = sdk_peer.rpc(node_url, "getStream", {"streamId": b64(stream_id)}, unpack=True)
        sealed = set(stream["stream"]["eventIds"]) - set(stream["stream"]["minipoolEventIds"])
        if added <= sealed or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    summary = {k: stream["stream"][k] for k in ("miniblockNums", "minipoolGen", "minipoolEventIds")}
    assert added <= sealed, f"events not sealed in a miniblock within 10 s: {summary}"
    assert stream["stream"]["miniblockNums"][0] != "0", f"no snapshot after 12 events: {summary}"

    generation = int(stream["stream"]["minipoolGen"])
    request = {"streamId": b64(stream_id), "fromInclusive": "0", "toExclusive": str(generation)}
    reply = sdk_peer.rpc(node_url, "getMiniblocks", request)
    miniblocks = pb.GetMiniblocksResponse.FromString(unb64(reply["responseBytes"])).miniblocks
    verified = [sdk_peer.verify_miniblock(mb.SerializeToString()) for mb in miniblocks]
    assert [int(mb["miniblockNum"]) for mb in verified] == list(range(len(verified)))
    assert {event for mb in verified for event in mb["eventIds"]} >= added


def test_the_sdk_json_transport(sdk_peer: SdkPeer, node_url: str) -> None:
    # The SDK's debug transport (RIVER_DEBUG_TRANSPORT=true): Connect JSON with proto field
    # names and every implicit field emitted.
    wallet_key, stream_id, _created = _create_metadata_stream(sdk_peer, node_url)
    response = sdk_peer.rpc(
        node_url, "getLastMiniblockHash", {"streamId": b64(stream_id)}, codec="json"
    )["response"]
    prev = MiniblockRef(hash=unb64(response["hash"]), num=int(response.get("miniblockNum", "0")))
    assert prev == _last_miniblock(sdk_peer, node_url, stream_id)
    made = _device_event(sdk_peer, wallet_key, prev)
    request = {"streamId": b64(stream_id), "event": _envelope_json(str(made["envelope"]))}

    sdk_peer.rpc(node_url, "addEvent", request, codec="json")
    got = sdk_peer.rpc(
        node_url, "getStream", {"streamId": b64(stream_id)}, unpack=True, codec="json"
    )
    with pytest.raises(SdkPeerError) as refused:
        sdk_peer.rpc(node_url, "addEvent", {"streamId": b64(stream_id)}, codec="json")

    assert made["eventId"] in got["stream"]["eventIds"] + got["stream"]["minipoolEventIds"]
    assert refused.value.error["connectCode"] in ("invalid_argument", "failed_precondition")
    assert refused.value.error["riverError"]


def test_an_expired_delegate_trips_the_sdk_expiry_check(sdk_peer: SdkPeer, node_url: str) -> None:
    wallet_key, stream_id, _created = _create_metadata_stream(sdk_peer, node_url)
    prev = _last_miniblock(sdk_peer, node_url, stream_id)
    expired = sdk_peer.make_envelope(
        wallet_key,
        {"userMetadataPayload": {"encryptionDevice": {"deviceKey": "dk", "fallbackKey": "fk"}}},
        delegate_private_key=os.urandom(32),
        expiry_epoch_ms=int(time.time() * 1000) - 60_000,
        prev_miniblock_hash=prev.hash,
        prev_miniblock_num=prev.num,
    )

    with pytest.raises(SdkPeerError) as refused:
        _add(sdk_peer, node_url, stream_id, str(expired["envelope"]))

    # The SDK's expiryInterceptor recognises an expired delegate by this text alone.
    assert "event delegate has expired" in refused.value.error["message"]
    assert refused.value.error["riverError"] == "PERMISSION_DENIED"


def test_the_same_event_twice_is_a_silent_success(sdk_peer: SdkPeer, node_url: str) -> None:
    wallet_key, stream_id, _created = _create_metadata_stream(sdk_peer, node_url)
    made = _device_event(sdk_peer, wallet_key, _last_miniblock(sdk_peer, node_url, stream_id))

    _add(sdk_peer, node_url, stream_id, str(made["envelope"]))
    again = _add(sdk_peer, node_url, stream_id, str(made["envelope"]))

    assert again["response"].get("newEvents", []) == []
    stream = sdk_peer.rpc(node_url, "getStream", {"streamId": b64(stream_id)}, unpack=True)
    found = stream["stream"]["eventIds"] + stream["stream"]["minipoolEventIds"]
    assert found.count(made["eventId"]) == 1
