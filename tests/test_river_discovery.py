"""Node discovery: static URL lists, environment presets and the registry read."""

from __future__ import annotations

import random

import pytest

from river_client import discovery


def test_static_lists_are_cleaned_and_deduplicated() -> None:
    urls = discovery.node_urls(" https://a:5170/, https://b:5171,,https://a:5170")
    assert urls == ["https://a:5170", "https://b:5171"]
    assert discovery.node_urls(["http://127.0.0.1:5157"]) == ["http://127.0.0.1:5157"]
    with pytest.raises(ValueError, match="'ftp://x'"):
        discovery.node_urls("ftp://x")


def test_environment_preset_names_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[str, str]] = []

    def fake_registry(rpc_url: str, registry: str) -> list[str]:
        asked.append((rpc_url, registry))
        return ["https://river1.example:443"]

    monkeypatch.setattr(discovery, "registry_node_urls", fake_registry)
    assert discovery.node_urls(environment="omega") == ["https://river1.example:443"]
    assert asked[0][1].startswith("0x") and asked[0][0].startswith("http")
    discovery.node_urls(
        environment="gamma", river_rpc_url="http://127.0.0.1:9", registry_address="0x1"
    )
    assert asked[1] == ("http://127.0.0.1:9", "0x1")


def test_no_source_and_pick() -> None:
    with pytest.raises(ValueError, match="no River nodes"):
        discovery.node_urls()
    urls = ["https://a", "https://b", "https://c"]
    picks = {discovery.pick_node(urls, random.Random(seed)) for seed in range(20)}
    assert picks == set(urls)
