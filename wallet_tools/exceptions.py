"""Every error wallet_tools raises, one hierarchy so callers can catch as narrowly as they need.

    WalletToolsError
    ├── InputError                      bad user input; the command line exits with code 2
    │   ├── InvalidMnemonicError        unknown words, wrong word count or a bad checksum
    │   ├── InvalidRangeError           start > end, negative or non-numeric wallet indices
    │   ├── InvalidAddressError         not 20 hex bytes, or a wrong EIP-55 checksum
    │   ├── InvalidAmountError          an amount or percentage outside what is allowed
    │   ├── InvalidPrivateKeyError      not 32 bytes of hex, or outside the secp256k1 order
    │   ├── InvalidRpcUrlError          not an http(s) URL
    │   └── SameSeedError               transfer from a mnemonic to itself
    ├── RpcError                        a JSON-RPC endpoint misbehaved (names the URL)
    │   ├── JsonRpcError                the endpoint answered with a JSON-RPC error object
    │   └── RpcUnavailableError         no answer: connection refused, timeout, HTTP failure
    └── InsufficientFundsError          a wallet cannot pay what it is asked to (names both)

Every message names the offending value and what would have been valid. Messages never
contain a mnemonic or a private key.
"""

from __future__ import annotations


class WalletToolsError(Exception):
    """Base class of every wallet_tools error."""


class InputError(WalletToolsError, ValueError):
    """User input that cannot be used; nothing has been sent when this is raised."""


class InvalidMnemonicError(InputError):
    """A BIP-39 mnemonic with unknown words, a wrong word count or a bad checksum."""


class InvalidRangeError(InputError):
    """A wallet index range that is empty, reversed, negative or not a number."""


class InvalidAddressError(InputError):
    """An address that is not 20 bytes of hex or fails its EIP-55 checksum."""


class InvalidAmountError(InputError):
    """An amount or percentage outside the allowed range."""


class InvalidPrivateKeyError(InputError):
    """A private key that is not a valid secp256k1 secret."""


class InvalidRpcUrlError(InputError):
    """An RPC URL that is not an http or https URL."""


class SameSeedError(InputError):
    """A transfer whose source and destination mnemonics are the same."""


class RpcError(WalletToolsError):
    """A JSON-RPC endpoint did not give a usable answer."""

    def __init__(self, message: str, *, url: str = "") -> None:
        super().__init__(message)
        self.url = url


class JsonRpcError(RpcError):
    """The endpoint answered a request with a JSON-RPC error object."""

    def __init__(
        self, method: str, code: int, message: str, data: object = None, *, url: str = ""
    ) -> None:
        super().__init__(
            f"{method} failed at {url or 'the RPC endpoint'}: {message} ({code})", url=url
        )
        self.method = method
        self.code = code
        self.rpc_message = message
        self.data = data


class RpcUnavailableError(RpcError):
    """The endpoint did not answer at all (after the configured retries)."""


class InsufficientFundsError(WalletToolsError):
    """A wallet's balance does not cover what it has to pay."""

    def __init__(self, address: str, balance: int, needed: int) -> None:
        super().__init__(
            f"wallet {address} holds {balance} wei but needs {needed} wei "
            f"({needed - balance} wei more)"
        )
        self.address = address
        self.balance = balance
        self.needed = needed
