"""A full SDK `Client` (no chain config, an entitlement stub) on our dev node, next to our client.

The SDK initializes a user (GetStream, CreateStream of the four user streams with the spaceId
metadata, its device key in the metadata stream), creates a space and a channel, and then the
SDK and our `RiverClient` read each other's encrypted channel messages: each side shares its
hybrid group session with the other's device through the inbox stream, as Towns clients do.

The node runs without a chain (every membership check passes). Facts:
research/river-protocol.md §4.1, §4.5, §7 and §10.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import gevent
import pytest
from sdk_peer import SdkPeer, b64, unb64

from devnet.stack import NodeProcess
from river_client import ids
from river_client.client import RiverClient
from river_client.messages import ReceivedMessage
from river_client.proto import protocol_pb2 as pb
from river_client.signing import WalletSigner

pytest_plugins = ("sdk_peer",)

SPACE_ADDRESS = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
SPACE_ID = ids.space_stream_id(SPACE_ADDRESS)


@pytest.fixture(scope="module")
def node_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db_path = tmp_path_factory.mktemp("sdk-client") / "node.sqlite"
    with NodeProcess(db_path) as node:
        yield node.url


def _stream(peer: SdkPeer, url: str, stream_id: str) -> pb.StreamAndCookie:
    """A stream as the node returns it, after the SDK's `unpackStream` accepted it."""
    reply = peer.rpc(url, "getStream", {"streamId": b64(bytes.fromhex(stream_id))}, unpack=True)
    return pb.GetStreamResponse.FromString(unb64(reply["responseBytes"])).stream


def _device_keys(stream: pb.StreamAndCookie) -> set[str]:
    """Device keys published in a metadata stream's miniblocks and minipool."""
    envelopes = [*stream.events]
    for miniblock in stream.miniblocks:
        envelopes.extend(miniblock.events)
    found = set()
    for envelope in envelopes:
        event = pb.StreamEvent.FromString(envelope.event)
        if event.user_metadata_payload.HasField("encryption_device"):
            found.add(event.user_metadata_payload.encryption_device.device_key)
    if stream.HasField("snapshot"):
        snapshot = pb.Snapshot.FromString(stream.snapshot.event)
        found.update(d.device_key for d in snapshot.user_metadata_content.encryption_devices)
    return found


def _wait_for_device(peer: SdkPeer, url: str, metadata_id: str, device_key: str) -> set[str]:
    deadline = time.monotonic() + 10
    while True:
        keys = _device_keys(_stream(peer, url, metadata_id))
        if device_key in keys or time.monotonic() > deadline:
            return keys
        time.sleep(0.2)


def test_sdk_client_initializes_a_user(sdk_peer: SdkPeer, node_url: str) -> None:
    wallet_key = os.urandom(32)
    address = WalletSigner(wallet_key).creator_address

    user = sdk_peer.init_user(node_url, wallet_key, SPACE_ID.hex())

    try:
        assert user["userId"] == ids.user_id(address)
        assert user["streams"] == {
            "user": ids.user_stream_id(address).hex(),
            "settings": ids.user_settings_stream_id(address).hex(),
            "metadata": ids.user_metadata_stream_id(address).hex(),
            "inbox": ids.user_inbox_stream_id(address).hex(),
        }
        for stream_id in user["streams"].values():
            assert _stream(sdk_peer, node_url, stream_id).miniblocks
        keys = _wait_for_device(sdk_peer, node_url, user["streams"]["metadata"], user["deviceKey"])
        assert user["deviceKey"] in keys
    finally:
        sdk_peer.request("client-stop", handle=user["handle"])


def test_sdk_client_signs_in_again_on_a_second_device(sdk_peer: SdkPeer, node_url: str) -> None:
    wallet_key = os.urandom(32)
    first = sdk_peer.init_user(node_url, wallet_key, SPACE_ID.hex())
    # The SDK publishes its device key in the background after initializeUser returns.
    _wait_for_device(sdk_peer, node_url, first["streams"]["metadata"], first["deviceKey"])
    sdk_peer.request("client-stop", handle=first["handle"])

    second = sdk_peer.init_user(node_url, wallet_key, SPACE_ID.hex())

    try:
        assert second["streams"] == first["streams"]
        assert second["deviceKey"] != first["deviceKey"]
        metadata = second["streams"]["metadata"]
        keys = _wait_for_device(sdk_peer, node_url, metadata, second["deviceKey"])
        assert {first["deviceKey"], second["deviceKey"]} <= keys
    finally:
        sdk_peer.request("client-stop", handle=second["handle"])


def test_sdk_and_our_client_read_each_other(sdk_peer: SdkPeer, node_url: str) -> None:
    space_id = ids.space_stream_id(os.urandom(20))
    channel_id = ids.make_channel_stream_id(space_id)
    sdk_user = sdk_peer.init_user(node_url, os.urandom(32), space_id.hex())
    ours = RiverClient(os.urandom(32), node_url)
    try:
        handle = sdk_user["handle"]
        sdk_peer.create_space_and_channel(handle, space_id.hex(), channel_id.hex())
        ours.start(space_id)
        ours.join_space(space_id)
        ours.join_channel(channel_id)

        sent = sdk_peer.request(
            "client-send", handle=handle, streamId=channel_id.hex(), text="from the SDK"
        )
        received = ours.wait_for_message(lambda m: m.text == "from the SDK", timeout=15)
        assert received is not None, "our client did not decrypt the SDK's message"
        assert received.event_id == sent["eventId"]
        assert received.sender == sdk_user["userId"]

        root = sent["eventId"]
        reply = sdk_peer.request(
            "client-send", handle=handle, streamId=channel_id.hex(), text="a reply", threadId=root
        )
        reaction = sdk_peer.request(
            "client-react", handle=handle, streamId=channel_id.hex(), refEventId=root, reaction="🔥"
        )
        edit = sdk_peer.request(
            "client-edit", handle=handle, streamId=channel_id.hex(), refEventId=root, text="edited"
        )
        wanted = {reply["eventId"], reaction["eventId"], edit["eventId"]}
        deadline = time.monotonic() + 15
        got: dict[str, ReceivedMessage] = {}
        while set(got) != wanted and time.monotonic() < deadline:
            gevent.sleep(0.1)
            got = {m.event_id: m for m in ours.messages(channel_id) if m.event_id in wanted}
        assert set(got) == wanted, "our client did not decrypt the SDK's reply, reaction, edit"
        assert (got[reply["eventId"]].kind, got[reply["eventId"]].thread_id) == ("post", root)
        assert got[reaction["eventId"]].kind == "reaction"
        assert (got[reaction["eventId"]].ref_event_id, got[reaction["eventId"]].text) == (
            root,
            "🔥",
        )
        assert got[edit["eventId"]].kind == "edit"
        assert (got[edit["eventId"]].ref_event_id, got[edit["eventId"]].text) == (root, "edited")

        posted = ours.post(channel_id, "from our client")
        seen = sdk_peer.request(
            "client-messages",
            timeout=30,
            handle=handle,
            streamId=channel_id.hex(),
            text="from our client",
            timeoutMs=15_000,
        )
        decrypted = {m["body"]: m for m in seen["messages"]}
        assert "from our client" in decrypted, f"the SDK decrypted only {sorted(decrypted)}"
        assert decrypted["from our client"]["eventId"] == posted
        assert decrypted["from our client"]["senderId"] == ours.user_id
    finally:
        ours.stop()
        sdk_peer.request("client-stop", handle=sdk_user["handle"])
        gevent.sleep(0)


def test_every_event_our_client_sends_passes_the_sdk(sdk_peer: SdkPeer, node_url: str) -> None:
    space_id = ids.space_stream_id(os.urandom(20))
    channel_id = ids.make_channel_stream_id(space_id)
    sdk_user = sdk_peer.init_user(node_url, os.urandom(32), space_id.hex())
    handle = sdk_user["handle"]
    ours = RiverClient(os.urandom(32), node_url)
    try:
        sdk_peer.create_space_and_channel(handle, space_id.hex(), channel_id.hex())
        ours.start(space_id)
        ours.join_space(space_id)
        ours.join_channel(channel_id)
        post = ours.post(channel_id, "kickoff")
        sent = {
            post,
            ours.reply(channel_id, post, "in the thread"),
            ours.react(channel_id, post, "👍"),
            ours.edit(channel_id, post, "kickoff, edited"),
        }

        seen = sdk_peer.request(
            "client-messages",
            timeout=30,
            handle=handle,
            streamId=channel_id.hex(),
            count=len(sent),
            timeoutMs=15_000,
        )
        address = ours.address
        streams = [
            ids.user_stream_id(address),
            ids.user_settings_stream_id(address),
            ids.user_metadata_stream_id(address),
            ids.user_inbox_stream_id(address),
            bytes.fromhex(sdk_user["streams"]["inbox"]),
            space_id,
            channel_id,
        ]
        # The SDK's unpackStream checks every envelope, header and snapshot of each stream.
        verified = {
            stream_id: _stream(sdk_peer, node_url, stream_id.hex()) for stream_id in streams
        }

        channel_events = {e.hash.hex() for mb in verified[channel_id].miniblocks for e in mb.events}
        channel_events |= {e.hash.hex() for e in verified[channel_id].events}
        assert sent <= channel_events
        decrypted = {m["eventId"]: m for m in seen["messages"]}
        assert sent <= set(decrypted), f"the SDK decrypted {seen['messages']}"
        assert decrypted[post]["body"] in ("kickoff", "kickoff, edited")
    finally:
        ours.stop()
        sdk_peer.request("client-stop", handle=handle)


def test_late_joiners_get_the_keys_both_ways(sdk_peer: SdkPeer, node_url: str) -> None:
    # A member who joins after a message was sent asks for its key with a KeySolicitation; a
    # member holding it answers (the SDK after a random delay of up to 5 s, halved when ephemeral).
    space_id = ids.space_stream_id(os.urandom(20))
    channel_id = ids.make_channel_stream_id(space_id)
    first = sdk_peer.init_user(node_url, os.urandom(32), space_id.hex())
    ours = RiverClient(os.urandom(32), node_url)
    late_handle = None
    try:
        handle = first["handle"]
        sdk_peer.create_space_and_channel(handle, space_id.hex(), channel_id.hex())
        sdk_peer.request("client-send", handle=handle, streamId=channel_id.hex(), text="before you")

        ours.start(space_id)
        ours.join_space(space_id)
        ours.join_channel(channel_id)
        received = ours.wait_for_message(lambda m: m.text == "before you", timeout=30)
        assert received is not None, "our late joiner never got the SDK's key"

        ours.post(channel_id, "before the SDK's second device")
        late = sdk_peer.init_user(node_url, os.urandom(32), space_id.hex())
        late_handle = late["handle"]
        sdk_peer.request("client-join", handle=late_handle, streamId=channel_id.hex())
        seen = sdk_peer.request(
            "client-messages",
            timeout=45,
            handle=late_handle,
            streamId=channel_id.hex(),
            text="before the SDK's second device",
            timeoutMs=30_000,
        )
        assert seen["complete"], f"the SDK's late joiner decrypted only {seen['messages']}"
    finally:
        ours.stop()
        sdk_peer.request("client-stop", handle=first["handle"])
        if late_handle is not None:
            sdk_peer.request("client-stop", handle=late_handle)
