"""Towns environment presets and their RPC overrides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from river_client.chain.environments import ENVIRONMENTS, environment


def test_presets_match_the_towns_deployments() -> None:
    assert set(ENVIRONMENTS) == {"alpha", "beta", "gamma", "delta", "omega", "local"}
    beta = environment("beta", env={})
    assert beta.base_chain_id == 84532 and beta.river_chain_id == 6524490
    assert beta.base_rpc_url == "https://sepolia.base.org"
    assert beta.river_registry == "0x94bdc7016057fc47cC006Bc837bF0Aed5Dc5C6D6"
    assert beta.space_factory == "0x5A077e686545c541476D3a99711dE42339357467"
    omega = environment("OMEGA", env={})
    assert (omega.base_chain_id, omega.river_chain_id) == (8453, 550)
    assert not omega.is_testnet and beta.is_testnet


def test_rpc_urls_can_be_overridden() -> None:
    env = {"BASE_SEPOLIA_RPC_URL": "https://base.example", "RIVER_CHAIN_RPC_URL": "https://r.ex"}
    gamma = environment("gamma", env=env)
    assert (gamma.base_rpc_url, gamma.river_rpc_url) == ("https://base.example", "https://r.ex")
    omega = environment("omega", env={"BASE_MAINNET_RPC_URL": "https://main.example"})
    assert omega.base_rpc_url == "https://main.example"
    assert environment("omega", env=env).base_rpc_url == "https://mainnet.base.org"


def test_local_reads_the_devnet_chain_file(tmp_path: Path) -> None:
    assert environment("local", env={}, devnet_state_dir=tmp_path).space_address is None
    chain = {"rpc_url": "http://127.0.0.1:9999", "chain_id": 31337, "space_address": "0xabc"}
    (tmp_path / "chain.json").write_text(json.dumps(chain))
    local = environment("local", env={}, devnet_state_dir=tmp_path)
    assert local.base_rpc_url == "http://127.0.0.1:9999" and local.space_address == "0xabc"


def test_unknown_environment_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown RIVER_ENV 'zeta'; known: alpha, beta"):
        environment("zeta")
