"""The chat run's configuration: what is accepted, and errors that name the bad option.

Pure checks of `stress_users.config` (it imports nothing from Locust, so this process stays
unpatched); the same validation stops real Locust runs in tests/test_locust_run.py.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from stress_users.config import (
    RANDOM_INDEX_BASE,
    OptionError,
    config_from_options,
    mnemonic_from_environment,
    random_client_index,
)

SPACE = "10" + "ab" * 20 + "00" * 11
CHANNEL = "20" + "ab" * 20 + "cd" * 11


def options(**overrides: Any) -> SimpleNamespace:
    values: dict[str, Any] = {
        "stress_duration": 60.0,
        "session_id": "s1",
        "clients_count": None,
        "random_clients_count": 0,
        "space_id": SPACE,
        "channel_ids": f"{CHANNEL}, 0x{CHANNEL}",
        "announce_channel_id": "",
        "river_env": "local",
        "river_node_urls": "http://127.0.0.1:5157/",
        "base_rpc_url": "http://127.0.0.1:8545",
        "river_rpc_url": "",
        "chat_wait_ms": None,
        "mint_in_flight": 16,
        "signal_timeout": None,
        "key_wait": 60.0,
    }
    values.update(overrides)
    return SimpleNamespace(**values)


def test_defaults_follow_the_typescript_run() -> None:
    config = config_from_options(options(), users=10)

    assert config.clients_count == 10 and config.total_followers == 10
    assert config.channel_ids == (CHANNEL, CHANNEL)
    assert config.announce_channel_id == "20" + SPACE[2:]
    assert config.river_node_urls == ("http://127.0.0.1:5157",)
    assert config.max_chat_wait_ms == 2000 * 10 / 2
    assert config.follower_signal_timeout_s == 60.0
    assert config.key_wait_s == 60.0
    assert config_from_options(options(stress_duration=5), users=1).follower_signal_timeout_s == 20
    assert [config.wallet_index(slot) for slot in (0, 9)] == [1, 10]


def test_public_environments_use_their_presets() -> None:
    config = config_from_options(
        options(river_env="gamma", river_node_urls="", base_rpc_url=""), users=2
    )

    assert config.base_rpc_url.startswith("https://") and config.river_rpc_url.startswith("https")
    assert config.river_node_urls == ()


def test_random_clients_get_session_specific_indices_after_the_hd_followers() -> None:
    config = config_from_options(options(random_clients_count=2), users=5)

    assert config.clients_count == 3
    first, second = config.wallet_index(3), config.wallet_index(4)
    assert second == first + 1 and RANDOM_INDEX_BASE <= first < 2**31
    assert random_client_index("s1", 0) != random_client_index("s2", 0)


@pytest.mark.parametrize(
    ("overrides", "users", "named"),
    [
        ({"space_id": ""}, 3, "--space-id (SPACE_ID)"),
        ({"space_id": "20" + SPACE[2:]}, 3, "--space-id (SPACE_ID)"),
        ({"channel_ids": "20abc"}, 3, "--channel-ids (CHANNEL_IDS)"),
        ({"channel_ids": ""}, 3, "--channel-ids (CHANNEL_IDS)"),
        ({"stress_duration": 0}, 3, "--stress-duration (STRESS_DURATION)"),
        ({"clients_count": 2}, 3, "--users"),
        ({"clients_count": "many"}, None, "--clients-count (CLIENTS_COUNT)"),
        ({"random_clients_count": 5000}, 3, "--random-clients-count"),
        ({"river_env": "moon"}, 3, "--river-env (RIVER_ENV)"),
        ({"base_rpc_url": "ws://x"}, 3, "--base-rpc-url (BASE_CHAIN_RPC_URL)"),
        ({"river_node_urls": ""}, 3, "--river-node-urls (RIVER_NODE_URLS)"),
        ({"river_node_urls": "ftp://x"}, 3, "--river-node-urls (RIVER_NODE_URLS)"),
        ({"session_id": "has space"}, 3, "--session-id (SESSION_ID)"),
        ({"mint_in_flight": 0}, 3, "--mint-in-flight"),
        ({"key_wait": -1}, 3, "--key-wait (KEY_WAIT)"),
        ({"key_wait": "soon"}, 3, "--key-wait (KEY_WAIT)"),
    ],
)
def test_bad_options_are_named(overrides: dict[str, Any], users: int | None, named: str) -> None:
    with pytest.raises(OptionError) as caught:
        config_from_options(options(**overrides), users=users)

    assert str(caught.value).startswith(named)


def test_mnemonic_comes_from_the_environment_and_is_never_echoed() -> None:
    phrase = "test test test test test test test test test test test junk"
    assert mnemonic_from_environment({"MNEMONIC": f"  {phrase} "}) == phrase

    with pytest.raises(OptionError, match=r"--mnemonic \(MNEMONIC\): not set"):
        mnemonic_from_environment({})
    with pytest.raises(OptionError) as caught:
        mnemonic_from_environment({"MNEMONIC": "test " * 11 + "test"})
    assert "not a valid BIP-39 phrase" in str(caught.value)
    assert "test test" not in str(caught.value)
