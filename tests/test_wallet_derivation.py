"""HD derivation and mnemonics against the published vectors (BIP-39 / BIP-32 / BIP-44)."""

from __future__ import annotations

import pytest
from eth_account import Account

from wallet_tools.derivation import HDWallets, Wallet, wallet_from_private_key
from wallet_tools.exceptions import InvalidMnemonicError, InvalidPrivateKeyError, InvalidRangeError
from wallet_tools.mnemonic import mnemonic_to_seed, new_mnemonic, validate_mnemonic

TEST_MNEMONIC = "test test test test test test test test test test test junk"
VECTORS = [
    (
        0,
        "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
        "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    ),
    (
        1,
        "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    ),
    (
        2,
        "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
        "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    ),
    (
        3,
        "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
        "7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    ),
]


@pytest.mark.parametrize(("index", "address", "key"), VECTORS)
def test_published_vectors(index: int, address: str, key: str) -> None:
    wallet = HDWallets(TEST_MNEMONIC).wallet(index)
    assert wallet.address == address
    assert wallet.private_key.hex() == key
    assert wallet.account.address == address


def test_range_is_end_exclusive_and_matches_eth_account() -> None:
    Account.enable_unaudited_hdwallet_features()
    phrase = new_mnemonic(24)
    wallets = HDWallets(phrase).wallets(5, 9)
    assert [w.index for w in wallets] == [5, 6, 7, 8]
    for wallet in wallets:
        reference = Account.from_mnemonic(phrase, account_path=f"m/44'/60'/0'/0/{wallet.index}")
        assert wallet.address == reference.address


def test_other_base_path_and_seed_vector() -> None:
    wallets = HDWallets(TEST_MNEMONIC, base_path="m/44'/60'/0'/1337")
    assert wallets.wallet(0).address == "0x1A1723A048a9229b7c71C9163393eFca5D22BCCA"
    assert wallets.wallet(1).address == "0x03E9A16De10ff6042782B6FC43d915b8e81fbF3B"
    assert mnemonic_to_seed(TEST_MNEMONIC).hex().startswith("9dfc3c64c2f8bede1533b6a79f8570e5")


def test_key_never_in_repr() -> None:
    wallet = HDWallets(TEST_MNEMONIC).wallet(0)
    assert VECTORS[0][2] not in repr(wallet) and VECTORS[0][2] not in str(wallet)
    assert "test" not in repr(HDWallets(TEST_MNEMONIC))
    assert isinstance(wallet, Wallet)


def test_validate_normalises_case_and_spaces() -> None:
    assert (
        validate_mnemonic("  Test TEST test test test test test test test test test   junk ")
        == TEST_MNEMONIC
    )


def test_unknown_words_are_named() -> None:
    with pytest.raises(InvalidMnemonicError, match=r"'tset' \(word 2\).*'junkk' \(word 12\)"):
        validate_mnemonic("test tset test test test test test test test test test junkk")


def test_bad_checksum_and_word_count() -> None:
    with pytest.raises(InvalidMnemonicError, match="checksum"):
        validate_mnemonic("test test test test test test test test test test test test")
    with pytest.raises(InvalidMnemonicError, match="has 11"):
        validate_mnemonic("test test test test test test test test test test junk")


def test_new_mnemonic_lengths() -> None:
    assert len(new_mnemonic().split()) == 12
    assert len(validate_mnemonic(new_mnemonic(24)).split()) == 24
    with pytest.raises(InvalidMnemonicError, match="13-word"):
        new_mnemonic(13)


def test_bad_indices() -> None:
    wallets = HDWallets(TEST_MNEMONIC)
    with pytest.raises(InvalidRangeError, match=r"--start \(5\).*--end \(2\)"):
        wallets.wallets(5, 2)
    with pytest.raises(InvalidRangeError, match="-1"):
        wallets.wallets(-1, 2)
    with pytest.raises(InvalidRangeError):
        wallets.wallet(2**31)


def test_wallet_from_private_key() -> None:
    wallet = wallet_from_private_key("0x" + VECTORS[1][2])
    assert wallet.address == VECTORS[1][1]
    with pytest.raises(InvalidPrivateKeyError):
        wallet_from_private_key("0x1234")
    with pytest.raises(InvalidPrivateKeyError, match="not hex"):
        wallet_from_private_key("zz" * 32)
    with pytest.raises(InvalidPrivateKeyError):
        wallet_from_private_key(b"\x00" * 32)
