"""The local chain: anvil on 127.0.0.1 with the membership contract deployed as a space.

`start_chain()` starts anvil with the devnet mnemonic (its indexes 0..9 are the funded anvil
accounts; index 0 is the stress test's root wallet), deploys `SpaceMembership` from a separate
deployer (anvil's well-known default account, funded with `anvil_setBalance`, so the devnet
wallets' nonces stay untouched), makes sure the root holds at least 10,000 ETH, and writes
`<state_dir>/chain.json` for the rest of the stack and the tests:

    {"rpc_url", "chain_id", "space_address", "space_id", "default_channel_id",
     "root_address", "deployer_address", "pid", "block_time", "mnemonic_env"}

The space id is derived from the contract address as Towns does (`river_client.chain.spaces`).
Blocks come every `block_time` seconds (2 s, like Base) unless `automine` is set.

    python -m devnet chain [--block-time 2] [--automine] [--state-dir .devnet] [--detach]
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from eth_abi import encode as abi_encode
from eth_account import Account
from eth_utils import to_checksum_address

from devnet.anvil import DEFAULT_MNEMONIC, Anvil
from devnet.contracts import load_artifact
from river_client.chain.abi import calldata
from river_client.chain.spaces import default_channel_id, space_id_from_address
from river_client.chain.transactions import read_fees
from wallet_tools.derivation import HDWallets
from wallet_tools.rpc import JsonRpc

logger = logging.getLogger(__name__)

DEVNET_MNEMONIC = "toy alien remain valid print employ age multiply claim student story aware"
DEFAULT_STATE_DIR = Path(".devnet")
ROOT_FUNDS_WEI = 10_000 * 10**18
# anvil's default account 0; only pays for the deployment and the owner's settings.
DEPLOYER_KEY = HDWallets(DEFAULT_MNEMONIC).wallet(0).private_key


class ChainStartError(RuntimeError):
    """The local chain or its space could not be set up; the message says which step."""


@dataclass
class ChainInfo:
    """Where the local chain and its space are; saved as `<state_dir>/chain.json`."""

    rpc_url: str
    chain_id: int
    space_address: str
    space_id: str
    default_channel_id: str
    root_address: str
    deployer_address: str
    pid: int | None
    block_time: float | None
    mnemonic_env: str = "DEVNET_MNEMONIC"
    anvil: Anvil | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "anvil"}

    def save(self, state_dir: Path) -> Path:
        state_dir.mkdir(parents=True, exist_ok=True)
        path = state_dir / "chain.json"
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, state_dir: Path = DEFAULT_STATE_DIR) -> ChainInfo:
        path = state_dir / "chain.json"
        if not path.is_file():
            raise ChainStartError(f"no {path}; start the chain with `python -m devnet chain`")
        data = json.loads(path.read_text())
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def transact(
    rpc: JsonRpc,
    private_key: bytes | str,
    to: str | None,
    data: str,
    value: int = 0,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """Send one transaction (a contract creation when `to` is None), wait for its receipt and
    raise ChainStartError if it reverted. For setup and tests, not for load."""
    account = Account.from_key(private_key)
    call: dict[str, Any] = {"from": account.address, "data": data, "value": hex(value)}
    if to is not None:
        call["to"] = to
    gas = int(rpc.call("eth_estimateGas", call), 16)
    fees = read_fees(rpc)
    transaction: dict[str, Any] = {
        "type": 2,
        "chainId": int(rpc.call("eth_chainId"), 16),
        "nonce": int(rpc.call("eth_getTransactionCount", account.address, "pending"), 16),
        "value": value,
        "gas": gas * 5 // 4,
        "maxFeePerGas": fees.max_fee_per_gas,
        "maxPriorityFeePerGas": fees.max_priority_fee_per_gas,
        "data": data,
    }
    if to is not None:
        transaction["to"] = to
    signed = Account.sign_transaction(transaction, account.key)
    tx_hash = rpc.call("eth_sendRawTransaction", "0x" + bytes(signed.raw_transaction).hex())

    deadline = time.monotonic() + timeout
    while (receipt := rpc.call("eth_getTransactionReceipt", tx_hash)) is None:
        if time.monotonic() > deadline:
            raise ChainStartError(f"transaction {tx_hash} not mined within {timeout} s")
        time.sleep(0.05)
    if int(receipt["status"], 16) != 1:
        raise ChainStartError(f"transaction {tx_hash} to {to or 'a new contract'} reverted")
    return dict(receipt)


def deploy_space(
    rpc_url: str,
    deployer_key: bytes | str,
    price_wei: int = 0,
    free_allocation: int = 0,
    duration_seconds: int = 0,
) -> str:
    """Deploy a SpaceMembership contract; returns its checksummed address. The deployer is its
    owner (the only account allowed to change its settings)."""
    artifact = load_artifact("SpaceMembership")
    arguments = abi_encode(
        ["uint256", "uint256", "uint64"], [price_wei, free_allocation, duration_seconds]
    )
    receipt = transact(JsonRpc(rpc_url), deployer_key, None, artifact["bytecode"] + arguments.hex())
    return to_checksum_address(str(receipt["contractAddress"]))


def deploy_river_registry(
    rpc_url: str, deployer_key: bytes | str, nodes: Sequence[tuple[str, str, int]] = ()
) -> str:
    """Deploy a RiverRegistry contract and register `(node address, url, status)` nodes
    (status 2 = Operational); returns its checksummed address."""
    receipt = transact(
        JsonRpc(rpc_url), deployer_key, None, load_artifact("RiverRegistry")["bytecode"]
    )
    registry = to_checksum_address(str(receipt["contractAddress"]))
    for address, url, status in nodes:
        owner_call(
            rpc_url,
            deployer_key,
            registry,
            "registerNode(address,string,uint8)",
            address,
            url,
            status,
        )
    return registry


def owner_call(
    rpc_url: str, owner_key: bytes | str, space_address: str, signature: str, *args: Any
) -> dict[str, Any]:
    """Call an owner-only setter of a SpaceMembership contract, e.g.
    `owner_call(url, key, space, "setReceiverRefused(address,bool)", wallet, True)`."""
    return transact(JsonRpc(rpc_url), owner_key, space_address, calldata(signature, *args))


def start_chain(
    block_time: float = 2.0,
    automine: bool = False,
    state_dir: Path = DEFAULT_STATE_DIR,
    port: int | None = None,
    chain_id: int | None = None,
) -> ChainInfo:
    """Start anvil, deploy the space, fund the root, write chain.json. anvil keeps running:
    stop it with `ChainInfo.anvil.stop()` (or by the PID saved in chain.json)."""
    anvil = Anvil(
        block_time=None if automine else block_time,
        mnemonic=DEVNET_MNEMONIC,
        chain_id=chain_id,
        port=port,
    ).start()
    try:
        rpc = JsonRpc(anvil.rpc_url)
        root = HDWallets(DEVNET_MNEMONIC).wallet(0).address
        deployer = Account.from_key(DEPLOYER_KEY).address
        rpc.call("anvil_setBalance", deployer, hex(ROOT_FUNDS_WEI))
        if int(rpc.call("eth_getBalance", root, "latest"), 16) < ROOT_FUNDS_WEI:
            rpc.call("anvil_setBalance", root, hex(ROOT_FUNDS_WEI))

        space = deploy_space(anvil.rpc_url, DEPLOYER_KEY)
        space_id = space_id_from_address(space)
        info = ChainInfo(
            rpc_url=anvil.rpc_url,
            chain_id=int(rpc.call("eth_chainId"), 16),
            space_address=space,
            space_id=space_id,
            default_channel_id=default_channel_id(space_id),
            root_address=root,
            deployer_address=deployer,
            pid=anvil.pid,
            block_time=None if automine else block_time,
            anvil=anvil,
        )
        info.save(state_dir)
    except BaseException:
        anvil.stop()
        raise
    logger.info("chain at %s, space %s (id %s)", info.rpc_url, space, space_id)
    return info


# -- command line (`python -m devnet chain`) -------------------------------------------------


def add_chain_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "chain",
        help="start anvil with the membership contract deployed as a space",
        description="Start anvil on 127.0.0.1, deploy the membership contract as a space, fund "
        "the root wallet of DEVNET_MNEMONIC and write <state-dir>/chain.json.",
    )
    parser.add_argument(
        "--block-time", type=float, default=2.0, help="seconds between blocks (default 2, as Base)"
    )
    parser.add_argument(
        "--automine", action="store_true", help="mine a block per transaction instead"
    )
    parser.add_argument("--port", type=int, default=None, help="RPC port (default: a free one)")
    parser.add_argument(
        "--state-dir", type=Path, default=DEFAULT_STATE_DIR, help="where chain.json goes"
    )
    parser.add_argument(
        "--detach",
        action="store_true",
        help="leave anvil running and return (stop it by the pid in chain.json)",
    )
    parser.set_defaults(run=run_chain_command)


def run_chain_command(args: argparse.Namespace) -> int:
    info = start_chain(
        block_time=args.block_time, automine=args.automine, state_dir=args.state_dir, port=args.port
    )
    print(json.dumps(info.to_json(), indent=2))
    if args.detach:
        return 0

    stop = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        while not stop and info.anvil is not None and info.anvil.process is not None:
            if info.anvil.process.poll() is not None:
                print("anvil exited")
                return 1
            time.sleep(0.2)
    finally:
        if info.anvil is not None:
            info.anvil.stop()
    return 0
