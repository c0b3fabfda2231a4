"""The few chat operations a root or follower performs, on top of `river_client`.

`ChatClient` is what the root flow and the follower use: start the user's streams, join the
space and channels, post, reply in a thread, react, edit, find a message in a channel's
timeline, count the reactions to a message, stop. `open_chat` builds one on a
`river_client.client.RiverClient` for a wallet, wiring the client's `on_call` hook to Locust
request events and its `on_message` hook to the delivery-latency entry.

Every River call reports itself through `on_call`. The clients of one process share one
Connect transport per node (a pool of connections; each sync stream has its own), and waiting
for a message is event-driven (RiverClient wakes the waiting greenlet).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from river_client.messages import shared_hex
from river_client.solicitations import AnswerClaims
from stress_users.config import RunConfig
from stress_users.metrics import Reporter


@dataclass(frozen=True)
class ChatMessage:
    """A decrypted message as the plugin sees it (`kind`: post, reaction, edit, redaction)."""

    channel_id: str
    event_id: str
    sender: str
    text: str
    thread_id: str | None
    created_at_ms: float
    kind: str = "post"
    ref_event_id: str | None = None


class ChatClient(Protocol):
    def start(self, space_id: str) -> None: ...

    def join_space(self, space_id: str) -> None: ...

    def join_channel(self, channel_id: str) -> None: ...

    def post(self, channel_id: str, text: str, thread_id: str | None = None) -> str: ...

    def react(self, channel_id: str, event_id: str, emoji: str) -> None: ...

    def edit(self, channel_id: str, event_id: str, text: str) -> None: ...

    def messages(self, channel_id: str) -> list[ChatMessage]: ...

    def reaction_count(self, channel_id: str, event_id: str) -> int: ...

    def wait_for(
        self, channel_id: str, predicate: Callable[[ChatMessage], bool], timeout: float
    ) -> ChatMessage | None: ...

    def stop(self) -> None: ...


def wait_for_message(
    client: ChatClient,
    channel_id: str,
    predicate: Callable[[ChatMessage], bool],
    timeout: float,
) -> ChatMessage | None:
    """The first message of the channel matching `predicate`, waiting up to `timeout` s."""
    return client.wait_for(channel_id, predicate, timeout)


def _to_chat_message(received: Any) -> ChatMessage:
    return ChatMessage(
        channel_id=str(received.channel_id),
        event_id=str(received.event_id),
        sender=str(received.sender),
        text=str(received.text or ""),
        thread_id=received.thread_id or None,
        created_at_ms=float(received.created_at_ms),
        kind=str(getattr(received, "kind", "post")),
        ref_event_id=getattr(received, "ref_event_id", None),
    )


class RiverChat:
    """`ChatClient` on `river_client.client.RiverClient`.

    Delivery latency is the time from a message's creation to its event arriving in this
    client's sync (before decryption, so a wait for the message's key is not counted), reported
    only for other users' messages created after this client joined the channel (older ones
    arrive with the channel's history, not through delivery).
    """

    def __init__(
        self,
        private_key: bytes,
        node_urls: list[str],
        reporter: Reporter,
        on_message: Callable[[ChatMessage], None] | None = None,
        **client_options: Any,
    ) -> None:
        from river_client.client import RiverClient

        self._reporter = reporter
        self._on_message = on_message
        self._joined_ms: dict[str, float] = {}
        self._reactors: dict[str, set[str]] = {}
        self._stopped = False
        self._client = RiverClient(
            private_key,
            shared_transport(random.choice(node_urls)),
            on_call=self._called,
            on_message=self._received,
            on_arrival=self._arrived,
            **client_options,
        )
        self.user_id = str(self._client.user_id)
        self._address = bytes(self._client.address)

    def _called(self, kind: str, name: str, elapsed_ms: float, error: Exception | None) -> None:
        # Background work of a stopped client (e.g. a key share cut short) is not the test's.
        if not self._stopped:
            self._reporter.on_call(kind, name, elapsed_ms, error)

    def _arrived(self, channel: bytes, event: Any) -> None:
        joined = self._joined_ms.get(shared_hex(channel))
        if joined is not None and event.sender != self._address and event.created_at_ms >= joined:
            self._reporter.delivery(event.created_at_ms)

    def _received(self, received: Any) -> None:
        message = _to_chat_message(received)
        if message.kind == "reaction" and message.ref_event_id in self._reactors:
            self._reactors[message.ref_event_id].add(message.sender)
        if self._on_message is not None:
            self._on_message(message)

    def start(self, space_id: str) -> None:
        self._client.start(space_id)

    def join_space(self, space_id: str) -> None:
        self._client.join_space(space_id)

    def join_channel(self, channel_id: str) -> None:
        self._joined_ms[channel_id.lower().removeprefix("0x")] = time.time() * 1000.0
        self._client.join_channel(channel_id)

    def post(self, channel_id: str, text: str, thread_id: str | None = None) -> str:
        return str(self._client.post(channel_id, text, thread_id=thread_id))

    def react(self, channel_id: str, event_id: str, emoji: str) -> None:
        self._client.react(channel_id, event_id, emoji)

    def edit(self, channel_id: str, event_id: str, text: str) -> None:
        self._client.edit(channel_id, event_id, text)

    def messages(self, channel_id: str) -> list[ChatMessage]:
        return [_to_chat_message(m) for m in self._client.messages(channel_id)]

    def reaction_count(self, channel_id: str, event_id: str) -> int:
        """Distinct users who reacted to the message.

        The client keeps a bounded history per channel, so the first call starts counting the
        message's reactors as they arrive (seeded from that history) and later calls read the
        tally: a count that keeps growing past the history's size.
        """
        if event_id not in self._reactors:
            self._reactors[event_id] = {
                m.sender
                for m in self._client.messages(channel_id)
                if m.kind == "reaction" and m.ref_event_id == event_id
            }
        return len(self._reactors[event_id])

    def wait_for(
        self, channel_id: str, predicate: Callable[[ChatMessage], bool], timeout: float
    ) -> ChatMessage | None:
        """Event-driven: RiverClient wakes this greenlet when a matching message arrives."""
        found = self._client.wait_for_message(
            lambda m: m.channel_id == channel_id and predicate(_to_chat_message(m)), timeout
        )
        return None if found is None else _to_chat_message(found)

    def stop(self) -> None:
        self._client.stop()
        self._stopped = True


_transports: dict[str, Any] = {}
TRANSPORT_CONNECTIONS = 256


def shared_transport(url: str) -> Any:
    """One Connect transport (connection pool) per node URL for every client of the process;
    each client's sync stream still gets its own connection."""
    transport = _transports.get(url)
    if transport is None:
        from river_client.transport import ConnectTransport

        transport = _transports[url] = ConnectTransport(url, concurrency=TRANSPORT_CONNECTIONS)
    return transport


FOLLOWER_MESSAGES_KEPT = 4
FOLLOWER_PENDING_LIMIT = 64
FOLLOWER_ANSWERS_QUEUED = 16
ANSWER_CLAIMS = AnswerClaims()  # the process's followers answer each solicitation once


def open_chat(
    private_key: bytes,
    config: RunConfig,
    reporter: Reporter,
    on_message: Callable[[ChatMessage], None] | None = None,
    follower: bool = False,
) -> ChatClient:
    """A chat client for one wallet on the run's River nodes.

    A follower's client is lean, for a thousand of them per process: it keeps the last
    `FOLLOWER_MESSAGES_KEPT` messages per channel (the follower watches for the ones it needs
    as they arrive), at most `FOLLOWER_PENDING_LIMIT` waiting for keys, at most
    `FOLLOWER_ANSWERS_QUEUED` solicitations queued for an answer (and one follower of the
    process answers each: `river_client.solicitations.AnswerClaims`), and before its first
    message in a channel waits up to `RunConfig.key_wait_s` for the channel's group key, so
    that all followers share one key per channel instead of each sharing its own with all.
    """
    from stress_users.nodes import node_urls

    options: dict[str, Any] = {}
    if follower:
        options = {
            "messages_kept": FOLLOWER_MESSAGES_KEPT,
            "pending_limit": FOLLOWER_PENDING_LIMIT,
            "key_wait": config.key_wait_s,
            "answers_queued": FOLLOWER_ANSWERS_QUEUED,
            "answer_claims": ANSWER_CLAIMS,
        }
    return RiverChat(private_key, node_urls(config), reporter, on_message, **options)
