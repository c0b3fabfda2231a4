"""Compile the devnet's Solidity contracts offline with solcjs and keep their artifacts.

The compiler is the npm package `solc` under `node/node_modules` (installed by `make setup`),
driven through its JavaScript API by `compile.mjs` (solc standard-JSON in, out). Each contract
`<Name>.sol` in this folder has its artifact `<Name>.json` beside it: ABI, creation and runtime
bytecode, method identifiers, the compiler version and the exact settings used, and the SHA-256
of the source, so anyone can rebuild it and compare (`python -m devnet.contracts`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

CONTRACTS_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = CONTRACTS_DIR.parents[1]
NODE_DIR = PROJECT_ROOT / "node"
COMPILE_SCRIPT = CONTRACTS_DIR / "compile.mjs"
CONTRACT_NAMES = ("SpaceMembership", "RiverRegistry")

# One set of settings for every contract; changing them changes every artifact.
SOLC_SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "cancun",
    "outputSelection": {
        "*": {
            "*": [
                "abi",
                "evm.bytecode.object",
                "evm.deployedBytecode.object",
                "evm.methodIdentifiers",
            ]
        }
    },
}


class CompileError(RuntimeError):
    """solcjs is missing or rejected the source; the message carries the compiler's errors."""


def source_path(name: str) -> Path:
    return CONTRACTS_DIR / f"{name}.sol"


def artifact_path(name: str) -> Path:
    return CONTRACTS_DIR / f"{name}.json"


def compile_contract(name: str, node_dir: Path = NODE_DIR) -> dict[str, Any]:
    """Compile `<name>.sol` now and return its artifact (same shape as the committed JSON)."""
    if name not in CONTRACT_NAMES:
        raise CompileError(f"unknown contract {name!r}; known: {', '.join(CONTRACT_NAMES)}")
    node = shutil.which("node")
    if node is None:
        raise CompileError("`node` is not on the PATH; solcjs needs Node.js 20 or newer")
    if not (node_dir / "node_modules" / "solc").is_dir():
        raise CompileError(f"solc not installed under {node_dir}/node_modules; run `make setup`")

    source = source_path(name).read_text()
    request = {
        "language": "Solidity",
        "sources": {f"{name}.sol": {"content": source}},
        "settings": SOLC_SETTINGS,
    }
    completed = subprocess.run(
        [node, str(COMPILE_SCRIPT), str(node_dir)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if completed.returncode != 0:
        raise CompileError(f"solcjs exited with {completed.returncode}: {completed.stderr.strip()}")
    reply = json.loads(completed.stdout)
    output = reply["output"]
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise CompileError("; ".join(e.get("formattedMessage", e["message"]) for e in errors))

    contract = output["contracts"][f"{name}.sol"][name]
    return {
        "contractName": name,
        "sourceName": f"{name}.sol",
        "sourceSha256": hashlib.sha256(source.encode()).hexdigest(),
        "compiler": {"name": "solcjs", "version": reply["version"], "settings": SOLC_SETTINGS},
        "abi": contract["abi"],
        "bytecode": "0x" + contract["evm"]["bytecode"]["object"],
        "deployedBytecode": "0x" + contract["evm"]["deployedBytecode"]["object"],
        "methodIdentifiers": contract["evm"]["methodIdentifiers"],
    }


def write_artifact(name: str) -> Path:
    """Recompile `<name>.sol` and write its artifact JSON beside it."""
    built = compile_contract(name)
    path = artifact_path(name)
    path.write_text(json.dumps(built, indent=2, sort_keys=True) + "\n")
    return path


def load_artifact(name: str = "SpaceMembership") -> dict[str, Any]:
    """The committed artifact of a contract (no compiler needed)."""
    path = artifact_path(name)
    if not path.is_file():
        raise CompileError(f"no artifact at {path}; run `python -m devnet.contracts`")
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded
