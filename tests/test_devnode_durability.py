"""Durability and sync of the dev node, over real HTTP/1.1 and HTTP/2.

kill -9 in the middle of a burst of posts, then a restart on the same database: every event
the node acknowledged is back, the miniblocks chain up (each header names the previous block's
hash and the events it holds), and members can post again. Sync pushes a post to a subscriber
within a fraction of a second, answers PingSync with SYNC_PONG and ends on CancelSync, and
SyncStreams works over cleartext HTTP/2 with prior knowledge (as the SDK's client speaks it).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import gevent
import pytest

from devnet.stack import NodeProcess, create_space_streams
from river_client import ids
from river_client.errors import RiverClientError
from river_client.events import MiniblockRef, make_envelope
from river_client.proto import protocol_pb2 as pb
from river_client.signing import DelegateSigner, WalletSigner
from river_client.transport import ConnectTransport, RetryPolicy

NO_RETRY = RetryPolicy(attempts=1)
ROOT_KEY = bytes(range(1, 33))


@pytest.fixture
def node(tmp_path: Path) -> Iterator[NodeProcess]:
    root = WalletSigner(ROOT_KEY)
    process = NodeProcess(
        tmp_path / "node.sqlite",
        admins=("0x" + root.creator_address.hex(),),
        options=("--miniblock-interval", "0.2"),
    )
    try:
        yield process.start()
    finally:
        process.stop()


def ref(transport: ConnectTransport, stream_id: bytes) -> MiniblockRef:
    reply = transport.call(
        "GetLastMiniblockHash",
        pb.GetLastMiniblockHashRequest(stream_id=stream_id),
        pb.GetLastMiniblockHashResponse,
        retry=NO_RETRY,
    )
    return MiniblockRef(reply.hash, reply.miniblock_num)


def joined_user(transport: ConnectTransport, space_id: bytes, channel_id: bytes) -> DelegateSigner:
    signer = DelegateSigner(os.urandom(32))
    user_stream = ids.user_stream_id(signer.creator_address)
    inception = pb.UserPayload(inception=pb.UserPayload.Inception(stream_id=user_stream))
    transport.call(
        "CreateStream",
        pb.CreateStreamRequest(
            stream_id=user_stream,
            events=[make_envelope(signer, inception)],
            metadata={"spaceId": space_id},
        ),
        pb.CreateStreamResponse,
    )
    join = pb.UserPayload(
        user_membership=pb.UserPayload.UserMembership(
            stream_id=channel_id, op=pb.MembershipOp.SO_JOIN
        )
    )
    transport.call(
        "AddEvent",
        pb.AddEventRequest(
            stream_id=user_stream,
            event=make_envelope(signer, join, ref(transport, user_stream)),
        ),
        pb.AddEventResponse,
    )
    return signer


def post(
    transport: ConnectTransport, signer: DelegateSigner, channel_id: bytes, text: str
) -> bytes:
    payload = pb.ChannelPayload(message=pb.EncryptedData(ciphertext=text))
    envelope = make_envelope(signer, payload, ref(transport, channel_id))
    request = pb.AddEventRequest(stream_id=channel_id, event=envelope)
    transport.call("AddEvent", request, pb.AddEventResponse, retry=NO_RETRY)
    return bytes(envelope.hash)


def setup_channel(node: NodeProcess) -> tuple[ConnectTransport, bytes, bytes]:
    space_id = ids.space_stream_id(os.urandom(20))
    _announce, channels = create_space_streams(node.url, ROOT_KEY, space_id, 1)
    return ConnectTransport(node.url, timeout=10.0, concurrency=32), space_id, channels[0]


def test_kill_9_loses_nothing_acknowledged(node: NodeProcess) -> None:
    transport, space_id, channel_id = setup_channel(node)
    users = [joined_user(transport, space_id, channel_id) for _ in range(6)]
    acknowledged: list[bytes] = []

    def poster(signer: DelegateSigner) -> None:
        for n in range(10_000):
            try:
                acknowledged.append(post(transport, signer, channel_id, f"message {n}"))
            except RiverClientError:
                return

    workers = [gevent.spawn(poster, user) for user in users for _ in range(3)]
    gevent.sleep(1.5)
    node.kill()
    gevent.joinall(workers, timeout=20)
    transport.close()
    assert len(acknowledged) > 50, "too few posts before the kill to prove anything"

    node.start()
    transport = ConnectTransport(node.url, timeout=10.0)
    try:
        last = ref(transport, channel_id)
        blocks = transport.call(
            "GetMiniblocks",
            pb.GetMiniblocksRequest(
                stream_id=channel_id, from_inclusive=0, to_exclusive=last.num + 1
            ),
            pb.GetMiniblocksResponse,
        ).miniblocks
        while len(blocks) < last.num + 1:
            blocks.extend(
                transport.call(
                    "GetMiniblocks",
                    pb.GetMiniblocksRequest(
                        stream_id=channel_id,
                        from_inclusive=len(blocks),
                        to_exclusive=last.num + 1,
                    ),
                    pb.GetMiniblocksResponse,
                ).miniblocks
            )
        minipool = transport.call(
            "GetStream", pb.GetStreamRequest(stream_id=channel_id), pb.GetStreamResponse
        ).stream.events

        stored = {bytes(e.hash) for b in blocks for e in b.events}
        stored |= {bytes(e.hash) for e in minipool}
        missing = [h.hex() for h in acknowledged if h not in stored]
        assert not missing, f"{len(missing)} acknowledged events lost, e.g. {missing[:3]}"

        previous_hash = b""
        for num, block in enumerate(blocks):
            header = pb.StreamEvent.FromString(block.header.event).miniblock_header
            assert header.miniblock_num == num
            assert bytes(header.prev_miniblock_hash) == previous_hash
            assert list(header.event_hashes) == [e.hash for e in block.events]
            previous_hash = bytes(block.header.hash)
        assert previous_hash == last.hash

        post(transport, users[0], channel_id, "after the restart")
    finally:
        transport.close()


def test_sync_delivers_pongs_and_closes(node: NodeProcess) -> None:
    transport, space_id, channel_id = setup_channel(node)
    try:
        alice = joined_user(transport, space_id, channel_id)
        cookie = transport.call(
            "GetStream", pb.GetStreamRequest(stream_id=channel_id), pb.GetStreamResponse
        ).stream.next_sync_cookie
        stream = transport.open_stream(
            "SyncStreams", pb.SyncStreamsRequest(sync_pos=[cookie]), pb.SyncStreamsResponse
        )
        first = next(stream)
        assert first.sync_op == pb.SyncOp.SYNC_NEW and first.sync_id
        backfill = next(stream)
        assert backfill.sync_op == pb.SyncOp.SYNC_UPDATE
        assert backfill.stream.next_sync_cookie.stream_id == channel_id

        started = time.monotonic()
        sent = post(transport, alice, channel_id, "hello sync")
        for update in stream:  # a sealed block's header may come first
            assert update.sync_op == pb.SyncOp.SYNC_UPDATE
            if sent in {bytes(e.hash) for e in update.stream.events}:
                break
        assert time.monotonic() - started < 1.0

        transport.call(
            "PingSync", pb.PingSyncRequest(sync_id=first.sync_id, nonce="n1"), pb.PingSyncResponse
        )
        for message in stream:  # sealed-block updates may come first
            if message.sync_op == pb.SyncOp.SYNC_PONG:
                assert message.pong_nonce == "n1"
                break

        transport.call(
            "CancelSync", pb.CancelSyncRequest(sync_id=first.sync_id), pb.CancelSyncResponse
        )
        rest = list(stream)
        assert rest and rest[-1].sync_op == pb.SyncOp.SYNC_CLOSE
    finally:
        transport.close()


def test_sync_over_http2_prior_knowledge(node: NodeProcess) -> None:
    import socket
    import struct

    import h2.config
    import h2.connection
    import h2.events

    transport, _space_id, channel_id = setup_channel(node)
    transport.close()
    cookie = pb.SyncCookie(stream_id=channel_id)  # minipool_gen 0: the node answers a reset
    request = pb.SyncStreamsRequest(sync_pos=[cookie]).SerializeToString()
    host, port = node.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        connection.initiate_connection()
        connection.send_headers(
            1,
            [
                (":method", "POST"),
                (":scheme", "http"),
                (":authority", node.url.removeprefix("http://")),
                (":path", "/river.StreamService/SyncStreams"),
                ("content-type", "application/connect+proto"),
            ],
        )
        connection.send_data(1, struct.pack(">BI", 0, len(request)) + request, end_stream=True)
        sock.sendall(connection.data_to_send())
        data = b""
        status = None
        while len(data) < 5 or len(data) < 5 + struct.unpack(">BI", data[:5])[1] + 5:
            for event in connection.receive_data(sock.recv(65536)):
                if isinstance(event, h2.events.ResponseReceived):
                    status = dict(event.headers)[b":status"]
                elif isinstance(event, h2.events.DataReceived):
                    data += event.data
                    connection.acknowledge_received_data(len(event.data), 1)
            sock.sendall(connection.data_to_send())
    assert status == b"200"
    length = struct.unpack(">BI", data[:5])[1]
    first = pb.SyncStreamsResponse.FromString(data[5 : 5 + length])
    assert first.sync_op == pb.SyncOp.SYNC_NEW
    rest = data[5 + length :]
    second = pb.SyncStreamsResponse.FromString(rest[5 : 5 + struct.unpack(">BI", rest[:5])[1]])
    assert second.sync_op == pb.SyncOp.SYNC_UPDATE and second.stream.sync_reset
