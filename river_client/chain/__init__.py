"""The chains behind River: space memberships on Base and node discovery on the River chain.

- `spaces`: a space's stream id and its contract address, both ways (Towns' own rule).
- `membership`: `SpaceContract`, membership status exactly as a River node decides it, the
  join price as the Towns SDK computes it, and a single confirmed mint.
- `minting`: `MintingEngine`, memberships for many wallets from one root wallet, pipelined.
- `environments`: the public Towns environments (alpha, beta, gamma, delta, omega) and local.
- `registry`: operational River node URLs from the River registry contract.
- `pipeline`: the send window behind `MintingEngine` (nonces, receipts, fault handling).
- `abi`, `transactions`: the calldata, fee, signing and receipt functions they share.
- `exceptions`: every error this package raises.

JSON-RPC goes through `wallet_tools.rpc.JsonRpc` (plain `requests`), so all of it runs under
gevent as well as in plain threads.
"""
