"""Shared fixtures: real parts, started on 127.0.0.1 and stopped by PID whatever happens."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from devnet.anvil import Anvil


@pytest.fixture
def anvil_factory() -> Iterator[Callable[..., Anvil]]:
    """Start anvil nodes with any options; every one is stopped at teardown."""
    started: list[Anvil] = []

    def start(**options: object) -> Anvil:
        node = Anvil(**options)  # type: ignore[arg-type]
        started.append(node)
        return node.start()

    try:
        yield start
    finally:
        for node in started:
            node.stop()


@pytest.fixture
def anvil(anvil_factory: Callable[..., Anvil]) -> Anvil:
    """An automining anvil with the default test mnemonic's ten funded accounts."""
    return anvil_factory()
