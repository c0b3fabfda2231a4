"""Transactions: signing equals eth-account's, fees, send-error classification."""

from __future__ import annotations

from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from river_client.chain.abi import calldata, describe_revert, selector
from river_client.chain.transactions import Fees, classify_send_error, sign_join
from wallet_tools.derivation import HDWallets

KEY = HDWallets("test test test test test test test test test test test junk").wallet(1)
SPACE = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
RECIPIENT = "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"

uint = st.integers(min_value=0, max_value=2**64)


@settings(max_examples=40, deadline=None)
@given(chain_id=st.integers(1, 2**32), nonce=uint, value=uint, gas=st.integers(21_000, 2**30),
       tip=uint, extra=uint)  # fmt: skip
def test_signed_join_is_byte_identical_to_eth_account(
    chain_id: int, nonce: int, value: int, gas: int, tip: int, extra: int
) -> None:
    fees = Fees(1, 0, tip, tip + extra)
    ours = sign_join(
        KEY.private_key,
        chain_id=chain_id,
        space_address=SPACE,
        recipient=RECIPIENT,
        nonce=nonce,
        value=value,
        gas=gas,
        fees=fees,
    )
    reference = Account.sign_transaction(
        {
            "type": 2,
            "chainId": chain_id,
            "nonce": nonce,
            "to": SPACE,
            "value": value,
            "gas": gas,
            "maxFeePerGas": fees.max_fee_per_gas,
            "maxPriorityFeePerGas": fees.max_priority_fee_per_gas,
            "data": calldata("joinSpace(address)", RECIPIENT),
        },
        KEY.private_key,
    )
    assert ours.raw == "0x" + bytes(reference.raw_transaction).hex()
    assert ours.hash == "0x" + bytes(reference.hash).hex()
    assert Account.recover_transaction(ours.raw) == KEY.address


def test_replacement_fees_rise_by_at_least_an_eighth() -> None:
    old = Fees(10, 100, 1_000, 3_000)
    bumped = old.bumped()
    assert bumped.max_priority_fee_per_gas >= 1_125 and bumped.max_fee_per_gas >= 3_375
    current = Fees(11, 5_000, 2_000, 12_000)
    assert old.bumped(current).max_fee_per_gas == 12_000
    assert old.bumped(current).block_number == 11


def test_send_errors_are_classified_across_node_dialects() -> None:
    assert classify_send_error("nonce too low: next nonce 5, tx nonce 3") == "nonce_too_low"
    assert classify_send_error("NonceTooLow") == "nonce_too_low"
    assert classify_send_error("replacement transaction underpriced") == "underpriced"
    assert classify_send_error("already known") == "already_known"
    assert classify_send_error("insufficient funds for gas * price + value") == "other"


def test_reverts_are_named() -> None:
    assert describe_revert(selector("Membership__Banned()")) == "Membership__Banned()"
    assert describe_revert("0x") == "reverted without data"
    assert describe_revert("0xdeadbeef") == "custom error 0xdeadbeef"
    error_string = selector("Error(string)") + calldata("f(string)", "nope")[10:]
    assert describe_revert(error_string) == "Error('nope')"
