"""Decrypted channel messages as the client hands them out, and the few a client keeps.

A channel event's EncryptedData decrypts to a ChannelMessage: a post (optionally in a thread
or replying to a message), a reaction, an edit or a redaction of an earlier event.

Memory: a Locust worker runs ~1000 clients in one channel, so every message is decrypted ~1000
times in one process. What a client keeps of a message therefore shares its strings with the
other clients (event ids, channel ids, sender ids and texts are interned process-wide) and
holds no protobuf object: a message or sub-message keeps its whole parsed reply (the sync
update's arena) alive. `MessageLog` keeps the last `limit` messages per channel.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from gevent.event import AsyncResult

from river_client.ids import user_id
from river_client.proto import payloads_pb2 as pl
from river_client.proto import protocol_pb2 as pb

MESSAGES_KEPT = 100
_SHARED = 8_192


@lru_cache(maxsize=_SHARED)
def shared_hex(value: bytes) -> str:
    """Hex of an id (event, stream), one string object per id for the whole process."""
    return value.hex()


@lru_cache(maxsize=_SHARED)
def shared_address(address: bytes) -> bytes:
    """One bytes object per 20-byte address for the whole process."""
    return address


@lru_cache(maxsize=_SHARED)
def shared_user_id(address: bytes) -> str:
    """The EIP-55 user id of an address, computed once per process."""
    return user_id(address)


@dataclass(frozen=True, slots=True)
class ChannelEvent:
    """A channel message event as kept until it is decrypted: no protobuf objects.

    `encrypted` is the serialized EncryptedData, filled only while the event waits for its
    session; ids and addresses are process-shared objects.
    """

    event_id: str
    sender: bytes
    created_at_ms: int
    encrypted: bytes = b""

    @classmethod
    def of(cls, event_hash: bytes, event: pb.StreamEvent) -> ChannelEvent:
        return cls(
            shared_hex(bytes(event_hash)),
            shared_address(bytes(event.creator_address)),
            event.created_at_epoch_ms,
        )

    def data(self) -> pb.EncryptedData:
        return pb.EncryptedData.FromString(self.encrypted)


THREAD_PREVIEW = "🙉"
REPLY_PREVIEW = "🙈"


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """One decrypted channel message.

    `kind` is "post", "reaction", "edit" or "redaction"; `text` is the post body (edits: the
    new body; reactions: the emoji); `ref_event_id` names the event a reaction, edit or
    redaction is about; ids are hex event ids.
    """

    channel_id: str
    event_id: str
    sender: str
    created_at_ms: int
    kind: str
    text: str
    thread_id: str | None = None
    reply_id: str | None = None
    ref_event_id: str | None = None

    @property
    def reaction(self) -> str | None:
        return self.text if self.kind == "reaction" else None


def make_post(
    text: str, thread_id: str | None = None, reply_id: str | None = None
) -> pl.ChannelMessage:
    """A text post; in a thread when `thread_id` is given, a reply when `reply_id` is."""
    post = pl.ChannelMessage.Post(text=pl.ChannelMessage.Post.Content.Text(body=text))
    if thread_id:
        post.thread_id = thread_id
        post.thread_preview = THREAD_PREVIEW
    if reply_id:
        post.reply_id = reply_id
        post.reply_preview = REPLY_PREVIEW
    return pl.ChannelMessage(post=post)


def make_reaction(ref_event_id: str, reaction: str) -> pl.ChannelMessage:
    return pl.ChannelMessage(
        reaction=pl.ChannelMessage.Reaction(ref_event_id=ref_event_id, reaction=reaction)
    )


def make_edit(ref_event_id: str, text: str) -> pl.ChannelMessage:
    post = pl.ChannelMessage.Post(text=pl.ChannelMessage.Post.Content.Text(body=text))
    return pl.ChannelMessage(edit=pl.ChannelMessage.Edit(ref_event_id=ref_event_id, post=post))


def make_redaction(ref_event_id: str) -> pl.ChannelMessage:
    return pl.ChannelMessage(redaction=pl.ChannelMessage.Redaction(ref_event_id=ref_event_id))


def received_message(
    channel_id: bytes, event: ChannelEvent, message: pl.ChannelMessage
) -> ReceivedMessage | None:
    """The ReceivedMessage of a decrypted ChannelMessage (None for kinds we do not handle)."""
    kind = message.WhichOneof("payload")
    kind = sys.intern(kind) if kind is not None else None
    text, thread_id, reply_id, ref_event_id = "", None, None, None
    if kind == "post":
        post = message.post
        text = post.text.body if post.WhichOneof("content") == "text" else ""
        thread_id = sys.intern(post.thread_id) if post.HasField("thread_id") else None
        reply_id = sys.intern(post.reply_id) if post.HasField("reply_id") else None
    elif kind == "reaction":
        text, ref_event_id = message.reaction.reaction, message.reaction.ref_event_id
    elif kind == "edit":
        text, ref_event_id = message.edit.post.text.body, message.edit.ref_event_id
    elif kind == "redaction":
        ref_event_id = message.redaction.ref_event_id
    else:
        return None
    return ReceivedMessage(
        channel_id=shared_hex(channel_id),
        event_id=event.event_id,
        sender=shared_user_id(event.sender),
        created_at_ms=event.created_at_ms,
        kind=kind,
        text=sys.intern(text),
        thread_id=thread_id,
        reply_id=reply_id,
        ref_event_id=sys.intern(ref_event_id) if ref_event_id else None,
    )


Predicate = Callable[[ReceivedMessage], bool]


class MessageLog:
    """The last `limit` decrypted messages of every channel, and greenlets waiting for one."""

    def __init__(self, limit: int = MESSAGES_KEPT) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1 message per channel, got {limit}")
        self.limit = limit
        self._kept: dict[bytes, dict[str, ReceivedMessage]] = {}
        self._waiters: list[tuple[Predicate, AsyncResult]] = []

    def add(self, channel: bytes, received: ReceivedMessage) -> bool:
        """Keep a message and wake its waiters; False when it is kept already."""
        kept = self._kept.setdefault(channel, {})
        if received.event_id in kept:
            return False
        kept[received.event_id] = received
        if len(kept) > self.limit:
            del kept[next(iter(kept))]
        for predicate, result in list(self._waiters):
            if not result.ready() and predicate(received):
                result.set(received)
        return True

    def messages(self, channel: bytes) -> list[ReceivedMessage]:
        return list(self._kept.get(channel, {}).values())

    def wait(self, predicate: Predicate, timeout: float) -> ReceivedMessage | None:
        """A kept message matching `predicate`, else the next one to arrive within `timeout`."""
        for kept in self._kept.values():
            for message in kept.values():
                if predicate(message):
                    return message
        result: AsyncResult = AsyncResult()
        waiter = (predicate, result)
        self._waiters.append(waiter)
        try:
            found: ReceivedMessage | None = result.wait(timeout)
            return found
        finally:
            self._waiters.remove(waiter)
