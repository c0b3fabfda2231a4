"""A River-compatible dev node: River's StreamService over Connect, backed by SQLite.

It speaks what the Towns SDK and our river_client speak (binary and JSON codecs, HTTP/1.1 and
cleartext HTTP/2), applies the River node's rules for the events a Towns chat produces, checks
space memberships on the chain, seals miniblocks about once a second and pushes new events to
sync sessions as soon as they are committed. Run it with `python -m devnet node`; see
devnet.node.server for the options and devnet.stack for starting it from Python.

Modules: errors (River errors), crypto (envelope checks, node key), state (folded stream state,
snapshots), streams (a stream in memory), store (SQLite), loading (restart), rules and creation
(AddEvent and CreateStream rules), entitlements (chain membership), sync (sync sessions),
core (write path, group commit, miniblocks), service (RPC handlers), connect (the Connect
protocol, and its ASGI adapter), http1 (the public port: HTTP/1.1, HTTP/2 relayed to hypercorn),
server (startup and options), commands (`python -m devnet node|up|down|status`).
"""

from devnet.node.core import DevNode, NodeConfig

__all__ = ["DevNode", "NodeConfig"]
