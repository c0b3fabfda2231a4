"""A River-compatible dev node: River's StreamService over Connect, backed by SQLite.

It speaks what the Towns SDK and our river_client speak (binary and JSON codecs, HTTP/1.1 and
cleartext HTTP/2), applies the River node's rules for the events a Towns chat produces, checks
space memberships on the chain, seals miniblocks about once a second and pushes new events to
sync sessions as soon as they are committed. Run it with `python -m devnet node`; see
devnet.node.server for the options and devnet.stack for starting it from Python.

Modules: errors (River errors), crypto (envelope checks, node key), state (folded stream state,
snapshots), streams (a stream in memory), store (SQLite), loading (restart), rules and creation
(AddEvent and CreateStream rules), entitlements (chain membership), sync (sync sessions),
core (write path, group commit, miniblocks), service (RPC handlers), connect (Connect over
ASGI), server (hypercorn and the command line).
"""

from devnet.node.core import DevNode, NodeConfig

__all__ = ["DevNode", "NodeConfig"]
