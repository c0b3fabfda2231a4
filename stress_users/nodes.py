"""Which River nodes a run talks to: the given URLs, or the environment's operational nodes.

With `--river-node-urls` (RIVER_NODE_URLS) those are used as given. Otherwise the nodes are
read once per process from the River registry contract on the River chain
(`river_client.chain.registry.operational_node_urls`), at `--river-rpc-url` or the
environment's preset RPC; each client then picks one of them at random, as the SDK does.
"""

from __future__ import annotations

import logging

from stress_users.config import RunConfig

logger = logging.getLogger(__name__)

_discovered: dict[tuple[str, str], list[str]] = {}


def node_urls(config: RunConfig) -> list[str]:
    if config.river_node_urls:
        return list(config.river_node_urls)
    key = (config.river_env, config.river_rpc_url)
    if key not in _discovered:
        from river_client.chain.environments import environment
        from river_client.chain.registry import operational_node_urls

        preset = environment(config.river_env)
        rpc_url = config.river_rpc_url or preset.river_rpc_url
        if not preset.river_registry:
            raise RuntimeError(f"RIVER_ENV {config.river_env} has no River registry")
        urls = list(operational_node_urls(rpc_url, preset.river_registry))
        if not urls:
            raise RuntimeError(f"no operational River node in the registry at {rpc_url}")
        logger.info("%d operational River nodes in %s", len(urls), config.river_env)
        _discovered[key] = urls
    return _discovered[key]
