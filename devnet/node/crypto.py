"""Envelope checks and node signatures for the dev node, on river_client's signing rules.

The rules are river_client.events.verify_envelope (hash, signature, delegate signature, the
same checks a River node makes). A client signs every event with the same device key and
delegate signature, so the verifier runs the full check once per (delegate signature, device
key, expiry) and afterwards only recovers the event's signer and compares it with the device
key it remembered: one public-key recovery per event instead of three.
"""

from __future__ import annotations

from collections import OrderedDict

from coincurve import PrivateKey

from devnet.node.errors import Err, NodeError
from river_client.errors import EnvelopeError
from river_client.events import river_hash, river_snapshot_hash, verify_envelope
from river_client.proto import protocol_pb2 as pb
from river_client.signing import address_of_public_key, recover_public_key, sign_recoverable

__all__ = ["EnvelopeVerifier", "NodeKey", "river_hash", "river_snapshot_hash"]


class NodeKey:
    """The node's own secp256k1 key: signs miniblock headers, snapshots and derived events."""

    def __init__(self, private_key: bytes) -> None:
        self._key = PrivateKey(private_key)
        self.address = address_of_public_key(bytes(self._key.public_key.format(compressed=False)))

    def sign(self, digest: bytes) -> bytes:
        """A 65-byte r‖s‖v signature with v in {0, 1}, as River events carry."""
        return sign_recoverable(self._key, digest)

    def __repr__(self) -> str:
        return f"NodeKey(address=0x{self.address.hex()})"


class EnvelopeVerifier:
    """Checks an envelope's hash and signature; remembers delegates it has verified."""

    def __init__(self, cache_size: int = 100_000) -> None:
        self._delegates: OrderedDict[tuple[bytes, bytes, int], bytes] = OrderedDict()
        self._cache_size = cache_size

    def verify(self, envelope: pb.Envelope, event: pb.StreamEvent) -> None:
        """Raise NodeError (BAD_HASH_FORMAT, BAD_EVENT_HASH, BAD_EVENT_SIGNATURE) unless valid."""
        digest = bytes(envelope.hash)
        if len(digest) != 32:
            raise NodeError(Err.BAD_HASH_FORMAT, "event hash must be 32 bytes", length=len(digest))
        actual = river_hash(envelope.event)
        if actual != digest:
            raise NodeError(
                Err.BAD_EVENT_HASH,
                "event hash does not match the hash of the event bytes",
                expected=f"0x{actual.hex()}",
                actual=f"0x{digest.hex()}",
            )
        creator = bytes(event.creator_address)
        if not event.delegate_sig:
            try:
                signer = address_of_public_key(recover_public_key(digest, envelope.signature))
            except ValueError as exc:
                raise NodeError(
                    Err.BAD_EVENT_SIGNATURE, "cannot recover the event signer", error=str(exc)
                ) from None
            if signer != creator:
                raise NodeError(
                    Err.BAD_EVENT_SIGNATURE,
                    "event signature does not match creator_address",
                    signer=f"0x{signer.hex()}",
                    creator=f"0x{creator.hex()}",
                )
            return

        try:
            device_key = recover_public_key(digest, envelope.signature)
        except ValueError as exc:
            raise NodeError(
                Err.BAD_EVENT_SIGNATURE, "cannot recover the event signer", error=str(exc)
            ) from None
        key = (bytes(event.delegate_sig), device_key, event.delegate_expiry_epoch_ms)
        if self._delegates.get(key) == creator:
            return
        try:
            verify_envelope(envelope)
        except EnvelopeError as exc:
            error = NodeError(exc.code, exc.message.split("\n", 1)[0], **exc.tags)
            raise error from None
        self._delegates[key] = creator
        if len(self._delegates) > self._cache_size:
            self._delegates.popitem(last=False)
