"""Decrypted channel messages as the client hands them out.

A channel event's EncryptedData decrypts to a ChannelMessage: a post (optionally in a thread
or replying to a message), a reaction, an edit or a redaction of an earlier event.
"""

from __future__ import annotations

from dataclasses import dataclass

from river_client.events import ParsedEvent
from river_client.ids import user_id
from river_client.proto import payloads_pb2 as pl

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
    channel_id: bytes, parsed: ParsedEvent, message: pl.ChannelMessage
) -> ReceivedMessage | None:
    """The ReceivedMessage of a decrypted ChannelMessage (None for kinds we do not handle)."""
    kind = message.WhichOneof("payload")
    text, thread_id, reply_id, ref_event_id = "", None, None, None
    if kind == "post":
        post = message.post
        text = post.text.body if post.WhichOneof("content") == "text" else ""
        thread_id = post.thread_id if post.HasField("thread_id") else None
        reply_id = post.reply_id if post.HasField("reply_id") else None
    elif kind == "reaction":
        text, ref_event_id = message.reaction.reaction, message.reaction.ref_event_id
    elif kind == "edit":
        text, ref_event_id = message.edit.post.text.body, message.edit.ref_event_id
    elif kind == "redaction":
        ref_event_id = message.redaction.ref_event_id
    else:
        return None
    return ReceivedMessage(
        channel_id=channel_id.hex(),
        event_id=parsed.event_id,
        sender=user_id(bytes(parsed.event.creator_address)),
        created_at_ms=parsed.event.created_at_epoch_ms,
        kind=kind,
        text=text,
        thread_id=thread_id,
        reply_id=reply_id,
        ref_event_id=ref_event_id,
    )
