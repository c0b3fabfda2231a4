"""The SDK peer wrapper itself: errors come back as SdkPeerError naming what is valid, replies
find their requests when many run at once, and stopping leaves no process behind."""

from __future__ import annotations

import os
from concurrent.futures import Future

import psutil
import pytest
from sdk_peer import JsonObject, SdkPeer, SdkPeerError, SdkPeerUnavailableError, b64, wait

from river_client.events import make_envelope, river_hash
from river_client.proto import protocol_pb2 as pb
from river_client.signing import WalletSigner

pytest_plugins = ("sdk_peer",)


def test_unknown_command_names_the_known_ones(sdk_peer: SdkPeer) -> None:
    with pytest.raises(SdkPeerError) as refused:
        sdk_peer.request("verify-everything")

    assert "verify-envelope" in str(refused.value)
    assert refused.value.error["kind"] == "peer"


def test_bad_field_names_the_field(sdk_peer: SdkPeer) -> None:
    with pytest.raises(SdkPeerError) as refused:
        sdk_peer.request("verify-envelope", envelope=17)

    assert '"envelope"' in str(refused.value)


def test_concurrent_requests_get_their_own_replies(sdk_peer: SdkPeer) -> None:
    payloads = [os.urandom(n) for n in range(1, 41)]

    futures: list[Future[JsonObject]] = [
        sdk_peer.submit("river-hash", data=b64(data)) for data in payloads
    ]

    hashes = [wait(future, 30)["hash"] for future in futures]
    assert hashes == [river_hash(data).hex() for data in payloads]


def test_a_peer_that_does_not_start_in_time_is_killed_with_its_children() -> None:
    peer = SdkPeer(startup_timeout=1.0)

    with pytest.raises(SdkPeerUnavailableError, match="did not start"):
        peer.start()

    assert peer.pid is not None
    assert _group_members(peer.pid) == []


def _group_members(group: int) -> list[int]:
    """Live processes of a process group (zombies awaiting their parent are not alive)."""
    members = []
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == group and process.status() != psutil.STATUS_ZOMBIE:
                members.append(process.pid)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return members


def test_envelope_bytes_as_hex(sdk_peer: SdkPeer) -> None:
    envelope = make_envelope(
        WalletSigner(os.urandom(32)),
        pb.UserPayload(inception=pb.UserPayload.Inception(stream_id=b"\xa8" + bytes(31))),
    )

    parsed = sdk_peer.request("verify-envelope", envelopeHex=envelope.SerializeToString().hex())

    assert parsed["eventId"] == envelope.hash.hex()
