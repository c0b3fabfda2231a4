"""The SDK `Client` on the whole local stack: a chain (anvil and the space membership contract),
the dev node checking memberships on it, and the space and channels our tooling creates.

The SDK sees the node's refusal as River sends it (PERMISSION_DENIED, reason MEMBERSHIP, read
by its own `errorContains` and `getRpcErrorProperty`), gets in once the membership is minted,
joins the space and a channel that our admin tooling created, and chats with our client there.
Facts: research/river-protocol.md §4.1, §4.2 and §8.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sdk_peer import JsonObject, SdkPeer, SdkPeerError

from devnet.chain import DEVNET_MNEMONIC, start_chain
from devnet.stack import NodeProcess, create_space_streams
from river_client.chain.membership import SpaceContract
from river_client.client import RiverClient
from river_client.proto import protocol_pb2 as pb
from river_client.signing import WalletSigner
from wallet_tools.derivation import HDWallets
from wallet_tools.rpc import JsonRpc

pytest_plugins = ("sdk_peer",)


@dataclass(frozen=True)
class Stack:
    node_url: str
    space: SpaceContract
    root_key: bytes
    space_id: bytes
    channel_id: bytes

    def mint(self, wallet_key: bytes) -> None:
        self.space.mint(WalletSigner(wallet_key).user_id, self.root_key)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state = tmp_path_factory.mktemp("sdk-stack")
    chain = start_chain(automine=True, state_dir=state)
    assert chain.anvil is not None
    root = HDWallets(DEVNET_MNEMONIC).wallet(0)
    node = NodeProcess(state / "node.sqlite", rpc_url=chain.rpc_url, admins=(root.address,))
    try:
        node.start()
        space_id = bytes.fromhex(chain.space_id)
        _announce, channels = create_space_streams(node.url, root.private_key, space_id, 1)
        space = SpaceContract(JsonRpc(chain.rpc_url), chain.space_address)
        yield Stack(node.url, space, root.private_key, space_id, channels[0])
    finally:
        node.stop()
        chain.anvil.stop()


def _init_until_admitted(peer: SdkPeer, stack: Stack, wallet_key: bytes) -> JsonObject:
    """initializeUser, retried while the node's 2 s negative membership cache lasts."""
    deadline = time.monotonic() + 8
    while True:
        try:
            return peer.init_user(stack.node_url, wallet_key, stack.space_id.hex())
        except SdkPeerError as refused:
            if refused.river_error != "PERMISSION_DENIED" or time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def test_sdk_client_is_refused_until_its_membership_is_minted(
    sdk_peer: SdkPeer, stack: Stack
) -> None:
    wallet_key = os.urandom(32)

    with pytest.raises(SdkPeerError) as refused:
        sdk_peer.init_user(stack.node_url, wallet_key, stack.space_id.hex())
    stack.mint(wallet_key)
    user = _init_until_admitted(sdk_peer, stack, wallet_key)
    sdk_peer.request("client-stop", handle=user["handle"])

    error = refused.value.error
    assert error["connectCode"] == "permission_denied"
    assert error["riverError"] == "PERMISSION_DENIED"
    assert error["sdkErrCodes"] == [pb.PERMISSION_DENIED]
    assert error["sdkProperties"]["reason"] == "MEMBERSHIP"


def test_sdk_member_chats_with_our_member_in_a_stack_channel(
    sdk_peer: SdkPeer, stack: Stack
) -> None:
    sdk_key, our_key = os.urandom(32), os.urandom(32)
    stack.mint(sdk_key)
    stack.mint(our_key)
    user = _init_until_admitted(sdk_peer, stack, sdk_key)
    ours = RiverClient(our_key, stack.node_url)
    channel = stack.channel_id.hex()
    try:
        sdk_peer.request("client-join", handle=user["handle"], streamId=stack.space_id.hex())
        sdk_peer.request("client-join", handle=user["handle"], streamId=channel)
        ours.start(stack.space_id)
        ours.join_space(stack.space_id)
        ours.join_channel(stack.channel_id)

        posted = ours.post(stack.channel_id, "hello from our client")
        seen = sdk_peer.request(
            "client-messages",
            timeout=30,
            handle=user["handle"],
            streamId=channel,
            text="hello from our client",
            timeoutMs=15_000,
        )
        sent = sdk_peer.request(
            "client-send", handle=user["handle"], streamId=channel, text="hello from the SDK"
        )
        received = ours.wait_for_message(lambda m: m.text == "hello from the SDK", timeout=15)

        assert seen["complete"], f"the SDK decrypted only {seen['messages']}"
        assert {m["eventId"] for m in seen["messages"]} >= {posted}
        assert received is not None and received.event_id == sent["eventId"]
    finally:
        ours.stop()
        sdk_peer.request("client-stop", handle=user["handle"])
