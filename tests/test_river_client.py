"""RiverClient against the dev node over real HTTP: users, joins, encrypted chat, retries.

The node runs as a subprocess on 127.0.0.1 without chain checks (every wallet is a member);
an admin wallet creates the space and two channels with the client's own create calls.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import gevent
import pytest
from gevent.pool import Pool

from devnet.anvil import Anvil
from devnet.chain import deploy_river_registry
from devnet.stack import NodeProcess
from river_client import ids
from river_client.chain.registry import NodeStatus
from river_client.client import RiverClient
from river_client.discovery import node_urls, pick_node
from river_client.errors import Err, RiverError
from river_client.messages import ReceivedMessage
from river_client.proto import protocol_pb2 as pb
from wallet_tools.derivation import HDWallets

MNEMONIC = "test test test test test test test test test test test junk"
SPACE_ADDRESS = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
WALLETS = HDWallets(MNEMONIC)


@contextmanager
def dev_node(db: Path, *options: str) -> Iterator[NodeProcess]:
    """A dev node on a free port without chain checks; wallet 0 may create spaces."""
    with NodeProcess(db, admins=(WALLETS.wallet(0).address,), options=options) as started:
        yield started


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    with dev_node(Path(tmp_path_factory.mktemp("river-node")) / "node.sqlite") as started:
        yield started


def make_space(url: str) -> tuple[str, list[str]]:
    """A space with two channels, created by the admin wallet."""
    admin = RiverClient(WALLETS.wallet(0).private_key, url)
    space_id = ids.space_stream_id(SPACE_ADDRESS).hex()
    admin.create_space(space_id)
    return space_id, [admin.create_channel(space_id) for _ in range(2)]


@pytest.fixture(scope="module")
def space(node: NodeProcess) -> tuple[str, list[str]]:
    return make_space(node.url)


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        gevent.sleep(0.05)


def test_two_users_chat_with_threads_reactions_and_edits(
    node: NodeProcess, space: tuple[str, list[str]]
) -> None:
    space_id, (channel, _) = space
    calls: list[tuple[str, str, float, Exception | None]] = []
    seen: list[ReceivedMessage] = []
    alice = RiverClient(WALLETS.wallet(1).private_key, node.url, on_call=lambda *c: calls.append(c))
    arrived: list[tuple[bytes, str]] = []
    bob = RiverClient(
        WALLETS.wallet(2).private_key,
        [node.url],
        on_message=seen.append,
        on_arrival=lambda channel, event: arrived.append((channel, event.event_id)),
    )
    try:
        bob.keys.ack_interval = 0.2
        for user in (alice, bob):
            user.start(space_id)
            user.join_space(space_id)
            user.join_channel(channel)
        both = {alice.user_id, bob.user_id}
        wait_until(lambda: both <= alice.members(channel), 5, "bob's join to reach alice")

        root = alice.post(channel, "kickoff")
        reply = bob.reply(channel, root, "in the thread")
        reaction = bob.react(channel, root, "👍")
        edit = alice.edit(channel, root, "kickoff (edited)")

        wait_until(lambda: len(alice.messages(channel)) == 4, 10, "alice to see 4 messages")
        wait_until(lambda: len(bob.messages(channel)) == 4, 10, "bob to see 4 messages")
        by_id = {m.event_id: m for m in alice.messages(channel)}
        assert by_id[root].text == "kickoff" and by_id[root].sender == alice.user_id
        assert by_id[reply].thread_id == root and by_id[reply].sender == bob.user_id
        assert by_id[reaction].reaction == "👍" and by_id[reaction].ref_event_id == root
        assert by_id[edit].kind == "edit" and by_id[edit].text == "kickoff (edited)"
        assert [m.event_id for m in seen] == [m.event_id for m in bob.messages(channel)]
        # every message event reached on_arrival once, as it arrived
        assert sorted(e for _, e in arrived) == sorted(by_id)
        assert {c for c, _ in arrived} == {bytes.fromhex(channel)}
        wait_until(lambda: bob.keys.acks == 1, 5, "bob to acknowledge the keys in his inbox")

        names = {name for kind, name, _, error in calls if error is None}
        assert kind_is_river(calls)
        assert {"GetStream", "CreateStream", "AddEvent", "ModifySync"} <= names

        # a fresh client reads the history (and gets the key from the members it asks)
        carol = RiverClient(
            WALLETS.wallet(3).private_key, node.url, solicit_delay=0.2, respond_delay_scale=0.0
        )
        carol.start(space_id)
        carol.join_space(space_id)
        carol.join_channel(channel)
        wait_until(lambda: len(carol.messages(channel)) == 4, 15, "carol to decrypt the history")
        found = carol.wait_for_message(lambda m: m.text == "in the thread", timeout=1)
        assert found is not None and found.thread_id == root
        assert carol.wait_for_message(lambda m: m.text == "never sent", timeout=0.1) is None
        history = carol.timeline(channel, history_miniblocks=10)
        assert {root, reply, reaction, edit} <= {m.event_id for m in history}
        carol.stop()
    finally:
        alice.stop()
        bob.stop()


def kind_is_river(calls: list[tuple[str, str, float, Exception | None]]) -> bool:
    return all(kind == "river" and elapsed >= 0 for kind, _, elapsed, _ in calls)


def test_stale_miniblock_reference_is_corrected_by_the_node(tmp_path: Path) -> None:
    with dev_node(tmp_path / "node.sqlite", "--recency-seconds", "1") as strict:
        space_id, (channel, _) = make_space(strict.url)
        errors: list[Exception] = []

        def on_call(kind: str, name: str, elapsed_ms: float, error: Exception | None) -> None:
            if error is not None:
                errors.append(error)

        dave = RiverClient(WALLETS.wallet(4).private_key, strict.url, on_call=on_call)
        dave.start(space_id)
        user_stream = ids.user_stream_id(dave.address)
        old = dave.last_miniblock(user_stream)
        dave.join_space(space_id)  # a new miniblock follows the old one
        wait_until(lambda: dave.last_miniblock(user_stream).num > old.num, 10, "a new miniblock")
        gevent.sleep(1.5)  # the old block is no longer recent

        membership = pb.UserPayload.UserMembership(stream_id=bytes.fromhex(channel), op=pb.SO_JOIN)
        event_id = dave.add_event_on(user_stream, pb.UserPayload(user_membership=membership), old)
        assert len(event_id) == 64
        assert [e.code for e in errors if isinstance(e, RiverError)] == [
            Err.BAD_PREV_MINIBLOCK_HASH
        ]
        assert dave.user_id in dave.members(channel)
        dave.stop()


def test_fifty_clients_post_to_two_channels_and_decrypt_everything(
    node: NodeProcess, space: tuple[str, list[str]]
) -> None:
    space_id, channels = space
    clients = [RiverClient(w.private_key, node.url) for w in WALLETS.wallets(10, 60)]
    pool = Pool(25)
    try:

        def enter(client: RiverClient) -> None:
            client.start(space_id)
            client.join_space(space_id)
            for channel in channels:
                client.join_channel(channel)

        pool.map(enter, clients)

        # the first post of each channel creates its session and shares it with every member
        sent = [clients[0].post(channel, f"first in {channel[:8]}") for channel in channels]
        wait_until(
            lambda: all(c.keys.store.outbound(ch) is not None for c in clients for ch in channels),
            30,
            "every client to import both channel sessions",
        )
        sent += pool.map(
            lambda i: clients[i].post(channels[i % 2], f"message {i}"), range(len(clients))
        )

        def complete(client: RiverClient) -> bool:
            received = {m.event_id for ch in channels for m in client.messages(ch)}
            return set(sent) <= received

        wait_until(
            lambda: all(complete(c) for c in clients), 60, "every client to see every message"
        )
        for client in clients:
            texts = {m.text for ch in channels for m in client.messages(ch)}
            assert {f"message {i}" for i in range(len(clients))} <= texts
        sessions = {c.keys.store.outbound(ch).session_id for c in clients for ch in channels}  # type: ignore[union-attr]
        assert len(sessions) == 2, "all clients converge on one session per channel"
    finally:
        pool.map(lambda c: c.stop(), clients)


def test_json_codec_client_posts_pings_and_stops(
    node: NodeProcess, space: tuple[str, list[str]]
) -> None:
    space_id, (_, channel) = space
    erin = RiverClient(WALLETS.wallet(5).private_key, node.url, codec="json")
    erin.start(space_id)
    erin.join_space(space_id)
    erin.join_channel(channel)
    event_id = erin.post(channel, "over protobuf-JSON")
    wait_until(lambda: any(m.event_id == event_id for m in erin.messages(channel)), 10, "echo")
    erin.sync.ping()
    wait_until(lambda: erin.sync.pongs >= 1, 5, "SYNC_PONG")
    erin.stop()
    assert not erin.sync.running


def test_client_on_a_node_found_in_the_registry(
    node: NodeProcess, space: tuple[str, list[str]], anvil: Anvil
) -> None:
    space_id, (channel, _) = space
    registry = deploy_river_registry(
        anvil.rpc_url,
        WALLETS.wallet(0).private_key,
        [
            (WALLETS.wallet(90).address, node.url, NodeStatus.OPERATIONAL),
            (WALLETS.wallet(91).address, "http://127.0.0.1:1", NodeStatus.FAILED),
        ],
    )
    urls = node_urls(river_rpc_url=anvil.rpc_url, registry_address=registry)
    assert urls == [node.url]
    frank = RiverClient(WALLETS.wallet(6).private_key, pick_node(urls))
    frank.start(space_id)
    frank.join_space(space_id)
    frank.join_channel(channel)
    event_id = frank.post(channel, "found the node on chain")
    wait_until(lambda: any(m.event_id == event_id for m in frank.messages(channel)), 10, "echo")
    frank.stop()
