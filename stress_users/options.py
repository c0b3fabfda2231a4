"""Locust command-line options of the chat run, with the TypeScript stress test's variables.

Each option also reads the environment variable the TypeScript test uses (given in brackets),
so `STRESS_DURATION=60 SESSION_ID=abc locust ...` behaves like the TS run; Locust config files
(`locust.conf`, `[tool.locust]`) and the web UI's form work as for any Locust option.

    --stress-duration       [STRESS_DURATION]       chat phase length in seconds (default 120)
    --session-id            [SESSION_ID]            run's session id (default: new at each start)
    --clients-count         [CLIENTS_COUNT]         followers using HD wallets 1..N (default: -u)
    --random-clients-count  [RANDOM_CLIENTS_COUNT]  followers with fresh wallets each run
    --space-id              [SPACE_ID]              the space (64 hex, starts with 10)
    --channel-ids           [CHANNEL_IDS]           comma list of channels to chat in
    --announce-channel-id   [ANNOUNCE_CHANNEL_ID]   default: the space's default channel
    --river-env             [RIVER_ENV]             local, alpha, beta, gamma, delta, omega
    --river-node-urls       [RIVER_NODE_URLS]       comma list; else discovered on River chain
    --base-rpc-url          [BASE_CHAIN_RPC_URL]    Base chain RPC (memberships)
    --river-rpc-url         [RIVER_CHAIN_RPC_URL]   River chain RPC (node registry)
    --chat-wait-ms          [CHAT_WAIT_MS]          max wait between messages; default
                                                    2000*CLIENTS_COUNT/channels (TS pacing)
    --mint-in-flight        [MINT_IN_FLIGHT]        mint transactions in flight (default 16)
    --signal-timeout        [SIGNAL_TIMEOUT]        follower wait for the signal, seconds;
                                                    default max(duration, 20)
    --key-wait              [KEY_WAIT]              seconds a follower waits for a channel's
                                                    group key before creating its own (60)

RIVER_NODE_URL, BASE_RPC_URL and RIVER_RPC_URL (the local stack's `.devnet/env` names) stand in
for RIVER_NODE_URLS, BASE_CHAIN_RPC_URL and RIVER_CHAIN_RPC_URL when those are unset.
The mnemonic is deliberately not an option: see `stress_users.config`.
"""

from __future__ import annotations

import os
from typing import Any

from stress_users.config import KEY_WAIT_S, RIVER_ENVIRONMENTS

# The local stack's environment file uses these shorter names.
ENV_ALIASES = {
    "RIVER_NODE_URLS": "RIVER_NODE_URL",
    "BASE_CHAIN_RPC_URL": "BASE_RPC_URL",
    "RIVER_CHAIN_RPC_URL": "RIVER_RPC_URL",
}


def apply_env_aliases(environ: Any = None) -> None:
    """Let the short names stand in for the options' variables when those are unset."""
    env = os.environ if environ is None else environ
    for name, alias in ENV_ALIASES.items():
        if not env.get(name) and env.get(alias):
            env[name] = env[alias]


def add_options(parser: Any) -> None:
    """Register the run's options on Locust's parser (an `init_command_line_parser` listener)."""
    apply_env_aliases()
    group = parser.add_argument_group("River chat run (towns-stress)")
    group.add_argument(
        "--stress-duration",
        type=float,
        env_var="STRESS_DURATION",
        default=120.0,
        help="Chat phase length in seconds, from the signal on.",
    )
    group.add_argument(
        "--session-id",
        env_var="SESSION_ID",
        default="",
        help="Session id posted in the kickoff and every check-in; new for each start if empty.",
    )
    group.add_argument(
        "--clients-count",
        type=int,
        env_var="CLIENTS_COUNT",
        default=None,
        help="Followers with HD wallets 1..N (default: Locust users minus random clients).",
    )
    group.add_argument(
        "--random-clients-count",
        type=int,
        env_var="RANDOM_CLIENTS_COUNT",
        default=0,
        help="Extra followers whose wallets are new in each session (minted every run).",
    )
    group.add_argument("--space-id", env_var="SPACE_ID", default="", help="Space stream id.")
    group.add_argument(
        "--channel-ids", env_var="CHANNEL_IDS", default="", help="Comma list of channel ids."
    )
    group.add_argument(
        "--announce-channel-id",
        env_var="ANNOUNCE_CHANNEL_ID",
        default="",
        help="Channel of the kickoff and the signal (default: the space's default channel).",
    )
    group.add_argument(
        "--river-env",
        env_var="RIVER_ENV",
        default="local",
        choices=RIVER_ENVIRONMENTS,
        help="River environment whose chains and nodes to use.",
    )
    group.add_argument(
        "--river-node-urls",
        env_var="RIVER_NODE_URLS",
        default="",
        help="Comma list of River node URLs (default: discovered from the River registry).",
    )
    group.add_argument(
        "--base-rpc-url",
        env_var="BASE_CHAIN_RPC_URL",
        default="",
        help="Base chain JSON-RPC URL (default: the environment's preset).",
    )
    group.add_argument(
        "--river-rpc-url",
        env_var="RIVER_CHAIN_RPC_URL",
        default="",
        help="River chain JSON-RPC URL (default: the environment's preset).",
    )
    group.add_argument(
        "--chat-wait-ms",
        type=float,
        env_var="CHAT_WAIT_MS",
        default=None,
        help="Max random wait between a follower's messages (default 2000*CLIENTS_COUNT/channels).",
    )
    group.add_argument(
        "--mint-in-flight",
        type=int,
        env_var="MINT_IN_FLIGHT",
        default=16,
        help="Membership mint transactions the root keeps in flight.",
    )
    group.add_argument(
        "--signal-timeout",
        type=float,
        env_var="SIGNAL_TIMEOUT",
        default=None,
        help="Seconds a follower waits for MEMBERSHIPS_MINTED (default max(duration, 20)).",
    )
    group.add_argument(
        "--key-wait",
        type=float,
        env_var="KEY_WAIT",
        default=KEY_WAIT_S,
        help="Seconds a follower waits for a channel's group key (soliciting it) before it "
        "creates and shares its own; 0 creates at once, as the SDK does.",
    )
