"""RiverClient: one River user on one node, as a chat client uses it.

Usage::

    client = RiverClient(wallet_private_key, "http://127.0.0.1:5157", on_message=print)
    client.start(space_id)      # user streams (spaceId metadata), device key, sync
    client.join_space(space_id); client.join_channel(channel_id)
    event_id = client.post(channel_id, "hello")
    client.reply(channel_id, event_id, "in the thread")
    client.react(channel_id, event_id, "👍")
    client.stop()

Joins and leaves are UserMembership events on the user's own stream; the node derives the
membership event in the target stream. Every RPC is reported to `on_call(kind, name,
elapsed_ms, error)` with kind "river"; every channel message event, once, as it arrives (before
decryption) to `on_arrival(channel_id, ChannelEvent)`; every decrypted channel message, once,
to `on_message(ReceivedMessage)`. Runs under gevent (calls yield; the sync runs in a greenlet);
never uses asyncio. Encryption is in `keys.KeyExchange` (the one place it plugs in).

Memory is bounded per client, for a thousand clients per process: the last `messages_kept`
decrypted messages per channel (and as many message events for tags), at most `pending_limit`
messages waiting for keys, member counts instead of member lists, and nothing that keeps a
parsed reply alive (see `messages`).
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Callable, Sequence

import gevent
from google.protobuf.message import Message

from river_client import ids
from river_client.encryption.device import Device
from river_client.errors import RiverClientError
from river_client.events import ParsedEvent, make_envelope, parse_envelope
from river_client.keys import PENDING_LIMIT, YIELD_EVERY, KeyExchange
from river_client.messages import (
    MESSAGES_KEPT,
    ChannelEvent,
    MessageLog,
    ReceivedMessage,
    make_edit,
    make_post,
    make_reaction,
    make_redaction,
    received_message,
)
from river_client.proto import payloads_pb2 as pl
from river_client.proto import protocol_pb2 as pb
from river_client.rpc import CallHook, StreamRpc
from river_client.signing import DelegateSigner
from river_client.solicitations import MAX_QUEUED, AnswerClaims
from river_client.streams import (
    StreamState,
    joined_members,
    load_state,
    snapshot_of,
    user_stream_inceptions,
)
from river_client.sync import SyncSession
from river_client.tags import ChannelView
from river_client.transport import ConnectTransport

logger = logging.getLogger(__name__)

MessageHook = Callable[[ReceivedMessage], None]
ArrivalHook = Callable[[bytes, ChannelEvent], None]


class RiverClient(StreamRpc):
    """A River user: its signer, device, followed streams and sync session.

    `node` is a URL, a list of URLs (one is picked at random, as the SDK does) or a shared
    ConnectTransport; `insecure_tls` accepts self-signed certificates (local River nodes).
    `device` defaults to a new Olm device; `delegate_expiry_ms` to one day. `messages_kept`:
    decrypted messages kept per channel for `messages()` (older ones are still handed to
    `on_message` once); `pending_limit`: messages kept waiting for their keys. `key_wait`: before
    creating a new group session for a channel whose messages wait for keys, wait up to that
    many seconds for one of its sessions to arrive (0, the SDK's way: create at once).
    `answers_queued`: other devices' key solicitations queued for an answer at most (with
    hundreds of members holding a key, a few answering each is plenty); `answer_claims`, shared
    by the clients of a process, lets one of them answer each solicitation.
    """

    def __init__(
        self,
        private_key: bytes,
        node: str | Sequence[str] | ConnectTransport,
        *,
        on_call: CallHook | None = None,
        on_message: MessageHook | None = None,
        on_arrival: ArrivalHook | None = None,
        device: Device | None = None,
        delegate_expiry_ms: int | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30.0,
        codec: str = "proto",
        insecure_tls: bool = False,
        solicit_delay: float = 3.0,
        respond_delay_scale: float = 1.0,
        messages_kept: int = MESSAGES_KEPT,
        pending_limit: int = PENDING_LIMIT,
        key_wait: float = 0.0,
        answers_queued: int = MAX_QUEUED,
        answer_claims: AnswerClaims | None = None,
    ) -> None:
        self._owns_transport = not isinstance(node, ConnectTransport)
        if isinstance(node, ConnectTransport):
            transport = node
        else:
            url = node if isinstance(node, str) else random.choice(list(node))
            transport = ConnectTransport(
                url, timeout=timeout, codec=codec, headers=headers, insecure=insecure_tls
            )
        signer = DelegateSigner(private_key, delegate_expiry_ms)
        super().__init__(transport, signer, on_call)
        self.address = signer.creator_address
        self.user_id = signer.user_id
        self.on_message = on_message
        self.on_arrival = on_arrival
        self.keys = KeyExchange(
            self,
            self.address,
            self._on_decrypted,
            device=device,
            solicit_delay=solicit_delay,
            respond_delay_scale=respond_delay_scale,
            pending_limit=pending_limit,
            answers_queued=answers_queued,
            answer_claims=answer_claims,
        )
        self.sync = SyncSession(
            self.transport, self._on_sync_update, call=self.call, on_error=self._on_sync_error
        )
        self._streams: dict[bytes, StreamState] = {}
        self._log = MessageLog(messages_kept)
        self.key_wait = key_wait
        self._views: dict[bytes, ChannelView] = {}

    def __repr__(self) -> str:
        return f"RiverClient({self.user_id}, {self.transport.base_url})"

    # -- user bootstrap ------------------------------------------------------------------------

    def _create_stream(
        self, stream_id: bytes, inception: Message, space_id: bytes
    ) -> pb.StreamAndCookie:
        envelope = make_envelope(self.signer, inception)
        request = pb.CreateStreamRequest(
            events=[envelope], stream_id=stream_id, metadata={"spaceId": space_id}
        )
        response = self.call("CreateStream", request, pb.CreateStreamResponse)
        if response.stream.next_sync_cookie.stream_id:
            self.miniblocks.update_from_stream(stream_id, response.stream)
            return response.stream
        existing = self.get_stream(stream_id)
        if existing is None:
            raise RiverClientError(f"stream {stream_id.hex()} neither created nor found")
        return existing

    def start(self, space_id: str | bytes) -> None:
        """Create (or load) the four user streams, publish the device key, start the sync.

        `space_id` goes in the creation metadata: the node checks the wallet's membership of
        that space on chain (PERMISSION_DENIED with reason MEMBERSHIP when it has none).
        """
        space = ids.stream_id_bytes(space_id)
        inceptions = user_stream_inceptions(self.address)
        existing = self.get_stream(inceptions[0][0])
        for stream_id, inception in inceptions:
            stream = existing if stream_id == inceptions[0][0] else None
            if existing is not None and stream is None:
                stream = self.get_stream(stream_id)
            if stream is None:
                stream = self._create_stream(stream_id, inception, space)
            self._streams[stream_id] = load_state(stream)
        metadata = ids.user_metadata_stream_id(self.address)
        self.add_event(metadata, self.keys.device_payload())
        followed = [ids.user_stream_id(self.address), ids.user_inbox_stream_id(self.address)]
        self.sync.start(self._cookie(s) for s in followed)
        logger.debug("user %s started", self.user_id)

    bootstrap = start

    def _cookie(self, stream_id: bytes) -> pb.SyncCookie:
        ref = self.miniblocks.get(stream_id)
        if ref is None:
            ref = self.last_miniblock(stream_id)
        return pb.SyncCookie(
            stream_id=stream_id, minipool_gen=ref.num + 1, prev_miniblock_hash=ref.hash
        )

    # -- membership ----------------------------------------------------------------------------

    def _set_membership(self, stream_id: bytes, op: int) -> None:
        membership = pb.UserPayload.UserMembership(stream_id=stream_id, op=op)  # type: ignore[arg-type]
        self.add_event(ids.user_stream_id(self.address), pb.UserPayload(user_membership=membership))

    def join_space(self, space_id: str | bytes, follow: bool = False) -> None:
        """Join a space (the node checks the on-chain membership); `follow` syncs its stream."""
        space = ids.stream_id_bytes(space_id)
        self._set_membership(space, pb.SO_JOIN)
        if follow:
            self.follow(space)

    def join_channel(self, channel_id: str | bytes, history_miniblocks: int = 0) -> None:
        """Join a channel and follow it (its messages arrive through sync and on_message).

        The node sends the channel from its last snapshot on; `history_miniblocks` asks for
        that many miniblocks before it too, so that older messages (e.g. one posted before a
        busy channel's latest snapshot) are decrypted and handed out as well.
        """
        channel = ids.stream_id_bytes(channel_id)
        self._set_membership(channel, pb.SO_JOIN)
        self.follow(channel, reload=True, history_miniblocks=history_miniblocks)

    def leave(self, stream_id: str | bytes) -> None:
        """Leave a space or channel and stop following it."""
        stream = ids.stream_id_bytes(stream_id)
        self._set_membership(stream, pb.SO_LEAVE)
        self._streams.pop(stream, None)
        self.sync.remove(stream)

    def follow(
        self, stream_id: bytes, reload: bool = False, history_miniblocks: int = 0
    ) -> StreamState:
        """Load a stream (members, recent messages) and add it to the sync."""
        state = self._streams.get(stream_id)
        if state is not None and not reload:
            return state
        stream = self.get_stream(stream_id, history_miniblocks)
        if stream is None:
            raise RiverClientError(f"stream {stream_id.hex()} does not exist")
        state = StreamState(stream_id)
        self._streams[stream_id] = state
        self._process(state, stream)
        self.sync.add(stream.next_sync_cookie)
        return state

    def members(self, stream_id: str | bytes) -> set[str]:
        """User ids of a stream's joined members, as the node knows them now (GetStream)."""
        stream = self.get_stream(ids.stream_id_bytes(stream_id))
        return {ids.user_id(m) for m in joined_members(stream)} if stream is not None else set()

    # -- messages ------------------------------------------------------------------------------

    def view(self, channel_id: str | bytes) -> ChannelView:
        """The channel's message events seen so far, from which the tags of a new one come."""
        channel = ids.stream_id_bytes(channel_id)
        view = self._views.get(channel)
        if view is None:
            view = self._views[channel] = ChannelView(self._log.limit)
        return view

    def send_message(self, channel_id: str | bytes, message: pl.ChannelMessage) -> str:
        """Encrypt a ChannelMessage, tag it as the SDK does, add it; returns the event id (hex)."""
        channel = ids.stream_id_bytes(channel_id)
        self.follow(channel)
        members: set[bytes] = set()
        if not self.keys.await_session(channel, self.key_wait):
            # a new session goes to the members the node knows now
            fresh = self.get_stream(channel)
            members = joined_members(fresh) if fresh is not None else set()
        encrypted = self.keys.encrypt(channel, members, message)
        view = self.view(channel)
        tags = view.tags(message, self.address)
        event_id = self.add_event(channel, pb.ChannelPayload(message=encrypted), tags)
        view.saw_message(event_id, self.address, message)
        return event_id

    def post(
        self,
        channel_id: str | bytes,
        text: str,
        thread_id: str | None = None,
        reply_id: str | None = None,
    ) -> str:
        """Post a text message (in a thread with `thread_id`); returns its event id."""
        return self.send_message(channel_id, make_post(text, thread_id, reply_id))

    def reply(self, channel_id: str | bytes, thread_id: str, text: str) -> str:
        """Reply in the thread of the message `thread_id`."""
        return self.post(channel_id, text, thread_id=thread_id)

    def react(self, channel_id: str | bytes, ref_event_id: str, reaction: str) -> str:
        """React to a message with an emoji."""
        return self.send_message(channel_id, make_reaction(ref_event_id, reaction))

    def edit(self, channel_id: str | bytes, ref_event_id: str, text: str) -> str:
        """Replace the text of an earlier post."""
        return self.send_message(channel_id, make_edit(ref_event_id, text))

    def redact(self, channel_id: str | bytes, ref_event_id: str) -> str:
        """Redact (delete) an earlier message."""
        return self.send_message(channel_id, make_redaction(ref_event_id))

    def messages(self, channel_id: str | bytes) -> list[ReceivedMessage]:
        """The decrypted messages of a channel seen so far, oldest first."""
        return self._log.messages(ids.stream_id_bytes(channel_id))

    def timeline(
        self, channel_id: str | bytes, history_miniblocks: int = 0
    ) -> list[ReceivedMessage]:
        """Load a channel (plus `history_miniblocks` older blocks) and return its messages."""
        channel = ids.stream_id_bytes(channel_id)
        state = self.follow(channel)
        stream = self.get_stream(channel)
        if stream is not None:
            if history_miniblocks > 0 and stream.miniblocks:
                header = parse_envelope(stream.miniblocks[0].header).event.miniblock_header
                start = header.miniblock_num
                request = pb.GetMiniblocksRequest(
                    stream_id=channel,
                    from_inclusive=max(0, start - history_miniblocks),
                    to_exclusive=start,
                )
                older = self.call("GetMiniblocks", request, pb.GetMiniblocksResponse)
                self._process(
                    state, pb.StreamAndCookie(miniblocks=older.miniblocks), snapshot=False
                )
            self._process(state, stream)
        return self.messages(channel)

    def wait_for_message(
        self, predicate: Callable[[ReceivedMessage], bool], timeout: float
    ) -> ReceivedMessage | None:
        """A kept decrypted message that matches, else block (the greenlet) until one arrives;
        None after `timeout`."""
        return self._log.wait(predicate, timeout)

    # -- incoming events -----------------------------------------------------------------------

    def _process(
        self, state: StreamState, stream: pb.StreamAndCookie, snapshot: bool = True
    ) -> None:
        # Blocks older than the snapshot (or older history) are counted in it already.
        counted = 0 if snapshot else len(stream.miniblocks)
        if snapshot and (stream.sync_reset or stream.HasField("snapshot")):
            found = snapshot_of(stream)
            if found is not None:
                state.apply_snapshot(found)
                counted = stream.snapshot_miniblock_index
        sealed = (
            (envelope, index >= counted)
            for index, miniblock in enumerate(stream.miniblocks)
            for envelope in miniblock.events
        )
        minipool = ((envelope, True) for envelope in stream.events)
        for taken, (envelope, apply) in enumerate(itertools.chain(sealed, minipool), 1):
            self._take(state, parse_envelope(envelope), apply)
            if taken % YIELD_EVERY == 0:
                gevent.sleep(0)  # a busy channel's history: let heartbeats run between

    def _take(self, state: StreamState, parsed: ParsedEvent, apply: bool) -> None:
        if state.mark_seen(parsed.hash):
            if apply:
                state.apply_event(parsed)
            self._dispatch(state, parsed)

    def _dispatch(self, state: StreamState, parsed: ParsedEvent) -> None:
        case = parsed.payload_case
        if case == "channel_payload":
            payload = parsed.event.channel_payload
            if payload.WhichOneof("content") == "message":
                event = ChannelEvent.of(parsed.hash, parsed.event)
                self.view(state.stream_id).saw_event(event.event_id, event.sender)
                if self.on_arrival is not None:
                    self.on_arrival(state.stream_id, event)
                self.keys.handle_channel_message(state.stream_id, event, payload.message)
        elif case == "user_inbox_payload":
            if state.stream_id == ids.user_inbox_stream_id(self.address):
                self.keys.handle_inbox_event(parsed)
        elif case == "member_payload":
            self.keys.handle_member_event(state.stream_id, parsed, state.member_count)

    def _on_sync_update(self, stream: pb.StreamAndCookie) -> None:
        stream_id = bytes(stream.next_sync_cookie.stream_id)
        self.miniblocks.update_from_stream(stream_id, stream)
        state = self._streams.get(stream_id)
        if state is not None:
            self._process(state, stream)

    def _on_sync_error(self, error: Exception) -> None:
        if self.on_call is not None:
            self.on_call("river", "SyncStreams", 0.0, error)

    def _on_decrypted(
        self, channel: bytes, event: ChannelEvent, message: pl.ChannelMessage
    ) -> None:
        self.view(channel).saw_message(event.event_id, event.sender, message)
        received = received_message(channel, event, message)
        if received is None or not self._log.add(channel, received):
            return
        if self.on_message is not None:
            try:
                self.on_message(received)
            except Exception:
                logger.exception("on_message hook failed")

    def stop(self) -> None:
        """Cancel the sync session and background key work; close the transport unless it was
        given (shared)."""
        self.keys.stop()
        self.sync.stop()
        if self._owns_transport:
            self.transport.close()
