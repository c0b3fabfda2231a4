"""BIP-39 mnemonics: validation with precise errors, generation, and the seed.

Spec: BIP-39 (https://github.com/bitcoin/bips/blob/master/bip-0039.mediawiki), English word
list only. A phrase is NFKD-normalised, lower-cased and its words joined by single spaces; its
seed is PBKDF2-HMAC-SHA512 over that phrase with the salt "mnemonic" + passphrase and 2048
rounds, as ethers and eth-account compute it.

    phrase = validate_mnemonic("  Test test test test test test test test test test test junk")
    seed = mnemonic_to_seed(phrase)
"""

from __future__ import annotations

import hashlib
import unicodedata
from functools import lru_cache

from mnemonic import Mnemonic

from wallet_tools.exceptions import InvalidMnemonicError

WORD_COUNTS = (12, 15, 18, 21, 24)


@lru_cache(maxsize=1)
def _english() -> Mnemonic:
    return Mnemonic("english")


@lru_cache(maxsize=1)
def _word_index() -> dict[str, int]:
    return {word: i for i, word in enumerate(_english().wordlist)}


def normalise_mnemonic(phrase: str) -> str:
    """NFKD form, lower case, words separated by one space."""
    return " ".join(unicodedata.normalize("NFKD", phrase).lower().split())


def validate_mnemonic(phrase: str) -> str:
    """Return the normalised phrase, or raise InvalidMnemonicError saying what is wrong.

    The error names the unknown words (by position) or reports the bad checksum; it never
    repeats the whole phrase.
    """
    words = normalise_mnemonic(phrase).split()
    if len(words) not in WORD_COUNTS:
        raise InvalidMnemonicError(
            f"a mnemonic has 12, 15, 18, 21 or 24 words; this one has {len(words)}"
        )

    index = _word_index()
    unknown = [f"{word!r} (word {i + 1})" for i, word in enumerate(words) if word not in index]
    if unknown:
        raise InvalidMnemonicError("not in the BIP-39 English word list: " + ", ".join(unknown))

    # 11 bits per word: entropy followed by its checksum (entropy bits / 32 bits of SHA-256).
    bits = 0
    for word in words:
        bits = (bits << 11) | index[word]
    checksum_bits = len(words) * 11 // 33
    entropy_bits = len(words) * 11 - checksum_bits
    entropy = (bits >> checksum_bits).to_bytes(entropy_bits // 8, "big")
    expected = hashlib.sha256(entropy).digest()[0] >> (8 - checksum_bits)
    if bits & ((1 << checksum_bits) - 1) != expected:
        raise InvalidMnemonicError(
            f"the {len(words)}-word mnemonic has a bad checksum (its last word does not match "
            "the others); check for a mistyped or swapped word"
        )
    return " ".join(words)


def new_mnemonic(words: int = 12) -> str:
    """A fresh random mnemonic of 12 or 24 words (any BIP-39 length is accepted)."""
    if words not in WORD_COUNTS:
        raise InvalidMnemonicError(
            f"cannot make a {words}-word mnemonic; valid lengths are 12, 15, 18, 21 or 24"
        )
    return str(_english().generate(strength=words * 32 // 3))


def mnemonic_to_seed(phrase: str, passphrase: str = "") -> bytes:
    """The 64-byte BIP-39 seed of a (validated) phrase; costs ~2 ms of PBKDF2."""
    normalised = normalise_mnemonic(phrase).encode()
    salt = ("mnemonic" + unicodedata.normalize("NFKD", passphrase)).encode()
    return hashlib.pbkdf2_hmac("sha512", normalised, salt, 2048)
