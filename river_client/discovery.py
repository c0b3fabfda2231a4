"""Which River nodes to talk to: a static URL list, or the River registry's operational nodes.

A static list ("https://a:5170,https://b:5171" or a list of URLs) is used as given: River
nodes forward requests for streams they do not host, so any node serves any client. Without
one, the node list is read from the River registry contract on the River chain (nodes with
status Operational only, `river_client.chain.registry`), with the RPC URL and registry address
of a public environment preset (alpha, beta, gamma, delta, omega; `river_client.chain.
environments`) unless given explicitly. A client then uses one node picked at random, as the
Towns SDK does.

    urls = node_urls(environment="gamma")
    client = RiverClient(key, pick_node(urls))
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)


def parse_node_urls(nodes: str | Sequence[str]) -> list[str]:
    """A clean list of node URLs from a comma-separated string or a list; ValueError if bad."""
    items = nodes.split(",") if isinstance(nodes, str) else list(nodes)
    urls: list[str] = []
    for item in items:
        url = item.strip().rstrip("/")
        if not url:
            continue
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not a River node URL: {item!r}; expected http(s)://host[:port]")
        if url not in urls:
            urls.append(url)
    return urls


def registry_node_urls(river_rpc_url: str, registry_address: str) -> list[str]:
    """The URLs of the registry's operational nodes, sorted (one River-chain read)."""
    from river_client.chain.registry import operational_node_urls

    urls = sorted(operational_node_urls(river_rpc_url, registry_address))
    logger.info("%d operational River nodes in registry %s", len(urls), registry_address)
    return urls


def node_urls(
    nodes: str | Sequence[str] | None = None,
    *,
    environment: str | None = None,
    river_rpc_url: str | None = None,
    registry_address: str | None = None,
) -> list[str]:
    """The nodes a run uses: `nodes` when given, else the registry of `environment`.

    `river_rpc_url` / `registry_address` override the environment preset's values.
    """
    if nodes:
        urls = parse_node_urls(nodes)
        if urls:
            return urls
    if environment is not None:
        from river_client.chain.environments import environment as preset_of

        preset = preset_of(environment)
        river_rpc_url = river_rpc_url or preset.river_rpc_url
        registry_address = registry_address or preset.river_registry
    if not river_rpc_url or not registry_address:
        raise ValueError(
            "no River nodes: give node URLs, or an environment (alpha, beta, gamma, delta, "
            "omega), or a River chain RPC URL and registry address"
        )
    urls = registry_node_urls(river_rpc_url, registry_address)
    if not urls:
        raise ValueError(f"the River registry {registry_address} lists no operational node")
    return urls


def pick_node(urls: Sequence[str], rng: random.Random | None = None) -> str:
    """One node URL at random (the SDK's choice for each client)."""
    if not urls:
        raise ValueError("no node URL to pick from")
    return (rng or random).choice(list(urls))
