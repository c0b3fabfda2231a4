"""The dev node's rules over real HTTP, against a real anvil with the space contract.

One node and one chain serve the whole module: bad envelopes get the River error the real
node gives (wrong hash, wrong signature, expired delegate, stale or too new prev miniblock,
oversized event, unknown stream), the membership gate follows the chain (refused, minted,
then admitted once the 2 s negative cache has expired), errors carry the real node's format,
and the same port answers JSON, HTTP/1.1 and HTTP/2 with prior knowledge.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from devnet.chain import DEPLOYER_KEY, DEVNET_MNEMONIC, ChainInfo, owner_call, start_chain
from devnet.stack import NodeProcess, create_space_streams
from river_client import ids
from river_client.chain.membership import SpaceContract
from river_client.errors import RiverError
from river_client.events import MiniblockRef, make_envelope
from river_client.proto import protocol_pb2 as pb
from river_client.signing import DelegateSigner, WalletSigner
from river_client.transport import ConnectTransport, RetryPolicy
from wallet_tools.derivation import HDWallets
from wallet_tools.rpc import JsonRpc

Err = pb.Err
NO_RETRY = RetryPolicy(attempts=1)


@dataclass
class Devnet:
    chain: ChainInfo
    node: NodeProcess
    transport: ConnectTransport
    space: SpaceContract
    root_key: bytes
    space_id: bytes
    channel_id: bytes

    def call(self, method: str, request: object, response_type: type) -> object:
        return self.transport.call(method, request, response_type, retry=NO_RETRY)  # type: ignore[arg-type]

    def ref(self, stream_id: bytes) -> MiniblockRef:
        reply = self.call(
            "GetLastMiniblockHash",
            pb.GetLastMiniblockHashRequest(stream_id=stream_id),
            pb.GetLastMiniblockHashResponse,
        )
        return MiniblockRef(reply.hash, reply.miniblock_num)  # type: ignore[attr-defined]

    def add(self, stream_id: bytes, envelope: pb.Envelope) -> pb.AddEventResponse:
        request = pb.AddEventRequest(stream_id=stream_id, event=envelope)
        return self.call("AddEvent", request, pb.AddEventResponse)  # type: ignore[return-value]

    def seal(self, stream_id: bytes) -> None:
        self.call(
            "Info", pb.InfoRequest(debug=["make_miniblock", stream_id.hex()]), pb.InfoResponse
        )

    def create_user(self, signer: DelegateSigner) -> pb.CreateStreamResponse:
        stream_id = ids.user_stream_id(signer.creator_address)
        inception = pb.UserPayload(inception=pb.UserPayload.Inception(stream_id=stream_id))
        request = pb.CreateStreamRequest(
            stream_id=stream_id,
            events=[make_envelope(signer, inception)],
            metadata={"spaceId": self.space_id},
        )
        return self.call("CreateStream", request, pb.CreateStreamResponse)  # type: ignore[return-value]

    def member(self, wallet_key: bytes | None = None, join_channel: bool = True) -> DelegateSigner:
        """A new wallet with a minted membership, its user stream, joined to the channel."""
        signer = DelegateSigner(wallet_key or os.urandom(32))
        self.space.mint(signer.user_id, self.root_key)
        self.create_user(signer)
        if join_channel:
            user_stream = ids.user_stream_id(signer.creator_address)
            join = pb.UserPayload(
                user_membership=pb.UserPayload.UserMembership(
                    stream_id=self.channel_id, op=pb.MembershipOp.SO_JOIN
                )
            )
            self.add(user_stream, make_envelope(signer, join, self.ref(user_stream)))
        return signer

    def message(self, signer: DelegateSigner, text: str, **kw: object) -> pb.Envelope:
        payload = pb.ChannelPayload(message=pb.EncryptedData(ciphertext=text))
        ref = kw.pop("ref", None) or self.ref(self.channel_id)
        return make_envelope(signer, payload, ref, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    state = tmp_path_factory.mktemp("devnode")
    chain = start_chain(automine=True, state_dir=state)
    assert chain.anvil is not None
    root = HDWallets(DEVNET_MNEMONIC).wallet(0)
    node = NodeProcess(
        state / "node.sqlite",
        rpc_url=chain.rpc_url,
        admins=(root.address,),
        options=(
            "--recency-seconds",
            "2",
            "--max-event-bytes",
            "4096",
            "--positive-cache-seconds",
            "1",
        ),
    )
    transport = None
    try:
        node.start()
        space_id = bytes.fromhex(chain.space_id)
        _announce, channels = create_space_streams(node.url, root.private_key, space_id, 1)
        transport = ConnectTransport(node.url, timeout=15.0)
        space = SpaceContract(JsonRpc(chain.rpc_url), chain.space_address)
        yield Devnet(chain, node, transport, space, root.private_key, space_id, channels[0])
    finally:
        if transport is not None:
            transport.close()
        node.stop()
        chain.anvil.stop()


def river_error(devnet: Devnet, stream_id: bytes, envelope: pb.Envelope) -> RiverError:
    with pytest.raises(RiverError) as caught:
        devnet.add(stream_id, envelope)
    return caught.value


def test_a_member_posts_and_a_duplicate_is_a_silent_success(devnet: Devnet) -> None:
    alice = devnet.member()
    envelope = devnet.message(alice, "hello")
    reply = devnet.add(devnet.channel_id, envelope)
    assert [bytes(e.hash) for e in reply.new_events] == [bytes(envelope.hash)]
    assert list(devnet.add(devnet.channel_id, envelope).new_events) == []


def test_wrong_hash_is_bad_event_hash_in_the_node_format(devnet: Devnet) -> None:
    alice = devnet.member(join_channel=False)
    envelope = devnet.message(alice, "tampered")
    envelope.hash = bytes(32)
    request = pb.AddEventRequest(stream_id=devnet.channel_id, event=envelope)
    reply = requests.post(
        f"{devnet.node.url}/river.StreamService/AddEvent",
        data=request.SerializeToString(),
        headers={"content-type": "application/proto", "connect-protocol-version": "1"},
        timeout=10,
    )
    assert reply.status_code == 400
    assert reply.headers["x-river-error"] == "BAD_EVENT_HASH"
    body = reply.json()
    assert body["code"] == "failed_precondition"
    assert body["message"].startswith("AddEvent: (35:BAD_EVENT_HASH) ")
    assert "\n    expected = 0x" in body["message"]


def test_wrong_signature_is_bad_event_signature(devnet: Devnet) -> None:
    alice = devnet.member()
    mallory = DelegateSigner(os.urandom(32))
    envelope = devnet.message(alice, "forged")
    envelope.signature = mallory.sign_hash(envelope.hash)
    assert river_error(devnet, devnet.channel_id, envelope).code == Err.BAD_EVENT_SIGNATURE

    wallet_signed = make_envelope(
        WalletSigner(os.urandom(32)),
        pb.ChannelPayload(message=pb.EncryptedData(ciphertext="x")),
        devnet.ref(devnet.channel_id),
    )
    event = pb.StreamEvent.FromString(wallet_signed.event)
    event.creator_address = alice.creator_address  # claims to be alice, signed by another key
    forged = pb.Envelope(event=event.SerializeToString())
    from river_client.events import river_hash

    forged.hash = river_hash(forged.event)
    forged.signature = mallory.sign_hash(forged.hash)
    assert river_error(devnet, devnet.channel_id, forged).code == Err.BAD_EVENT_SIGNATURE


def test_expired_delegate_is_permission_denied(devnet: Devnet) -> None:
    wallet_key = os.urandom(32)
    devnet.member(wallet_key)
    expired = DelegateSigner(wallet_key, expiry_epoch_ms=int(time.time() * 1000) - 1000)
    error = river_error(devnet, devnet.channel_id, devnet.message(expired, "late"))
    assert error.code == Err.PERMISSION_DENIED
    assert "event delegate has expired" in error.message


def test_stale_and_future_prev_miniblock(devnet: Devnet) -> None:
    alice = devnet.member()
    old = devnet.ref(devnet.channel_id)
    devnet.add(devnet.channel_id, devnet.message(alice, "one", ref=old))
    devnet.seal(devnet.channel_id)
    time.sleep(2.2)  # the block after `old` is now older than the 2 s recency window
    devnet.add(devnet.channel_id, devnet.message(alice, "two"))
    devnet.seal(devnet.channel_id)
    last = devnet.ref(devnet.channel_id)

    error = river_error(devnet, devnet.channel_id, devnet.message(alice, "stale", ref=old))
    assert error.code == Err.BAD_PREV_MINIBLOCK_HASH
    assert "referenced block is not recent" in error.message
    assert error.tags["expected"] == "0x" + last.hash.hex()
    assert error.tags["expNum"] == str(last.num)

    future = MiniblockRef(last.hash, last.num + 5)
    error = river_error(devnet, devnet.channel_id, devnet.message(alice, "early", ref=future))
    assert error.code == Err.MINIBLOCK_TOO_NEW

    no_prev = make_envelope(alice, pb.ChannelPayload(message=pb.EncryptedData(ciphertext="x")))
    assert river_error(devnet, devnet.channel_id, no_prev).code == Err.INVALID_ARGUMENT


def test_oversized_event_and_unknown_stream(devnet: Devnet) -> None:
    alice = devnet.member()
    big = devnet.message(alice, "x" * 5000)
    error = river_error(devnet, devnet.channel_id, big)
    assert error.code == Err.RESOURCE_EXHAUSTED
    assert error.tags["limit"] == "4096"

    unknown = ids.make_channel_stream_id(devnet.space_id)
    error = river_error(devnet, unknown, devnet.message(alice, "where"))
    assert error.code == Err.NOT_FOUND


def test_posting_needs_channel_membership(devnet: Devnet) -> None:
    outsider = devnet.member(join_channel=False)
    error = river_error(devnet, devnet.channel_id, devnet.message(outsider, "let me in"))
    assert error.code == Err.PERMISSION_DENIED
    assert "not a member" in error.message


def test_payload_types_and_membership_transitions(devnet: Devnet) -> None:
    erin = devnet.member()
    user_stream = ids.user_stream_id(erin.creator_address)

    def membership(op: int, stream_id: bytes = user_stream) -> pb.Envelope:
        payload = pb.UserPayload(
            user_membership=pb.UserPayload.UserMembership(stream_id=devnet.channel_id, op=op)  # type: ignore[arg-type]
        )
        return make_envelope(erin, payload, devnet.ref(stream_id))

    wrong_stream = membership(pb.MembershipOp.SO_LEAVE, devnet.channel_id)
    assert river_error(devnet, devnet.channel_id, wrong_stream).code == Err.INVALID_ARGUMENT

    again = devnet.add(user_stream, membership(pb.MembershipOp.SO_JOIN))
    assert list(again.new_events) == []  # join -> join is a silent no-op

    left = devnet.add(user_stream, membership(pb.MembershipOp.SO_LEAVE))
    assert {bytes(e.stream_id) for e in left.new_events} == {user_stream, devnet.channel_id}
    error = river_error(devnet, devnet.channel_id, devnet.message(erin, "still here?"))
    assert error.code == Err.PERMISSION_DENIED

    direct = make_envelope(
        erin,
        pb.MemberPayload(
            membership=pb.MemberPayload.Membership(
                op=pb.MembershipOp.SO_JOIN,
                user_address=erin.creator_address,
                initiator_address=erin.creator_address,
            )
        ),
        devnet.ref(devnet.channel_id),
    )
    assert river_error(devnet, devnet.channel_id, direct).code == Err.PERMISSION_DENIED


def test_membership_is_checked_on_the_chain(devnet: Devnet) -> None:
    bob = DelegateSigner(os.urandom(32))
    with pytest.raises(RiverError) as caught:
        devnet.create_user(bob)
    assert caught.value.code == Err.PERMISSION_DENIED
    assert caught.value.tags["reason"] == "MEMBERSHIP"

    devnet.space.mint(bob.user_id, devnet.root_key)
    deadline = time.monotonic() + 5
    while True:  # refused for at most the 2 s negative cache
        try:
            reply = devnet.create_user(bob)
            break
        except RiverError as exc:
            assert exc.code == Err.PERMISSION_DENIED
            assert time.monotonic() < deadline, "still refused 5 s after the mint"
            time.sleep(0.2)
    assert len(reply.stream.miniblocks) == 1


def test_an_expired_membership_cannot_join_the_space(devnet: Devnet) -> None:
    dave = DelegateSigner(os.urandom(32))
    minted = devnet.space.mint(dave.user_id, devnet.root_key)
    devnet.create_user(dave)
    past = int(time.time()) - 60
    owner_call(
        devnet.chain.rpc_url,
        DEPLOYER_KEY,
        devnet.chain.space_address,
        "setExpiresAt(uint256,uint64)",
        minted.token_id,
        past,
    )
    time.sleep(1.1)  # the positive cache (1 s in this node) forgets dave's membership
    user_stream = ids.user_stream_id(dave.creator_address)
    join = pb.UserPayload(
        user_membership=pb.UserPayload.UserMembership(
            stream_id=devnet.space_id, op=pb.MembershipOp.SO_JOIN
        )
    )
    error = river_error(devnet, user_stream, make_envelope(dave, join, devnet.ref(user_stream)))
    assert error.code == Err.PERMISSION_DENIED
    assert error.tags["reason"] == "MEMBERSHIP_EXPIRED"


def test_user_stream_creation_parameters(devnet: Devnet) -> None:
    wallet_key = os.urandom(32)
    henry = devnet.member(wallet_key, join_channel=False)
    settings_id = ids.user_settings_stream_id(henry.creator_address)
    inception = pb.UserSettingsPayload(
        inception=pb.UserSettingsPayload.Inception(stream_id=settings_id)
    )

    def create(envelope: pb.Envelope, **metadata: bytes) -> None:
        request = pb.CreateStreamRequest(
            stream_id=settings_id, events=[envelope], metadata=metadata
        )
        devnet.call("CreateStream", request, pb.CreateStreamResponse)

    with pytest.raises(RiverError) as caught:
        create(make_envelope(henry, inception))  # no spaceId
    assert caught.value.code == Err.PERMISSION_DENIED
    with pytest.raises(RiverError) as caught:
        create(
            make_envelope(henry, inception, devnet.ref(devnet.channel_id)), spaceId=devnet.space_id
        )
    assert caught.value.code == Err.BAD_STREAM_CREATION_PARAMS
    someone_else = DelegateSigner(os.urandom(32))
    with pytest.raises(RiverError) as caught:
        create(make_envelope(someone_else, inception), spaceId=devnet.space_id)
    assert caught.value.code == Err.BAD_STREAM_CREATION_PARAMS
    create(make_envelope(henry, inception), spaceId=devnet.space_id)


def test_space_join_is_derived_by_the_node(devnet: Devnet) -> None:
    carol = devnet.member()  # joined the channel, which implies the space
    space = devnet.call(
        "GetStream", pb.GetStreamRequest(stream_id=devnet.space_id), pb.GetStreamResponse
    ).stream  # type: ignore[attr-defined]
    joins = []
    for envelope in [*(e for b in space.miniblocks for e in b.events), *space.events]:
        event = pb.StreamEvent.FromString(envelope.event)
        if event.WhichOneof("payload") == "member_payload":
            membership = event.member_payload.membership
            joins.append((bytes(membership.user_address), bytes(event.creator_address)))
    assert (carol.creator_address, bytes.fromhex(devnet.node.node_address[2:])) in joins


def test_snapshots_keep_open_key_solicitations(devnet: Devnet) -> None:
    frank, grace = devnet.member(), devnet.member()
    ask = pb.MemberPayload.KeySolicitation(
        device_key="frank-device", fallback_key="fb", session_ids=["s1", "s2"]
    )
    devnet.add(
        devnet.channel_id,
        make_envelope(frank, pb.MemberPayload(key_solicitation=ask), devnet.ref(devnet.channel_id)),
    )

    def solicitations() -> list[list[str]]:
        force = ["make_miniblock", devnet.channel_id.hex(), "true"]
        devnet.call("Info", pb.InfoRequest(debug=force), pb.InfoResponse)
        stream = devnet.call(
            "GetStream", pb.GetStreamRequest(stream_id=devnet.channel_id), pb.GetStreamResponse
        ).stream  # type: ignore[attr-defined]
        snapshot = pb.Snapshot.FromString(stream.snapshot.event)
        member = next(m for m in snapshot.members.joined if m.user_address == frank.creator_address)
        return [list(s.session_ids) for s in member.solicitations]

    assert solicitations() == [["s1", "s2"]]
    answer = pb.MemberPayload.KeyFulfillment(
        user_address=frank.creator_address, device_key="frank-device", session_ids=["s1"]
    )
    devnet.add(
        devnet.channel_id,
        make_envelope(
            grace, pb.MemberPayload(key_fulfillment=answer), devnet.ref(devnet.channel_id)
        ),
    )
    assert solicitations() == [["s2"]]


def test_json_codec(devnet: Devnet) -> None:
    transport = ConnectTransport(devnet.node.url, codec="json")
    try:
        info = transport.call("Info", pb.InfoRequest(), pb.InfoResponse)
        assert info.graffiti
        stream = transport.call(
            "GetStream", pb.GetStreamRequest(stream_id=devnet.channel_id), pb.GetStreamResponse
        ).stream
        assert stream.next_sync_cookie.stream_id == devnet.channel_id
    finally:
        transport.close()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_http2_prior_knowledge(devnet: Devnet, tmp_path: Path) -> None:
    body = tmp_path / "request.bin"
    body.write_bytes(pb.GetStreamRequest(stream_id=devnet.channel_id).SerializeToString())
    out = tmp_path / "reply.bin"
    result = subprocess.run(
        [
            "curl", "-s", "--http2-prior-knowledge", "-o", str(out), "-w", "%{http_version}",
            "-H", "content-type: application/proto", "--data-binary", f"@{body}",
            f"{devnet.node.url}/river.StreamService/GetStream",
        ],
        capture_output=True, text=True, timeout=20, check=True,
    )  # fmt: skip
    assert result.stdout == "2"
    reply = pb.GetStreamResponse.FromString(out.read_bytes())
    assert reply.stream.next_sync_cookie.stream_id == devnet.channel_id
