"""Our client tags channel messages as the official SDK's Client does, in the same channel.

An SDK user and a RiverClient user take turns in one channel on the dev node: a root post each,
replies in the thread of our root, a reaction to a thread reply, an edit of one's own reply, a
redaction of the other's reply and of one's own. Each of our events is compared with the SDK
event made for the same action, as the node stored both: message_interaction_type, thread_id,
participating and mentioned users. The turns wait until each side has decrypted the other's
messages, as the SDK computes tags from what its client has seen. Rules: river_client/tags.py;
facts: research/river-protocol.md §4.6.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from sdk_peer import SdkPeer

from devnet.stack import NodeProcess
from river_client import ids
from river_client.client import RiverClient
from river_client.proto import protocol_pb2 as pb
from river_client.streams import events_of

pytest_plugins = ("sdk_peer",)

POST = pb.MESSAGE_INTERACTION_TYPE_POST
REPLY = pb.MESSAGE_INTERACTION_TYPE_REPLY
REDACTION = pb.MESSAGE_INTERACTION_TYPE_REDACTION


@pytest.fixture(scope="module")
def node_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db_path = tmp_path_factory.mktemp("sdk-tags") / "node.sqlite"
    with NodeProcess(db_path) as node:
        yield node.url


def _sdk_sees(peer: SdkPeer, handle: str, channel: bytes, event_id: str) -> None:
    """Wait until the SDK client decrypted `event_id` (it tags from its decrypted timeline)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        seen = peer.request(
            "client-messages", handle=handle, streamId=channel.hex(), count=1, timeoutMs=200
        )
        if any(m["eventId"] == event_id for m in seen["messages"]):
            return
    raise AssertionError(f"the SDK client never decrypted event {event_id}")


def _ours_sees(ours: RiverClient, event_id: str) -> None:
    found = ours.wait_for_message(lambda m: m.event_id == event_id, timeout=20)
    assert found is not None, f"our client never decrypted event {event_id}"


def _stored_tags(ours: RiverClient, channel: bytes) -> dict[str, pb.Tags]:
    """The tags of every event of the channel as the node returns them."""
    stream = ours.get_stream(channel)
    assert stream is not None
    return {parsed.event_id: parsed.event.tags for parsed in events_of(stream)}


def _readable(tags: pb.Tags) -> dict[str, object]:
    return MessageToDict(tags, preserving_proto_field_name=True)


def test_our_tags_match_the_sdk_for_the_same_actions(sdk_peer: SdkPeer, node_url: str) -> None:
    space_id = ids.space_stream_id(os.urandom(20))
    channel = ids.make_channel_stream_id(space_id)
    sdk_user = sdk_peer.init_user(node_url, os.urandom(32), space_id.hex())
    handle = sdk_user["handle"]
    ours = RiverClient(os.urandom(32), node_url)

    def sdk(command: str, **fields: Any) -> str:
        reply = sdk_peer.request(command, handle=handle, streamId=channel.hex(), **fields)
        return str(reply["eventId"])

    try:
        sdk_peer.create_space_and_channel(handle, space_id.hex(), channel.hex())
        ours.start(space_id)
        ours.join_space(space_id)
        ours.join_channel(channel)

        our_root = ours.post(channel, "root from our client")
        sdk_root = sdk("client-send", text="root from the SDK")
        _sdk_sees(sdk_peer, handle, channel, our_root)
        _ours_sees(ours, sdk_root)

        sdk_first_reply = sdk("client-send", text="first reply", threadId=our_root)
        _ours_sees(ours, sdk_first_reply)
        our_reply = ours.reply(channel, our_root, "our reply")
        _sdk_sees(sdk_peer, handle, channel, our_reply)
        sdk_reply = sdk("client-send", text="SDK reply", threadId=our_root)
        _ours_sees(ours, sdk_reply)

        pairs = {
            "reaction to a thread reply": (
                ours.react(channel, sdk_first_reply, "👍"),
                sdk("client-react", refEventId=sdk_first_reply, reaction="👍"),
            ),
            "edit of one's own thread reply": (
                ours.edit(channel, our_reply, "our reply, edited"),
                sdk("client-edit", refEventId=sdk_reply, text="SDK reply, edited"),
            ),
            "redaction of the other's thread reply": (
                ours.redact(channel, sdk_first_reply),
                sdk("client-redact", refEventId=our_reply),
            ),
        }
        pairs["redaction of one's own thread reply"] = (
            ours.redact(channel, our_reply),
            sdk("client-redact", refEventId=sdk_reply),
        )
        pairs["root post"] = (our_root, sdk_root)
        pairs["thread reply"] = (our_reply, sdk_reply)

        stored = _stored_tags(ours, channel)
        assert {e for pair in pairs.values() for e in pair} <= set(stored)
        for action, (mine, theirs) in pairs.items():
            assert _readable(stored[mine]) == _readable(stored[theirs]), action

        thread = bytes.fromhex(our_root)
        us, them = ours.address, ids.address_bytes(sdk_user["userId"])
        assert stored[our_root] == pb.Tags(message_interaction_type=POST)
        # The SDK tags a message after adding it to its own timeline: its sender participates.
        assert stored[sdk_first_reply] == pb.Tags(
            message_interaction_type=REPLY,
            thread_id=thread,
            participating_user_addresses=[us, them],
        )
        assert stored[our_reply] == pb.Tags(
            message_interaction_type=REPLY,
            thread_id=thread,
            participating_user_addresses=[us, them],
        )
        reaction = stored[pairs["reaction to a thread reply"][0]]
        assert (list(reaction.participating_user_addresses), reaction.thread_id) == ([them], thread)
        for action in ("edit of one's own thread reply", "redaction of the other's thread reply"):
            tags = stored[pairs[action][0]]
            assert (tags.thread_id, list(tags.participating_user_addresses)) == (thread, []), action
        # ... and a redaction of one's own message has hidden it before its thread is looked up.
        own_redaction = stored[pairs["redaction of one's own thread reply"][0]]
        assert own_redaction == pb.Tags(message_interaction_type=REDACTION)
    finally:
        ours.stop()
        sdk_peer.request("client-stop", handle=handle)
