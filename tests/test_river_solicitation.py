"""Key solicitations at scale: late joiners get a session only one member holds.

Against the dev node (no chain checks): one member posts, then dozens of clients join and
must decrypt that post through KeySolicitation / KeyFulfillment, answered by the holder and by
members who received the key meanwhile. The responder's queue is also checked on its own:
fulfillments seen during the delay stop an answer, repeated solicitations of a device make one
answer.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import gevent
import pytest

from devnet.stack import NodeProcess
from river_client import ids
from river_client.client import RiverClient
from river_client.encryption.device import Device
from river_client.encryption.hybrid import HybridSession, SessionStore
from river_client.proto import protocol_pb2 as pb
from river_client.solicitations import AnswerClaims, KeyResponder
from river_client.transport import ConnectTransport
from wallet_tools.derivation import HDWallets

WALLETS = HDWallets("test test test test test test test test test test test junk")
SPACE_ADDRESS = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
LATE_JOINERS = 40


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    db = Path(tmp_path_factory.mktemp("river-solicit")) / "node.sqlite"
    with NodeProcess(db, admins=(WALLETS.wallet(0).address,)) as started:
        yield started


def holder_with_channel(url: str) -> tuple[RiverClient, str, str]:
    holder = RiverClient(WALLETS.wallet(0).private_key, url, respond_delay_scale=0.1)
    space = ids.space_stream_id(SPACE_ADDRESS).hex()
    if holder.get_stream(ids.stream_id_bytes(space)) is None:
        holder.create_space(space)
    channel = holder.create_channel(space)
    holder.start(space)
    holder.join_space(space)
    holder.join_channel(channel)
    return holder, space, channel


def test_forty_late_joiners_all_decrypt_a_post_only_one_member_could_share(
    node: NodeProcess,
) -> None:
    holder, space, channel = holder_with_channel(node.url)
    kickoff = holder.post(channel, "kickoff")
    transport = ConnectTransport(node.url, concurrency=64)
    joiners = [
        RiverClient(
            WALLETS.wallet(i).private_key,
            transport,
            solicit_delay=0.5,
            respond_delay_scale=0.1,
        )
        for i in range(1, LATE_JOINERS + 1)
    ]
    waited: dict[str, float] = {}

    def join_and_wait(client: RiverClient) -> None:
        started = time.monotonic()
        client.start(space)
        client.join_space(space)
        client.join_channel(channel)
        found = client.wait_for_message(lambda m: m.event_id == kickoff, 30)
        if found is not None:
            waited[client.user_id] = time.monotonic() - started
            client.react(channel, kickoff, "👍")

    try:
        started = time.monotonic()
        greenlets = []
        for client in joiners:
            greenlets.append(gevent.spawn(join_and_wait, client))
            gevent.sleep(0.05)
        gevent.joinall(greenlets, timeout=40, raise_error=True)
        elapsed = time.monotonic() - started
        missing = [c.user_id for c in joiners if c.user_id not in waited]
        assert not missing, f"{len(missing)} of {LATE_JOINERS} never decrypted the post"
        assert elapsed < 30, f"late joiners took {elapsed:.1f} s"
        answers = holder.keys.responder.answered + sum(c.keys.responder.answered for c in joiners)
        # one answer per joiner, give or take those answered twice before a fulfillment arrived
        assert LATE_JOINERS <= answers < 2 * LATE_JOINERS
    finally:
        for client in joiners:
            client.stop()
        holder.stop()
        transport.close()


def test_joining_with_history_finds_a_post_older_than_the_last_snapshot(
    node: NodeProcess,
) -> None:
    holder, space, channel = holder_with_channel(node.url)
    try:
        kickoff = holder.post(channel, "kickoff before a snapshot")
        gevent.sleep(1.5)  # sealed in a miniblock (the dev node seals after 1 s)
        for n in range(110):  # the next block holds a snapshot (one every 100 events)
            holder.post(channel, f"chatter {n}")
        gevent.sleep(1.5)
        fresh = holder.get_stream(ids.stream_id_bytes(channel))
        assert fresh is not None and fresh.HasField("snapshot")
        assert kickoff not in {bytes(e.hash).hex() for b in fresh.miniblocks for e in b.events}
        late = RiverClient(
            WALLETS.wallet(LATE_JOINERS + 1).private_key, node.url, solicit_delay=0.2
        )
        try:
            late.start(space)
            late.join_space(space)
            late.join_channel(channel, history_miniblocks=50)
            found = late.wait_for_message(lambda m: m.event_id == kickoff, 20)
            assert found is not None and found.text == "kickoff before a snapshot"
            assert late.keys.pending_count == 0
        finally:
            late.stop()
    finally:
        holder.stop()


def test_joiners_with_key_wait_post_under_the_members_key_instead_of_sharing_their_own(
    node: NodeProcess,
) -> None:
    holder, space, channel = holder_with_channel(node.url)
    stream = ids.stream_id_bytes(channel)
    holder.post(channel, "the channel's first key")
    holder_session = holder.keys.store.outbound(stream)
    assert holder_session is not None
    transport = ConnectTransport(node.url, concurrency=32)

    def joiner(index: int, key_wait: float) -> RiverClient:
        # solicit_delay is long: only await_session soliciting at once lets these finish soon
        return RiverClient(
            WALLETS.wallet(index).private_key,
            transport,
            solicit_delay=60.0,
            respond_delay_scale=0.05,
            key_wait=key_wait,
        )

    waiting = [joiner(i, key_wait=20.0) for i in range(60, 70)]
    eager = joiner(70, key_wait=0.0)

    def join_and_post(client: RiverClient) -> None:
        client.start(space)
        client.join_space(space)
        client.join_channel(channel)
        client.post(channel, f"hello from {client.user_id}")

    try:
        started = time.monotonic()
        gevent.joinall(
            [gevent.spawn(join_and_post, c) for c in waiting], timeout=40, raise_error=True
        )
        elapsed = time.monotonic() - started
        assert elapsed < 30, f"joiners waited {elapsed:.1f} s for the key"
        for client in waiting:
            session = client.keys.store.outbound(stream)
            assert session is not None and session.session_id == holder_session.session_id
            assert len(client.keys.store.sessions(stream)) == 1
        gevent.sleep(1.0)
        assert holder.keys.store.session_ids(stream) == [holder_session.session_id_hex]

        join_and_post(eager)  # the SDK's way: a key of its own at once, shared with all
        own = eager.keys.store.outbound(stream)
        assert own is not None and own.session_id != holder_session.session_id
        deadline = time.monotonic() + 20
        while own.session_id_hex not in holder.keys.store and time.monotonic() < deadline:
            gevent.sleep(0.2)
        assert own.session_id_hex in holder.keys.store
    finally:
        for client in [*waiting, eager]:
            client.stop()
        holder.stop()
        transport.close()


def test_key_wait_creates_at_once_in_a_channel_without_messages(node: NodeProcess) -> None:
    holder, space, channel = holder_with_channel(node.url)
    client = RiverClient(WALLETS.wallet(71).private_key, node.url, key_wait=30.0)
    try:
        client.start(space)
        client.join_space(space)
        client.join_channel(channel)
        started = time.monotonic()
        client.post(channel, "first words in an empty channel")
        assert time.monotonic() - started < 10
        assert client.keys.store.outbound(ids.stream_id_bytes(channel)) is not None
    finally:
        client.stop()
        holder.stop()


class _Recorder:
    def __init__(self) -> None:
        self.fulfillments: list[tuple[bytes, pb.MemberPayload]] = []
        self.deliveries: list[bytes] = []

    def add_event(self, stream_id: bytes, payload: pb.MemberPayload) -> None:
        self.fulfillments.append((stream_id, payload))

    def deliver(self, member: bytes, payload: object) -> None:
        self.deliveries.append(member)


def test_responder_answers_once_per_device_and_skips_what_others_fulfilled() -> None:
    stream_id = bytes.fromhex("20" + "ab" * 31)
    store = SessionStore()
    session = HybridSession.create(stream_id, 3, os.urandom(32))
    store.add(session)
    recorder = _Recorder()
    responder = KeyResponder(
        Device(),
        store,
        recorder.add_event,
        recorder.deliver,
        address=b"\x01" * 20,
        respond_delay_scale=0.02,  # window max(5, min(30, members)) s -> at most 0.6 s here
    )
    asking, answered_elsewhere = Device(), Device()

    def solicitation(device: Device) -> pb.MemberPayload.KeySolicitation:
        return pb.MemberPayload.KeySolicitation(
            device_key=device.device_key,
            fallback_key=device.fallback_key,
            session_ids=[session.session_id_hex],
        )

    for _ in range(3):  # a device asking again makes one answer
        responder.solicited(stream_id, b"\x02" * 20, solicitation(asking), members=30)
    responder.solicited(stream_id, b"\x03" * 20, solicitation(answered_elsewhere), members=30)
    assert responder.queued == 2
    responder.fulfilled(
        stream_id,
        pb.MemberPayload.KeyFulfillment(
            user_address=b"\x03" * 20,
            device_key=answered_elsewhere.device_key,
            session_ids=[session.session_id_hex],
        ),
    )
    assert responder.queued == 1

    deadline = time.monotonic() + 5
    while responder.answered < 1 and time.monotonic() < deadline:
        gevent.sleep(0.05)
    gevent.sleep(0.1)
    assert responder.answered == 1
    assert recorder.deliveries == [b"\x02" * 20]
    fulfilled = recorder.fulfillments[0][1].key_fulfillment
    assert fulfilled.device_key == asking.device_key
    assert list(fulfilled.session_ids) == [session.session_id_hex]
    responder.stop()


def test_clients_sharing_answer_claims_queue_one_answer_per_solicitation() -> None:
    stream_id = bytes.fromhex("20" + "cd" * 31)
    session = HybridSession.create(stream_id, 3, os.urandom(32))
    claims = AnswerClaims(ttl=0.5)
    responders = []
    for n in range(20):
        store = SessionStore()
        store.add(session)
        recorder = _Recorder()
        responders.append(
            KeyResponder(
                Device(),
                store,
                recorder.add_event,
                recorder.deliver,
                address=bytes([n + 10]) * 20,
                respond_delay_scale=100.0,  # nobody answers during the test
                claims=claims,
            )
        )
    asking = Device()
    solicitation = pb.MemberPayload.KeySolicitation(
        device_key=asking.device_key,
        fallback_key=asking.fallback_key,
        session_ids=[session.session_id_hex],
    )
    try:
        assert claims.clients == 20
        for responder in responders:
            responder.solicited(stream_id, b"\x02" * 20, solicitation, members=30)
        assert sum(r.queued for r in responders) == 1
        gevent.sleep(0.6)  # the claim lapses: a device asking again is answered again
        for responder in responders[1:]:
            responder.solicited(stream_id, b"\x02" * 20, solicitation, members=30)
        assert sum(r.queued for r in responders) == 2
    finally:
        for responder in responders:
            responder.stop()
            responder.stop()  # twice: counted out once
    assert claims.clients == 0
