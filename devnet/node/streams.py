"""One stream in the dev node's memory: its recent miniblocks, minipool and state.

Event numbers count every event of the stream including miniblock headers, as the Towns SDK
numbers them: block N's events are `event_num_offset + i` and its header is
`event_num_offset + len(events)`, so the next block starts one after the header.

`validate_prev` is River's ValidateNextEvent (events/stream_view.go): the referenced miniblock
must exist and be recent (the block after it no older than the recency window); errors carry
`expected`/`expNum` naming the last block, which clients retry with. A known number with
another hash is DATA_LOSS, as in River (not retried by clients).
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from devnet.node.crypto import NodeKey, river_hash, river_snapshot_hash
from devnet.node.errors import Err, NodeError, bad_prev_miniblock
from devnet.node.state import StreamState, is_user_stream
from devnet.node.store import MiniblockRow
from river_client.proto import protocol_pb2 as pb

if TYPE_CHECKING:
    from devnet.node.sync import SyncSession

RECENT_BLOCKS = 256
RECENT_HASHES = 20_000
SNAPSHOT_EVERY = 100
SNAPSHOT_EVERY_USER = 10


class ParsedEvent:
    """An envelope with its decoded StreamEvent; `raw` is the envelope as stored."""

    __slots__ = ("envelope", "event", "hash", "raw")

    def __init__(self, envelope: pb.Envelope, event: pb.StreamEvent, raw: bytes) -> None:
        self.envelope = envelope
        self.event = event
        self.hash = bytes(envelope.hash)
        self.raw = raw


@dataclass
class BlockInfo:
    """A sealed miniblock; `miniblock` is kept in memory only for blocks GetStream serves."""

    num: int
    hash: bytes
    created_ms: int
    event_num_offset: int
    event_count: int
    snapshot_num: int
    miniblock: pb.Miniblock | None = None
    snapshot: pb.Envelope | None = None
    header_event: pb.StreamEvent | None = field(default=None, repr=False)


def make_node_envelope(
    key: NodeKey,
    payload_name: str,
    payload: object,
    prev: tuple[bytes, int] | None,
) -> tuple[pb.Envelope, pb.StreamEvent]:
    """An event created and signed by the node (miniblock headers, derived events)."""
    event = pb.StreamEvent(
        creator_address=key.address,
        salt=os.urandom(16),
        created_at_epoch_ms=int(time.time() * 1000),
    )
    getattr(event, payload_name).CopyFrom(payload)
    if prev is not None:
        event.prev_miniblock_hash = prev[0]
        event.prev_miniblock_num = prev[1]
    event_bytes = event.SerializeToString()
    digest = river_hash(event_bytes)
    return pb.Envelope(hash=digest, signature=key.sign(digest), event=event_bytes), event


class Stream:
    """A stream's live view: recent blocks, the minipool, the folded state, subscribers."""

    def __init__(self, stream_id: bytes, inception: pb.StreamEvent) -> None:
        self.stream_id = stream_id
        self.inception = inception
        self.blocks: deque[BlockInfo] = deque(maxlen=RECENT_BLOCKS)
        self.minipool: list[ParsedEvent] = []
        self.next_event_num = 0
        self.sealed = StreamState(stream_id, inception)
        self.live = StreamState(stream_id, inception)
        self.hashes: OrderedDict[bytes, None] = OrderedDict()
        self.events_since_snapshot = 0
        self.last_snapshot_num = 0
        self.subscribers: set[SyncSession] = set()
        payload = getattr(inception, inception.WhichOneof("payload") or "member_payload")
        inception_msg = getattr(payload, "inception", None)
        self.miniblocks_disabled = bool(
            inception_msg is not None and inception_msg.settings.disable_miniblock_creation
        )
        self.snapshot_every = SNAPSHOT_EVERY_USER if is_user_stream(stream_id) else SNAPSHOT_EVERY

    @property
    def payload_kind(self) -> str:
        return self.live.payload_kind

    @property
    def last(self) -> BlockInfo:
        return self.blocks[-1]

    def cookie(self, node_address: bytes) -> pb.SyncCookie:
        last = self.last
        return pb.SyncCookie(
            node_address=node_address,
            stream_id=self.stream_id,
            minipool_gen=last.num + 1,
            prev_miniblock_hash=last.hash,
        )

    def block(self, num: int) -> BlockInfo | None:
        """A recent block by number (None if older than what memory holds)."""
        if not self.blocks:
            return None
        index = num - self.blocks[0].num
        if 0 <= index < len(self.blocks):
            return self.blocks[index]
        return None

    def remember_hash(self, event_hash: bytes) -> None:
        self.hashes[event_hash] = None
        if len(self.hashes) > RECENT_HASHES:
            self.hashes.popitem(last=False)

    def validate_prev(self, event: pb.StreamEvent, now_ms: int, recency_ms: int) -> None:
        """Raise unless the event's prev miniblock reference is known and recent."""
        last = self.last
        prev_hash = bytes(event.prev_miniblock_hash)
        if event.HasField("prev_miniblock_num"):
            num = event.prev_miniblock_num
            if num > last.num:
                raise NodeError(
                    Err.MINIBLOCK_TOO_NEW,
                    "prev miniblock num is greater than the last miniblock",
                    prevMiniblockNum=num,
                    expected=f"0x{last.hash.hex()}",
                    expNum=last.num,
                )
            block = self.block(num)
            if block is None:
                raise bad_prev_miniblock(
                    "prev miniblock is too old to be loaded", last.hash, last.num
                )
            if block.hash != prev_hash:
                raise NodeError(
                    Err.DATA_LOSS,
                    "prev miniblock hash does not match the miniblock at that number",
                    prevMiniblockNum=num,
                    expected=f"0x{last.hash.hex()}",
                    expNum=last.num,
                )
        else:
            block = next((b for b in reversed(self.blocks) if b.hash == prev_hash), None)
            if block is None:
                raise bad_prev_miniblock("prev miniblock hash not found", last.hash, last.num)
        if block.num != last.num:
            following = self.block(block.num + 1)
            if following is not None and now_ms - following.created_ms > recency_ms:
                raise bad_prev_miniblock("referenced block is not recent", last.hash, last.num)

    def append(self, parsed: ParsedEvent) -> int:
        """Add an accepted event to the minipool; returns its event number (-1: ephemeral)."""
        self.remember_hash(parsed.hash)
        if parsed.event.ephemeral:
            return -1
        event_num = self.next_event_num
        self.next_event_num += 1
        self.minipool.append(parsed)
        self.live.apply(parsed.event, event_num, self.last.num + 1)
        return event_num

    def genesis(self, key: NodeKey, events: list[ParsedEvent]) -> tuple[BlockInfo, MiniblockRow]:
        """Miniblock 0 from the creation events, with a snapshot."""
        for i, parsed in enumerate(events):
            self.sealed.apply(parsed.event, i, 0)
            self.live.apply(parsed.event, i, 0)
            self.remember_hash(parsed.hash)
        now_ms = int(time.time() * 1000)
        header = pb.MiniblockHeader(
            miniblock_num=0, event_hashes=[p.hash for p in events], event_num_offset=0
        )
        header.timestamp.seconds = now_ms // 1000
        header.timestamp.nanos = (now_ms % 1000) * 1_000_000
        header.none.SetInParent()
        snapshot_env = self.make_snapshot(key)
        header.snapshot_hash = snapshot_env.hash
        envelope, header_event = make_node_envelope(key, "miniblock_header", header, None)
        info = self.add_block(envelope, header_event, [p.envelope for p in events], snapshot_env)
        self.next_event_num = len(events) + 1
        return info, self.row(info)

    def seal(self, key: NodeKey, force_snapshot: bool = False) -> tuple[BlockInfo, MiniblockRow]:
        """Turn the minipool into the next miniblock (header signed by the node)."""
        last = self.last
        events = self.minipool
        self.minipool = []
        num = last.num + 1
        offset = last.event_num_offset + last.event_count + 1
        for i, parsed in enumerate(events):
            self.sealed.apply(parsed.event, offset + i, num)
        self.events_since_snapshot += len(events)
        now_ms = int(time.time() * 1000)
        header = pb.MiniblockHeader(
            miniblock_num=num,
            prev_miniblock_hash=last.hash,
            event_hashes=[p.hash for p in events],
            event_num_offset=offset,
            prev_snapshot_miniblock_num=self.last_snapshot_num,
        )
        header.timestamp.seconds = now_ms // 1000
        header.timestamp.nanos = (now_ms % 1000) * 1_000_000
        header.none.SetInParent()
        snapshot_env = None
        if force_snapshot or self.events_since_snapshot >= self.snapshot_every:
            snapshot_env = self.make_snapshot(key)
            header.snapshot_hash = snapshot_env.hash
        envelope, header_event = make_node_envelope(
            key, "miniblock_header", header, (last.hash, last.num)
        )
        info = self.add_block(envelope, header_event, [p.envelope for p in events], snapshot_env)
        self.next_event_num = offset + len(events) + 1
        return info, self.row(info)

    def make_snapshot(self, key: NodeKey) -> pb.Envelope:
        """The sealed state as a node-signed snapshot envelope (SNAPSHOT-prefixed hash)."""
        snapshot_bytes = self.sealed.to_snapshot().SerializeToString()
        digest = river_snapshot_hash(snapshot_bytes)
        return pb.Envelope(hash=digest, signature=key.sign(digest), event=snapshot_bytes)

    def add_block(
        self,
        header: pb.Envelope,
        header_event: pb.StreamEvent,
        envelopes: list[pb.Envelope],
        snapshot: pb.Envelope | None,
    ) -> BlockInfo:
        """Append a sealed block (new, genesis, or loaded from the database) to memory."""
        payload = header_event.miniblock_header
        num = payload.miniblock_num
        if snapshot is not None:
            self.last_snapshot_num = num
            self.events_since_snapshot = 0
        info = BlockInfo(
            num=num,
            hash=bytes(header.hash),
            created_ms=payload.timestamp.seconds * 1000 + payload.timestamp.nanos // 1_000_000,
            event_num_offset=payload.event_num_offset,
            event_count=len(payload.event_hashes),
            snapshot_num=self.last_snapshot_num,
            miniblock=pb.Miniblock(events=envelopes, header=header),
            snapshot=snapshot,
            header_event=header_event,
        )
        self.blocks.append(info)
        for block in self.blocks:
            if block.num >= self.last_snapshot_num - 1:
                break
            block.miniblock = None
            block.snapshot = None
        return info

    def row(self, info: BlockInfo) -> MiniblockRow:
        assert info.miniblock is not None
        return MiniblockRow(
            stream_id=self.stream_id,
            num=info.num,
            hash=info.hash,
            created_ms=info.created_ms,
            event_num_offset=info.event_num_offset,
            event_count=info.event_count,
            snapshot_num=info.snapshot_num,
            header=info.miniblock.header.SerializeToString(),
            snapshot=info.snapshot.SerializeToString() if info.snapshot is not None else None,
        )
