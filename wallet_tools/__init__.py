"""wallet_tools: the test wallets' keys and ETH.

- `wallet_tools.mnemonic`: BIP-39 validation, generation and seeds.
- `wallet_tools.derivation`: `HDWallets`, fast BIP-32/44 derivation at m/44'/60'/0'/0/i.
- `wallet_tools.rpc`: `JsonRpc`, a small JSON-RPC client with batches and retries.
- `wallet_tools.fees`, `wallet_tools.transfer`: fee estimation (EIP-1559, legacy, OP-stack
  L1 data fee) and sweeping balances between wallets.
- `python -m wallet_tools`: the command line (`generate`, `new-mnemonic`, `check`,
  `transfer`, `send-gas`).
"""
