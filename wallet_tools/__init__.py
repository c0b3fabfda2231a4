"""wallet_tools: the test wallets' keys and ETH.

- `wallet_tools.mnemonic`: BIP-39 validation, generation and seeds.
- `wallet_tools.derivation`: `HDWallets`, fast BIP-32/44 derivation at m/44'/60'/0'/0/i.
- `wallet_tools.rpc`: `JsonRpc`, a small JSON-RPC client with batches and retries.
- `wallet_tools.fees`: the fee model (EIP-1559, legacy, the OP-stack L1 data fee).
- `wallet_tools.transfer` and `wallet_tools.outcomes`: sweeping balances between wallets, all
  at once, and the report of a run.
- `wallet_tools.exceptions`: every error, as one tree.
- `python -m wallet_tools` (`wallet_tools.cli`, with `inputs` and `display`): the command line
  (`generate`, `new-mnemonic`, `check`, `transfer`, `send-gas`).
"""
