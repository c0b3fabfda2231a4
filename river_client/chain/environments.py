"""The Towns environments: chain ids, default RPC URLs and contract addresses.

Addresses are those of `@towns-protocol/generated` `config/deployments.json`; default RPC URLs
are the Towns SDK's (`townsEnv.ts`). alpha, beta, gamma and delta run on Base Sepolia (84532)
with the River testnet chain (6524490); omega is production (Base 8453, River 550). `local` is
this project's devnet: its Base RPC URL and space come from `.devnet/chain.json` when present.

RPC URLs can be overridden from the environment, as the Towns tools do:
`BASE_CHAIN_RPC_URL` / `RIVER_CHAIN_RPC_URL` for any environment, else
`BASE_SEPOLIA_RPC_URL` / `RIVER_DEVNET_RPC_URL` for the testnet ones and
`BASE_MAINNET_RPC_URL` / `RIVER_MAINNET_RPC_URL` for omega.

    env = environment("beta")
    env.base_rpc_url, env.river_registry
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

BASE_SEPOLIA = 84532
RIVER_TESTNET = 6524490
TESTNET_BASE_RPC = "https://sepolia.base.org"
TESTNET_RIVER_RPC = "https://devnet.rpc.river.build"


@dataclass(frozen=True)
class Environment:
    """One Towns environment. Addresses are None where the environment has none (local)."""

    name: str
    base_chain_id: int
    base_rpc_url: str
    river_chain_id: int
    river_rpc_url: str
    river_registry: str | None
    space_factory: str | None  # also holds WalletLink
    base_registry: str | None
    space_owner: str | None
    space_address: str | None = None  # only for local: the devnet's space

    @property
    def is_testnet(self) -> bool:
        return self.base_chain_id != 8453


def _testnet(name: str, registry: str, factory: str, base_registry: str, owner: str) -> Environment:
    return Environment(
        name, BASE_SEPOLIA, TESTNET_BASE_RPC, RIVER_TESTNET, TESTNET_RIVER_RPC,
        registry, factory, base_registry, owner,
    )  # fmt: skip


ENVIRONMENTS: dict[str, Environment] = {
    "alpha": _testnet(
        "alpha",
        "0x44354786EacBEBf981453A05728E1653Bc3c5def",
        "0xC09Ac0FFeecAaE5100158247512DC177AeacA3e3",
        "0x0230a9d28bc48a90d6f5e5112b24319ec1b14c52",
        "0x0443258849016da8Af08e2984Bce8C0ef6Cfc9A0",
    ),
    "beta": _testnet(
        "beta",
        "0x94bdc7016057fc47cC006Bc837bF0Aed5Dc5C6D6",
        "0x5A077e686545c541476D3a99711dE42339357467",
        "0x0d7eC5826626070b6a250C9878940D070128A265",
        "0xF331FeadCAf32fe659578252Cc585CF0E1E8b128",
    ),
    "gamma": _testnet(
        "gamma",
        "0xf18E98D36A6bd1aDb52F776aCc191E69B491c070",
        "0x968696BC59431Ef085441641f550C8e2Eaca8BEd",
        "0x08cC41b782F27d62995056a4EF2fCBAe0d3c266F",
        "0x9dEdb330A126C6dF2893a33018bb81aFE8573805",
    ),
    "delta": _testnet(
        "delta",
        "0x9Db19dB285cEd37099D40d27D51B75C4dFa05652",
        "0x4e652CdB4715861dDCc4dF159af32223B40c8187",
        "0xa7932228e6dAfb7A74dc8085F8bADAa993d4c592",
        "0xf3a2E75d7da3c7a7F953b63342f0709972e5002b",
    ),
    "omega": Environment(
        "omega",
        8453,
        "https://mainnet.base.org",
        550,
        "https://mainnet.rpc.river.build",
        "0x1298c03Fde548dc433a452573E36A713b38A0404",
        "0x9978c826d93883701522d2CA645d5436e5654252",
        "0x7c0422b31401C936172C897802CF0373B35B7698",
        "0x2824D1235d1CbcA6d61C00C3ceeCB9155cd33a42",
    ),
    "local": Environment(
        "local",
        31337,
        "http://127.0.0.1:8545",
        31338,
        "http://127.0.0.1:8546",
        None,
        None,
        None,
        None,
    ),
}


def _local(base: Environment, state_dir: Path) -> Environment:
    path = state_dir / "chain.json"
    if not path.is_file():
        return base
    chain = json.loads(path.read_text())
    return replace(
        base,
        base_chain_id=int(chain["chain_id"]),
        base_rpc_url=str(chain["rpc_url"]),
        space_address=str(chain["space_address"]),
    )


def environment(
    name: str,
    env: Mapping[str, str] | None = None,
    devnet_state_dir: Path = Path(".devnet"),
) -> Environment:
    """The named environment, with RPC URLs overridden from `env` (default: os.environ)."""
    key = name.strip().lower()
    if key not in ENVIRONMENTS:
        raise ValueError(f"unknown RIVER_ENV {name!r}; known: {', '.join(ENVIRONMENTS)}")
    env = os.environ if env is None else env
    chosen = ENVIRONMENTS[key]
    if key == "local":
        chosen = _local(chosen, devnet_state_dir)

    suffix = "MAINNET" if key == "omega" else "SEPOLIA"
    river_suffix = "MAINNET" if key == "omega" else "DEVNET"
    base_rpc = env.get("BASE_CHAIN_RPC_URL") or env.get(f"BASE_{suffix}_RPC_URL")
    river_rpc = env.get("RIVER_CHAIN_RPC_URL") or env.get(f"RIVER_{river_suffix}_RPC_URL")
    return replace(
        chosen,
        base_rpc_url=base_rpc or chosen.base_rpc_url,
        river_rpc_url=river_rpc or chosen.river_rpc_url,
    )
