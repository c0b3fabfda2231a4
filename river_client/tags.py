"""The `Tags` of a channel message, set as the Towns SDK sets them, from a client's view.

Every channel message event carries `StreamEvent.tags` (research/river-protocol.md §4.6). Nodes
do not validate them; notification services read them to decide who hears about an event, so a
client should fill them as the official SDK (1.0.3, `makeTags` in its tags.ts) does, from what
the sender has seen of the channel:

- message_interaction_type: REACTION, EDIT, REDACTION by kind; a post is REPLY when it has a
  thread_id or a reply_id, else POST.
- thread_id (bytes of the hex event id): a post's own thread_id; for a reaction, edit or
  redaction, the thread_id of the post it refers to, when that post is known, not redacted and
  in a thread. A root message has none, and neither has the redaction of one's own message.
- participating_user_addresses: for a reaction, the sender of the event it refers to (any kind,
  even one not decrypted); for a post in a thread (or replying to a message), the sender of that
  parent event and then every sender of a known post in the thread, in the order the events were
  first seen, each address once; a thread reply's own sender comes last unless already named.
- mentioned_user_addresses: the user mentions of a text post (neither @channel nor a role
  mention), as 20-byte addresses, in message order; group_mention_types: AT_CHANNEL once when
  the text post mentions @channel. Edits, reactions and redactions mention nobody.

The SDK puts the message being sent into its timeline (as a local event) before it computes
the tags: so a thread reply counts its own sender, and a redaction of one's own message has
already hidden that message when its thread is looked up (a redaction of someone else's message
changes nothing locally, so it keeps the thread).

`ChannelView` mirrors the SDK's stream timeline closely enough for these rules: a message event
enters at first sight (its sender is known before it is decrypted); a decrypted edit leaves it
(the SDK folds an edit into the post it replaces, keeping that post's sender and thread); a
redaction by the post's own sender hides the post from thread lookups, even when the redaction
was seen first. Not supported: admin redactions (`ChannelPayload.redaction`), edits of
something other than a post (the SDK then takes the edit's own thread_id), tip and trade tags,
app_client_address (slash commands).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from river_client.ids import address_bytes
from river_client.proto import payloads_pb2 as pl
from river_client.proto import protocol_pb2 as pb

VIEW_LIMIT = 10_000

_INTERACTION = {
    "reaction": pb.MESSAGE_INTERACTION_TYPE_REACTION,
    "edit": pb.MESSAGE_INTERACTION_TYPE_EDIT,
    "redaction": pb.MESSAGE_INTERACTION_TYPE_REDACTION,
}


@dataclass(slots=True)
class _Seen:
    """One message event in the view: who sent it and, once decrypted, what it is."""

    seq: int
    sender: bytes
    kind: str | None = None
    thread_id: str | None = None
    redacted: bool = False


def _event_id_bytes(event_id: str) -> bytes:
    text = event_id[2:] if event_id[:2].lower() == "0x" else event_id
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"not a hex event id: {event_id!r}; expected 64 hex characters") from None


def interaction_type(message: pl.ChannelMessage) -> pb.MessageInteractionType:
    """The message_interaction_type of a ChannelMessage (UNSPECIFIED for other kinds)."""
    kind = message.WhichOneof("payload")
    if kind == "post":
        post = message.post
        reply = bool(post.thread_id) or bool(post.reply_id)
        return pb.MESSAGE_INTERACTION_TYPE_REPLY if reply else pb.MESSAGE_INTERACTION_TYPE_POST
    return _INTERACTION.get(kind or "", pb.MESSAGE_INTERACTION_TYPE_UNSPECIFIED)


def mentions_of(
    message: pl.ChannelMessage,
) -> tuple[list[pb.GroupMentionType], list[bytes]]:
    """(group_mention_types, mentioned_user_addresses) of a text post; empty for other kinds."""
    if message.WhichOneof("payload") != "post" or message.post.WhichOneof("content") != "text":
        return [], []
    mentions = message.post.text.mentions
    at_channel = any(m.WhichOneof("mentionBehavior") == "at_channel" for m in mentions)
    groups = [pb.GROUP_MENTION_TYPE_AT_CHANNEL] if at_channel else []
    users = [
        address_bytes(m.user_id)
        for m in mentions
        if m.WhichOneof("mentionBehavior") is None and m.user_id
    ]
    return groups, users


class ChannelView:
    """The message events one client has seen in one channel, for computing tags.

    Keeps at most `limit` events (the oldest seen are forgotten first); ids are hex event ids,
    senders 20-byte addresses.
    """

    def __init__(self, limit: int = VIEW_LIMIT) -> None:
        self.limit = limit
        self._events: OrderedDict[str, _Seen] = OrderedDict()
        self._threads: dict[str, list[str]] = {}
        self._redactions: dict[str, bytes] = {}
        self._seq = 0

    def __len__(self) -> int:
        return len(self._events)

    def saw_event(self, event_id: str, sender: bytes) -> None:
        """Record a channel message event at first sight, before it is decrypted."""
        if event_id in self._events:
            return
        self._seq += 1
        seen = _Seen(self._seq, bytes(sender))
        redactor = self._redactions.pop(event_id, None)
        seen.redacted = redactor is not None and redactor == seen.sender
        self._events[event_id] = seen
        while len(self._events) > self.limit:
            self._forget(*self._events.popitem(last=False))

    def saw_message(self, event_id: str, sender: bytes, message: pl.ChannelMessage) -> None:
        """Record what a message event holds: decrypted, or sent by this client."""
        self.saw_event(event_id, sender)
        seen = self._events[event_id]
        kind = message.WhichOneof("payload")
        if seen.kind is not None:
            return
        seen.kind = kind
        if kind == "post" and message.post.thread_id:
            seen.thread_id = message.post.thread_id
            self._threads.setdefault(seen.thread_id, []).append(event_id)
        elif kind == "redaction":
            self._redact(message.redaction.ref_event_id, seen.sender)

    def _redact(self, target_id: str, redactor: bytes) -> None:
        target = self._events.get(target_id)
        if target is None:
            self._redactions[target_id] = redactor
            if len(self._redactions) > self.limit:
                self._redactions.pop(next(iter(self._redactions)))
        elif target.sender == redactor:
            target.redacted = True

    def _forget(self, event_id: str, seen: _Seen) -> None:
        if seen.thread_id is None:
            return
        thread = self._threads.get(seen.thread_id, [])
        if event_id in thread:
            thread.remove(event_id)
        if not thread:
            self._threads.pop(seen.thread_id, None)

    def _get(self, event_id: str) -> _Seen | None:
        # The SDK folds a decrypted edit into the post it replaces: no event of its own.
        seen = self._events.get(event_id)
        return None if seen is None or seen.kind == "edit" else seen

    def _thread_of(self, event_id: str) -> str | None:
        seen = self._get(event_id)
        if seen is None or seen.kind != "post" or seen.redacted:
            return None
        return seen.thread_id

    def participants(self, parent_id: str) -> list[bytes]:
        """The parent's sender, then each sender of a live post in its thread, each once."""
        found: dict[bytes, None] = {}
        parent = self._get(parent_id)
        if parent is not None:
            found[parent.sender] = None
        posts = [self._events[i] for i in self._threads.get(parent_id, ()) if i in self._events]
        for seen in sorted(posts, key=lambda s: s.seq):
            if not seen.redacted:
                found.setdefault(seen.sender)
        return list(found)

    def tags(self, message: pl.ChannelMessage, sender: bytes) -> pb.Tags:
        """The Tags the SDK would put on `message` if `sender` (20 bytes) sent it now."""
        groups, users = mentions_of(message)
        tags = pb.Tags(
            message_interaction_type=interaction_type(message),
            group_mention_types=groups,
            mentioned_user_addresses=users,
        )
        kind = message.WhichOneof("payload")
        thread: str | None = None
        if kind == "post":
            post = message.post
            thread = post.thread_id or None
            parent = post.thread_id or post.reply_id
            if parent:
                participants = self.participants(parent)
                if post.thread_id and sender not in participants:
                    participants.append(bytes(sender))
                tags.participating_user_addresses.extend(participants)
        elif kind in ("reaction", "edit", "redaction"):
            ref = getattr(message, kind).ref_event_id
            referred = self._get(ref)
            thread = self._thread_of(ref)
            if kind == "redaction" and referred is not None and referred.sender == sender:
                thread = None
            if kind == "reaction" and referred is not None:
                tags.participating_user_addresses.append(referred.sender)
        if thread:
            tags.thread_id = _event_id_bytes(thread)
        return tags
