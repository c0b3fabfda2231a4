"""Solidity contracts of the local stack, with their committed compiled artifacts.

`SpaceMembership.sol` stands in for a Towns space contract (membership surface only) and
`RiverRegistry.sol` for the River registry's node list; see their NatSpec headers. Load an
artifact with `load_artifact("SpaceMembership")`; rebuild every artifact with
`python -m devnet.contracts` (solcjs, offline).
"""

from devnet.contracts.build import CONTRACT_NAMES, CompileError, compile_contract, load_artifact

__all__ = ["CONTRACT_NAMES", "CompileError", "compile_contract", "load_artifact"]
