"""Rebuild every contract artifact in this folder: `python -m devnet.contracts`."""

from __future__ import annotations

from devnet.contracts.build import CONTRACT_NAMES, write_artifact


def main() -> int:
    for name in CONTRACT_NAMES:
        print(f"wrote {write_artifact(name)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
