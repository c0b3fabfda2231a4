"""Every error river_client.chain raises, one hierarchy.

    ChainError
    ├── ContractCallError        a read on a contract failed or returned something undecodable
    ├── MintError                a membership could not be minted or confirmed
    └── InsufficientFundsError   the root wallet cannot pay for the mints (nothing was sent);
                                 also a wallet_tools.exceptions.InsufficientFundsError

Transport failures surface as wallet_tools.exceptions.RpcError / RpcUnavailableError, raised by
the JSON-RPC client. Messages name the contract, wallet or transaction concerned and the value
that was expected; they never contain a private key.
"""

from __future__ import annotations

from wallet_tools.exceptions import InsufficientFundsError as WalletInsufficientFundsError


class ChainError(Exception):
    """Base class of every river_client.chain error."""


class ContractCallError(ChainError):
    """An eth_call on a contract reverted, failed, or returned data that does not decode."""


class MintError(ChainError):
    """A membership mint failed: the transaction reverted, was never confirmed, or the node
    kept refusing it. `recipient` names the wallet when the failure is about one wallet."""

    def __init__(self, message: str, recipient: str | None = None) -> None:
        super().__init__(message)
        self.recipient = recipient


class InsufficientFundsError(ChainError, WalletInsufficientFundsError):
    """The root wallet's balance is below what the planned mints may cost (value plus the
    maximum gas fee of every transaction)."""

    def __init__(self, address: str, balance: int, needed: int, mints: int) -> None:
        WalletInsufficientFundsError.__init__(self, address, balance, needed)
        self.mints = mints
        self.args = (
            f"root wallet {address} holds {balance} wei ({balance / 1e18:.6f} ETH) but minting "
            f"{mints} memberships may cost up to {needed} wei ({needed / 1e18:.6f} ETH); "
            f"fund it with at least {needed - balance} wei more. Nothing was sent.",
        )

    def __str__(self) -> str:
        return str(self.args[0])
