"""The chat run's configuration, read from Locust's parsed options and checked once.

Every option is declared in `stress_users.options` (so it works from the command line, from
`LOCUST_*`-style config files, from the TypeScript stress test's environment variables and from
the web UI); this module turns the parsed values into a `RunConfig` and refuses bad ones with
an `OptionError` that names the option, its environment variable, the bad value and what
would be valid.

Wallets follow the TypeScript test: HD wallets of MNEMONIC at m/44'/60'/0'/0/i, index 0 is
the root (the master), followers use indices 1..CLIENTS_COUNT. Random clients, which need a
fresh membership in every run, use HD indices that depend on the session id (see
`random_client_index`), so no private key ever travels between Locust processes.

The mnemonic is not an option: every process reads MNEMONIC from its own environment
(`mnemonic_from_environment`), so it never crosses the master-worker channel and never
appears in the web UI or in logs.
"""

from __future__ import annotations

import os
import re
import zlib
from dataclasses import dataclass, field
from typing import Any

RIVER_ENVIRONMENTS = ("local", "alpha", "beta", "gamma", "delta", "omega")
STREAM_ID_HEX = re.compile(r"^[0-9a-fA-F]{64}$")
SESSION_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
RANDOM_CLIENTS_MAX = 1024
RANDOM_INDEX_BASE = 1 << 30
MIN_SIGNAL_TIMEOUT_S = 20.0
KEY_WAIT_S = 60.0


class OptionError(ValueError):
    """An option is missing or invalid; the message names it and what would be valid."""

    def __init__(self, option: str, env_var: str | None, message: str) -> None:
        where = f"--{option}" + (f" ({env_var})" if env_var else "")
        super().__init__(f"{where}: {message}")
        self.option = option
        self.env_var = env_var


@dataclass(frozen=True)
class RunConfig:
    """One chat run's shape, the same on every process once the test has started."""

    session_id: str
    duration_s: float
    clients_count: int
    random_clients_count: int
    space_id: str
    channel_ids: tuple[str, ...]
    announce_channel_id: str
    river_env: str
    river_node_urls: tuple[str, ...]
    base_rpc_url: str
    river_rpc_url: str
    chat_wait_ms: float | None
    mint_in_flight: int
    signal_timeout_s: float | None = None
    key_wait_s: float = KEY_WAIT_S
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def total_followers(self) -> int:
        """Locust users the run expects: HD followers plus random clients."""
        return self.clients_count + self.random_clients_count

    @property
    def max_chat_wait_ms(self) -> float:
        """Upper bound of the random wait between chat messages (the TS pacing by default)."""
        if self.chat_wait_ms is not None:
            return self.chat_wait_ms
        return 2000.0 * self.total_followers / max(1, len(self.channel_ids))

    @property
    def follower_signal_timeout_s(self) -> float:
        """How long a follower waits for the signal: max(duration, 20 s) unless overridden."""
        if self.signal_timeout_s is not None:
            return self.signal_timeout_s
        return max(self.duration_s, MIN_SIGNAL_TIMEOUT_S)

    def wallet_index(self, slot: int) -> int:
        """HD index of the follower in `slot` (0-based); random clients come last."""
        if slot < self.clients_count:
            return slot + 1
        return random_client_index(self.session_id, slot - self.clients_count)


def random_client_index(session_id: str, k: int) -> int:
    """A non-hardened HD index, fresh for every session, for random client `k`."""
    block = zlib.crc32(session_id.encode()) % (1 << 19)
    return RANDOM_INDEX_BASE + block * RANDOM_CLIENTS_MAX + k


def mnemonic_from_environment(environ: dict[str, str] | None = None) -> str:
    """MNEMONIC from this process's environment, normalised and checked (never logged)."""
    env = os.environ if environ is None else environ
    phrase = env.get("MNEMONIC", "").strip()
    if not phrase:
        raise OptionError(
            "mnemonic",
            "MNEMONIC",
            "not set; export the test wallets' BIP-39 phrase in every process",
        )
    from wallet_tools.exceptions import InvalidMnemonicError
    from wallet_tools.mnemonic import validate_mnemonic

    try:
        return validate_mnemonic(phrase)
    except InvalidMnemonicError as exc:
        raise OptionError("mnemonic", "MNEMONIC", f"not a valid BIP-39 phrase: {exc}") from None


def _stream_id(option: str, env_var: str, value: str, kind: str) -> str:
    value = value.strip().lower().removeprefix("0x")
    if not STREAM_ID_HEX.match(value):
        raise OptionError(option, env_var, f"{value!r} is not a {kind} id (64 hex characters)")
    return value


def _urls(option: str, env_var: str, value: str) -> tuple[str, ...]:
    urls = tuple(part.strip().rstrip("/") for part in value.split(",") if part.strip())
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise OptionError(option, env_var, f"{url!r} is not an http(s) URL")
    return urls


def _positive(option: str, env_var: str, value: object, kind: type = float) -> float:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise OptionError(option, env_var, f"{value!r} is not a number") from None
    if number <= 0:
        raise OptionError(option, env_var, f"{value!r} must be greater than 0")
    return float(number)


def _preset(river_env: str) -> Any:
    """The environment's preset chains and registry (`river_client.chain.environments`)."""
    from river_client.chain.environments import environment

    return environment(river_env)


def config_from_options(options: Any, *, users: int | None = None) -> RunConfig:
    """Build and check the run's configuration; raises OptionError naming the bad option.

    `users` is Locust's -u/--users when known: it must match the followers the run expects.
    """
    duration = _positive("stress-duration", "STRESS_DURATION", options.stress_duration)

    random_count = options.random_clients_count
    if random_count is None or int(random_count) < 0 or int(random_count) > RANDOM_CLIENTS_MAX:
        raise OptionError(
            "random-clients-count",
            "RANDOM_CLIENTS_COUNT",
            f"{random_count!r} must be between 0 and {RANDOM_CLIENTS_MAX}",
        )
    random_count = int(random_count)

    if options.clients_count in (None, "") and users:
        clients = users - random_count
    else:
        try:
            clients = int(options.clients_count)
        except (TypeError, ValueError):
            raise OptionError(
                "clients-count", "CLIENTS_COUNT", f"{options.clients_count!r} is not a number"
            ) from None
    if clients < 0 or clients + random_count < 1:
        raise OptionError(
            "clients-count",
            "CLIENTS_COUNT",
            f"{clients} followers (+{random_count} random); the run needs at least 1 (or -u)",
        )
    if users and clients + random_count != users:
        raise OptionError(
            "users",
            "LOCUST_USERS",
            f"{users} Locust users but CLIENTS_COUNT {clients} + RANDOM_CLIENTS_COUNT "
            f"{random_count} = {clients + random_count} followers; make them equal",
        )

    river_env = (options.river_env or "").strip().lower()
    if river_env not in RIVER_ENVIRONMENTS:
        raise OptionError(
            "river-env", "RIVER_ENV", f"{river_env!r}; valid: {', '.join(RIVER_ENVIRONMENTS)}"
        )
    node_urls = _urls("river-node-urls", "RIVER_NODE_URLS", options.river_node_urls or "")
    base_rpc = _urls("base-rpc-url", "BASE_CHAIN_RPC_URL", options.base_rpc_url or "")
    river_rpc = _urls("river-rpc-url", "RIVER_CHAIN_RPC_URL", options.river_rpc_url or "")
    preset = _preset(river_env)
    if not base_rpc:
        base_rpc = (preset.base_rpc_url,)
    if not river_rpc and preset.river_registry:
        river_rpc = (preset.river_rpc_url,)
    if not node_urls and not (river_rpc and preset.river_registry):
        raise OptionError(
            "river-node-urls",
            "RIVER_NODE_URLS",
            f"not set, and RIVER_ENV {river_env!r} has no River registry to discover nodes from",
        )

    if not options.space_id:
        raise OptionError("space-id", "SPACE_ID", "not set; give the space the run chats in")
    space_id = _stream_id("space-id", "SPACE_ID", options.space_id, "space")
    if not space_id.startswith("10"):
        raise OptionError("space-id", "SPACE_ID", f"{space_id!r} does not start with 10 (space)")

    channels = tuple(
        _stream_id("channel-ids", "CHANNEL_IDS", part, "channel")
        for part in (options.channel_ids or "").split(",")
        if part.strip()
    )
    if not channels:
        raise OptionError("channel-ids", "CHANNEL_IDS", "not set; give at least one channel id")
    for channel in channels:
        if not channel.startswith("20"):
            raise OptionError(
                "channel-ids", "CHANNEL_IDS", f"{channel!r} does not start with 20 (channel)"
            )
    if options.announce_channel_id:
        announce = _stream_id(
            "announce-channel-id", "ANNOUNCE_CHANNEL_ID", options.announce_channel_id, "channel"
        )
    else:
        announce = "20" + space_id[2:]

    session_id = (options.session_id or "").strip()
    if session_id and not SESSION_ID.match(session_id):
        raise OptionError(
            "session-id", "SESSION_ID", f"{session_id!r}; use 1-64 letters, digits, '_', '-', '.'"
        )

    chat_wait = options.chat_wait_ms
    chat_wait_ms = None if chat_wait in (None, "") else float(chat_wait)
    if chat_wait_ms is not None and chat_wait_ms < 0:
        raise OptionError("chat-wait-ms", "CHAT_WAIT_MS", f"{chat_wait_ms} must be 0 or more")
    in_flight = int(_positive("mint-in-flight", "MINT_IN_FLIGHT", options.mint_in_flight, int))
    timeout = options.signal_timeout
    signal_timeout = (
        None if timeout in (None, "") else _positive("signal-timeout", "SIGNAL_TIMEOUT", timeout)
    )

    key_wait = getattr(options, "key_wait", KEY_WAIT_S)
    try:
        key_wait_s = KEY_WAIT_S if key_wait in (None, "") else float(key_wait)
    except ValueError:
        key_wait_s = -1.0
    if not key_wait_s >= 0:
        raise OptionError("key-wait", "KEY_WAIT", f"{key_wait!r}; give seconds, 0 or more")

    return RunConfig(
        session_id=session_id,
        duration_s=duration,
        clients_count=clients,
        random_clients_count=random_count,
        space_id=space_id,
        channel_ids=channels,
        announce_channel_id=announce,
        river_env=river_env,
        river_node_urls=node_urls,
        base_rpc_url=base_rpc[0],
        river_rpc_url=river_rpc[0] if river_rpc else "",
        chat_wait_ms=chat_wait_ms,
        mint_in_flight=in_flight,
        signal_timeout_s=signal_timeout,
        key_wait_s=key_wait_s,
    )
