"""Rebuild the node's streams from SQLite after a restart (or a kill -9).

For each stream: the inception (first event of miniblock 0), the blocks from the latest snapshot
on (and a few before it, for prev-miniblock recency checks), the state folded from that
snapshot and the blocks after it, and the minipool = the stored events after the last block.
"""

from __future__ import annotations

from devnet.node.state import StreamState
from devnet.node.store import Store
from devnet.node.streams import ParsedEvent, Stream
from river_client.proto import protocol_pb2 as pb

EXTRA_BLOCKS = 16


def load_stream(store: Store, stream_id: bytes) -> Stream:
    """One stream as it was at its last commit."""
    last_num = store.last_miniblock_num(stream_id)
    last_row = store.miniblocks(stream_id, last_num, last_num + 1)[0]
    snapshot_num = last_row.snapshot_num
    inception_envelope = pb.Envelope.FromString(store.events(stream_id, 0, 1)[0])
    inception = pb.StreamEvent.FromString(inception_envelope.event)
    stream = Stream(stream_id, inception)

    start = max(0, min(snapshot_num, last_num - EXTRA_BLOCKS))
    for row in store.miniblocks(stream_id, start, last_num + 1):
        header = pb.Envelope.FromString(row.header)
        header_event = pb.StreamEvent.FromString(header.event)
        envelopes = [
            pb.Envelope.FromString(raw)
            for raw in store.events(
                stream_id, row.event_num_offset, row.event_num_offset + row.event_count
            )
        ]
        snapshot = None
        stream.last_snapshot_num = row.snapshot_num
        if row.num == snapshot_num and row.snapshot is not None:
            snapshot = pb.Envelope.FromString(row.snapshot)
            stream.sealed = StreamState.from_snapshot(
                stream_id, inception, pb.Snapshot.FromString(snapshot.event)
            )
        stream.add_block(header, header_event, envelopes, snapshot)
        if row.num > snapshot_num:
            for i, envelope in enumerate(envelopes):
                stream.sealed.apply(
                    pb.StreamEvent.FromString(envelope.event), row.event_num_offset + i, row.num
                )
            stream.events_since_snapshot += len(envelopes)
        for envelope in envelopes:
            stream.remember_hash(bytes(envelope.hash))

    stream.next_event_num = last_row.event_num_offset + last_row.event_count + 1
    stream.live = stream.sealed.clone()
    for raw in store.events(stream_id, stream.next_event_num):
        envelope = pb.Envelope.FromString(raw)
        stream.append(ParsedEvent(envelope, pb.StreamEvent.FromString(envelope.event), raw))
    return stream


def load_streams(store: Store) -> dict[bytes, Stream]:
    return {stream_id: load_stream(store, stream_id) for stream_id in store.stream_ids()}
