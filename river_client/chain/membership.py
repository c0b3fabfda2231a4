"""Space memberships: status as a River node decides it, the join price, and a single mint.

The space contract (a diamond at the address in the space id) holds the membership NFTs.

- Status (River node `SpaceContractV3.GetMembershipStatus`, SDK `Space.getMembershipStatus`):
  `tokensOfOwner(wallet)`; no token means not a member. Otherwise `expiresAt(token)` for every
  token: 0 is permanent, a time after now is active. A member whose tokens have all expired is
  "expired"; only a member that is not expired may join the space stream on River.
- Join price (SDK `SpaceDapp.getJoinSpacePriceDetails`): one multicall of
  `getMembershipPrice()`, `totalSupply()`, `getMembershipFreeAllocation()`, `getProtocolFee()`;
  the price is 0 while `totalSupply < freeAllocation`, else `getMembershipPrice()` (which
  already includes the protocol fee). It is sent as value only for the native-ETH currency.
- Mint: `joinSpace(recipient)` from a signer, confirmed by the receipt's status and the
  `MembershipTokenIssued(recipient, tokenId)` log, as the SDK's membership listener does.

Not supported: memberships priced in an ERC-20 currency (nothing is approved; the value sent
is 0 and the contract will pull or refuse), and renewals (an expired wallet gets a new token).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_utils import to_checksum_address

from river_client.chain.abi import (
    ETH_CURRENCY,
    calldata,
    decode,
    decode_multicall,
    describe_revert,
    multicall_data,
)
from river_client.chain.exceptions import ContractCallError, MintError
from river_client.chain.transactions import (
    batched,
    issued_token,
    read_fees,
    revert_data,
    sign_join,
)
from wallet_tools.exceptions import RpcError
from wallet_tools.rpc import JsonRpc

logger = logging.getLogger(__name__)

SDK_GAS_LIMIT = 1_500_000  # the SDK's fixed joinSpace gas limit, used when estimation fails
# eth_estimateGas is exact for the state it ran on; the headroom covers what changes before
# inclusion (a mint that runs out of gas anyway is retried once with twice the limit).
GAS_HEADROOM = 1.1
CALLS_PER_MULTICALL = 100


@dataclass(frozen=True)
class MembershipStatus:
    """One wallet's membership in one space."""

    is_member: bool
    is_expired: bool
    token_id: int | None
    expires_at: int | None  # 0 = permanent

    @property
    def active(self) -> bool:
        """What a River node requires to join the space: a member whose token has not expired."""
        return self.is_member and not self.is_expired


NOT_A_MEMBER = MembershipStatus(False, False, None, None)


def status_from_tokens(
    tokens: Sequence[int], expiry: dict[int, int], now: float
) -> MembershipStatus:
    """Apply the River node's rule to a wallet's tokens and their `expiresAt` values."""
    if not tokens:
        return NOT_A_MEMBER
    active = [t for t in tokens if expiry[t] == 0 or expiry[t] > now]
    if active:
        permanent = [t for t in active if expiry[t] == 0]
        best = permanent[0] if permanent else max(active, key=lambda t: expiry[t])
        return MembershipStatus(True, False, best, expiry[best])
    latest = max(tokens, key=lambda t: expiry[t])
    return MembershipStatus(True, True, latest, expiry[latest])


@dataclass(frozen=True)
class JoinPrice:
    """What joining costs right now, composed like the SDK's getJoinSpacePriceDetails."""

    price: int  # 0 while the free allocation lasts, else getMembershipPrice()
    membership_price: int  # getMembershipPrice(): base price plus protocol fee
    protocol_fee: int
    total_supply: int
    free_allocation: int
    currency: str

    @property
    def is_native(self) -> bool:
        return self.currency.lower() == ETH_CURRENCY.lower()

    @property
    def value_wei(self) -> int:
        """The ETH value to send with joinSpace (0 for an ERC-20 currency)."""
        return self.price if self.is_native else 0

    def value_for(self, position: int) -> int:
        """The value for the mint `position` places after now (0-based), free slots counted."""
        if not self.is_native or self.membership_price == 0:
            return 0
        return 0 if self.free_allocation > self.total_supply + position else self.membership_price


@dataclass(frozen=True)
class MintResult:
    recipient: str
    token_id: int
    tx_hash: str
    block_number: int


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class SpaceContract:
    """Reads and joins on one space contract through a JSON-RPC endpoint."""

    def __init__(self, rpc: JsonRpc, space_address: str) -> None:
        self.rpc = rpc
        self.address = to_checksum_address(space_address)

    def __repr__(self) -> str:
        return f"SpaceContract({self.address}, {self.rpc.display_url})"

    # -- reads ---------------------------------------------------------------------------------

    def _eth_calls(self, datas: Sequence[str], what: str) -> list[str]:
        replies = batched(
            self.rpc, [("eth_call", [{"to": self.address, "data": d}, "latest"]) for d in datas]
        )
        for reply in replies:
            if isinstance(reply, Exception):
                raise ContractCallError(f"{what} on space {self.address} failed: {reply}")
        return [str(r) for r in replies]

    def _read_many(self, datas: Sequence[str], what: str, use_multicall: bool) -> list[bytes]:
        """Results of many calls on the space: multicalls bundled in one JSON-RPC batch, or one
        JSON-RPC batch of plain eth_calls."""
        if not datas:
            return []
        if not use_multicall:
            return [bytes.fromhex(r.removeprefix("0x")) for r in self._eth_calls(datas, what)]
        bundles = [multicall_data(chunk) for chunk in _chunks(datas, CALLS_PER_MULTICALL)]
        results: list[bytes] = []
        for reply in self._eth_calls(bundles, f"multicall of {what}"):
            results.extend(decode_multicall(reply))
        return results

    def statuses(
        self,
        addresses: Sequence[str],
        now: float | None = None,
        use_multicall: bool = True,
    ) -> dict[str, MembershipStatus]:
        """Membership of every address, keyed by the address as given; two round trips."""
        now = time.time() if now is None else now
        owners = [to_checksum_address(a) for a in addresses]
        token_lists = [
            list(decode(["uint256[]"], r)[0])
            for r in self._read_many(
                [calldata("tokensOfOwner(address)", a) for a in owners],
                "tokensOfOwner",
                use_multicall,
            )
        ]
        tokens = sorted({t for held in token_lists for t in held})
        expiry_results = self._read_many(
            [calldata("expiresAt(uint256)", t) for t in tokens], "expiresAt", use_multicall
        )
        expiry = {
            t: int(decode(["uint256"], r)[0]) for t, r in zip(tokens, expiry_results, strict=True)
        }
        return {
            given: status_from_tokens(held, expiry, now)
            for given, held in zip(addresses, token_lists, strict=True)
        }

    def status(self, address: str) -> MembershipStatus:
        return self.statuses([address])[address]

    def join_price(self) -> JoinPrice:
        """The join price and its parts, in one multicall."""
        names = (
            "getMembershipPrice()",
            "totalSupply()",
            "getMembershipFreeAllocation()",
            "getProtocolFee()",
            "getMembershipCurrency()",
        )
        results = self._read_many([calldata(n) for n in names], "join price", True)
        price, supply, free, fee = (int(decode(["uint256"], r)[0]) for r in results[:4])
        (currency,) = decode(["address"], results[4])
        due = 0 if supply < free else price
        return JoinPrice(due, price, fee, supply, free, to_checksum_address(currency))

    # -- one mint ------------------------------------------------------------------------------

    def estimate_join_gas(self, sender: str, recipient: str, value: int) -> int | None:
        """eth_estimateGas for joinSpace(recipient) with headroom, or None if it would revert."""
        transaction = {
            "from": sender,
            "to": self.address,
            "value": hex(value),
            "data": calldata("joinSpace(address)", recipient),
        }
        try:
            estimate = int(self.rpc.call("eth_estimateGas", transaction), 16)
        except RpcError:
            return None
        return min(int(estimate * GAS_HEADROOM) + 5_000, SDK_GAS_LIMIT)

    def mint(
        self,
        recipient: str,
        signer_private_key: bytes | str,
        timeout: float = 60.0,
        poll_interval: float = 0.1,
    ) -> MintResult:
        """Mint one membership for `recipient`, paid by the signer; wait for and check it."""
        recipient = to_checksum_address(recipient)
        account = Account.from_key(signer_private_key)
        price = self.join_price()
        value = price.value_wei
        chain_id = int(self.rpc.call("eth_chainId"), 16)
        nonce = int(self.rpc.call("eth_getTransactionCount", account.address, "pending"), 16)
        gas = self.estimate_join_gas(account.address, recipient, value) or SDK_GAS_LIMIT
        signed = sign_join(
            bytes(account.key),
            chain_id=chain_id,
            space_address=self.address,
            recipient=recipient,
            nonce=nonce,
            value=value,
            gas=gas,
            fees=read_fees(self.rpc),
        )
        self.rpc.call("eth_sendRawTransaction", signed.raw)
        logger.info("joinSpace(%s) sent in %s", recipient, signed.hash)

        deadline = time.monotonic() + timeout
        receipt = None
        while receipt is None:
            receipt = self.rpc.call("eth_getTransactionReceipt", signed.hash)
            if receipt is None:
                if time.monotonic() > deadline:
                    raise MintError(
                        f"joinSpace({recipient}) {signed.hash} not confirmed in {timeout} s",
                        recipient,
                    )
                time.sleep(poll_interval)

        block = int(receipt["blockNumber"], 16)
        if int(receipt["status"], 16) != 1:
            call = {
                "from": account.address,
                "to": self.address,
                "value": hex(value),
                "data": calldata("joinSpace(address)", recipient),
            }
            reason = describe_revert(revert_data(self.rpc, call, max(block - 1, 0)))
            raise MintError(f"joinSpace({recipient}) {signed.hash} reverted: {reason}", recipient)
        token_id = issued_token(receipt, self.address, recipient)
        if token_id is None:
            raise MintError(
                f"joinSpace({recipient}) {signed.hash} succeeded without a "
                "MembershipTokenIssued log for that recipient",
                recipient,
            )
        logger.info("membership token %d issued to %s in block %d", token_id, recipient, block)
        return MintResult(recipient, token_id, signed.hash, block)
