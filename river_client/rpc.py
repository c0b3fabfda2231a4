"""StreamRpc: the StreamService calls a client makes, timed and reported, on one signer.

Every unary call goes through `call`, which reports ``on_call("river", method, elapsed_ms,
error)``; events are added through `add_event_on`, which builds them on the stream's latest
known miniblock and follows the node's corrections (see `miniblocks`). Spaces and channels
are created (inception plus the creator's join) with `create_space` / `create_channel`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from google.protobuf.message import Message

from river_client import ids
from river_client.errors import RiverClientError
from river_client.events import MiniblockRef, make_envelope
from river_client.miniblocks import MiniblockTracker, add_event
from river_client.proto import protocol_pb2 as pb
from river_client.signing import EventSigner
from river_client.transport import ConnectTransport

M = TypeVar("M", bound=Message)
CallHook = Callable[[str, str, float, Exception | None], None]


class StreamRpc:
    """Timed StreamService calls and event submission for one signer."""

    def __init__(
        self, transport: ConnectTransport, signer: EventSigner, on_call: CallHook | None = None
    ) -> None:
        self.transport = transport
        self.signer = signer
        self.on_call = on_call
        self.miniblocks = MiniblockTracker()

    def call(self, method: str, request: Message, response_type: type[M]) -> M:
        """A unary StreamService call, reported to on_call."""
        started = time.perf_counter()
        error: Exception | None = None
        try:
            return self.transport.call(method, request, response_type)
        except RiverClientError as exc:
            error = exc
            raise
        finally:
            if self.on_call is not None:
                self.on_call("river", method, (time.perf_counter() - started) * 1000.0, error)

    def get_stream(
        self, stream_id: bytes, preceding_miniblocks: int = 0
    ) -> pb.StreamAndCookie | None:
        """GetStream (optional): the stream from its last snapshot on (and that many
        miniblocks before it), or None if missing."""
        request = pb.GetStreamRequest(
            stream_id=stream_id,
            optional=True,
            number_of_preceding_miniblocks=preceding_miniblocks,
        )
        response = self.call("GetStream", request, pb.GetStreamResponse)
        if not response.HasField("stream") or not response.stream.next_sync_cookie.stream_id:
            return None
        self.miniblocks.update_from_stream(stream_id, response.stream)
        return response.stream

    def last_miniblock(self, stream_id: bytes) -> MiniblockRef:
        """The stream's last miniblock as the node reports it (GetLastMiniblockHash)."""
        request = pb.GetLastMiniblockHashRequest(stream_id=stream_id)
        response = self.call("GetLastMiniblockHash", request, pb.GetLastMiniblockHashResponse)
        ref = MiniblockRef(bytes(response.hash), response.miniblock_num)
        self.miniblocks.set(stream_id, ref)
        return ref

    def add_event_on(
        self,
        stream_id: bytes,
        payload: Any,
        ref: MiniblockRef | None,
        tags: pb.Tags | None = None,
    ) -> str:
        """AddEvent `payload` to a stream on `ref` (None: the tracked or last miniblock).

        Retries on BAD_PREV_MINIBLOCK_HASH / MINIBLOCK_TOO_NEW; returns the event id (hex).
        """
        if ref is None:
            ref = self.miniblocks.get(stream_id) or self.last_miniblock(stream_id)

        def build(on: MiniblockRef) -> pb.Envelope:
            return make_envelope(self.signer, payload, on, tags=tags)

        def send(envelope: pb.Envelope) -> pb.AddEventResponse:
            request = pb.AddEventRequest(stream_id=stream_id, event=envelope)
            return self.call("AddEvent", request, pb.AddEventResponse)

        def learn(named: MiniblockRef) -> None:
            self.miniblocks.set(stream_id, named, force=True)

        envelope, _ = add_event(send, build, ref, on_ref=learn)
        return bytes(envelope.hash).hex()

    def known_miniblock(self, stream_id: bytes) -> MiniblockRef | None:
        """The latest miniblock seen for a stream (from cookies, headers and node errors)."""
        return self.miniblocks.get(stream_id)

    def add_event(self, stream_id: bytes, payload: Any, tags: pb.Tags | None = None) -> str:
        """AddEvent on the latest miniblock known for the stream."""
        return self.add_event_on(stream_id, payload, None, tags)

    def _create_with_join(self, stream_id: bytes, inception: Message) -> None:
        membership = pb.MemberPayload.Membership(
            op=pb.SO_JOIN,
            user_address=self.signer.creator_address,
            initiator_address=self.signer.creator_address,
        )
        events = [
            make_envelope(self.signer, inception),
            make_envelope(self.signer, pb.MemberPayload(membership=membership)),
        ]
        request = pb.CreateStreamRequest(events=events, stream_id=stream_id)
        response = self.call("CreateStream", request, pb.CreateStreamResponse)
        self.miniblocks.update_from_stream(stream_id, response.stream)

    def create_space(self, space_id: str | bytes) -> None:
        """Create a space stream (the space contract must exist; the creator joins it)."""
        space = ids.stream_id_bytes(space_id)
        inception = pb.SpacePayload.Inception(stream_id=space)
        self._create_with_join(space, pb.SpacePayload(inception=inception))

    def create_channel(self, space_id: str | bytes, channel_id: str | bytes | None = None) -> str:
        """Create a channel in a space (a new random id by default); returns its id (hex)."""
        space = ids.stream_id_bytes(space_id)
        channel = (
            ids.make_channel_stream_id(space)
            if channel_id is None
            else ids.stream_id_bytes(channel_id)
        )
        inception = pb.ChannelPayload.Inception(stream_id=channel, space_id=space)
        self._create_with_join(channel, pb.ChannelPayload(inception=inception))
        return channel.hex()
