"""The command line on a real anvil: bad input exits 2 with nothing sent, Ctrl+C, secrets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from devnet.anvil import Anvil, free_port
from wallet_tools import cli, inputs
from wallet_tools.derivation import HDWallets

OLD = "test test test test test test test test test test test junk"
NEW = "toy alien remain valid print employ age multiply claim student story aware"
BAD_CHECKSUM = "test test test test test test test test test test test test"
KEY_0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
ADDRESS_0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
ADDRESS_1 = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def chain_state(node: Anvil) -> tuple[object, list[object]]:
    addresses = HDWallets(OLD).addresses(0, 4) + HDWallets(NEW).addresses(0, 4)
    return node.rpc("eth_blockNumber"), [node.rpc("eth_getBalance", a, "latest") for a in addresses]


@pytest.fixture
def node(anvil_factory: Callable[..., Anvil]) -> Anvil:
    return anvil_factory(accounts=4, balance_eth=1)


def transfer(url: str, *flags: str) -> list[str]:
    base = {"--old-seed": OLD, "--new-seed": NEW, "--rpc-url": url, "--end": "4"}
    for flag in flags[::2]:
        base.pop(flag, None)
    args = ["transfer", "--yes"]
    for flag, value in base.items():
        args += [flag, value]
    return args + list(flags)


def bad_inputs(url: str) -> list[tuple[list[str], str]]:
    dead = f"http://127.0.0.1:{free_port()}"
    send = ["send-gas", "--private-key", KEY_0, "--rpc-url", url]
    return [
        (transfer(url, "--old-seed", BAD_CHECKSUM), "checksum"),
        (transfer(url, "--new-seed", OLD.replace("junk", "junkk")), "'junkk' (word 12)"),
        (
            transfer(url, "--start", "5", "--end", "2"),
            "--start (5) must not be greater than --end (2)",
        ),
        (transfer(url, "--start", "-1"), "--start must be a whole number ≥ 0; got '-1'"),
        (transfer(url, "--end", "ten"), "--end must be a whole number ≥ 0; got 'ten'"),
        (transfer(url, "--gas-buffer", "101"), "from 0 to 100; got 101"),
        (transfer(url, "--gas-buffer", "-5"), "from 0 to 100; got '-5'"),
        (transfer(url, "--new-seed", "  " + OLD.upper()), "the same mnemonic"),
        (transfer(dead), f"--rpc-url {dead} does not answer"),
        (transfer(url, "--rpc-url", "localhost:8545"), "'localhost:8545' is not an http"),
        (["check", "--old-seed", OLD, "--rpc-url", "not a url"], "'not a url' is not an http"),
        ([*send, "--from", ADDRESS_0, "--to", "0x1234", "--amount", "1"], "--to must be 0x"),
        (
            [*send, "--from", ADDRESS_0, "--to", ADDRESS_1.replace("C", "c", 1), "--amount", "1"],
            "wrong EIP-55 checksum; did you mean " + ADDRESS_1,
        ),
        ([*send, "--from", ADDRESS_1, "--to", ADDRESS_1, "--amount", "1"], "is not the address"),
        ([*send, "--from", ADDRESS_0, "--to", ADDRESS_1, "--amount", "0"], "positive number"),
        ([*send, "--from", ADDRESS_0, "--to", ADDRESS_1, "--amount", "-1"], "got '-1'"),
        ([*send, "--from", ADDRESS_0, "--to", ADDRESS_1, "--amount", "lots"], "got 'lots'"),
        (
            [
                "send-gas",
                "--private-key",
                "0x12",
                *send[3:],
                "--from",
                ADDRESS_0,
                "--to",
                ADDRESS_1,
                "--amount",
                "1",
            ],
            "32 bytes",
        ),
    ]


def test_bad_input_exits_2_and_sends_nothing(
    node: Anvil, capsys: pytest.CaptureFixture[str]
) -> None:
    before = chain_state(node)
    for args, message in bad_inputs(node.rpc_url):
        code = cli.main(args)
        captured = capsys.readouterr()
        assert code == 2, (args, captured.err)
        assert message in captured.err.replace("\n", " "), (message, captured.err)
        assert OLD not in captured.err + captured.out and KEY_0 not in captured.err + captured.out
    assert chain_state(node) == before


def test_missing_secret_without_a_terminal(
    node: Anvil, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OLD_SEED", "NEW_SEED", "MNEMONIC", "PRIVATE_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "stdin", open(os.devnull))  # noqa: SIM115
    assert cli.main(["check", "--rpc-url", node.rpc_url]) == 2
    assert "--old-seed is missing" in capsys.readouterr().err


def test_secrets_from_environment_and_prompt(
    node: Anvil, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLD_SEED", OLD)
    assert cli.main(["check", "--rpc-url", node.rpc_url, "--end", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [w["balance_wei"] for w in report["wallets"]] == [str(10**18)] * 2
    assert report["total_wei"] == str(2 * 10**18)

    monkeypatch.delenv("OLD_SEED")
    monkeypatch.delenv("MNEMONIC", raising=False)
    prompts: list[str] = []
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)

    def fake_getpass(prompt: str) -> str:
        prompts.append(prompt)
        return OLD

    monkeypatch.setattr(inputs.getpass, "getpass", fake_getpass)
    assert cli.main(["check", "--rpc-url", node.rpc_url, "--end", "1"]) == 0
    captured = capsys.readouterr()
    assert prompts == ["Mnemonic (hidden): "] and ADDRESS_0 in captured.out
    assert OLD not in captured.out + captured.err


def test_generate_hides_keys_unless_asked(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["generate", "--seed", OLD, "--end", "3", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["wallets"]
    assert [w["address"] for w in listed][:2] == [ADDRESS_0, ADDRESS_1]
    assert all("private_key" not in w for w in listed)

    assert cli.main(["generate", "--seed", OLD, "--end", "1", "--show-private-keys"]) == 0
    assert KEY_0 in capsys.readouterr().out

    assert cli.main(["new-mnemonic", "--words", "24", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["mnemonic"].split()) == 24


def test_dry_run_sends_nothing(node: Anvil, capsys: pytest.CaptureFixture[str]) -> None:
    before = chain_state(node)
    code = cli.main(
        [
            "transfer",
            "--old-seed",
            OLD,
            "--new-seed",
            NEW,
            "--rpc-url",
            node.rpc_url,
            "--end",
            "4",
            "--dry-run",
            "--json",
        ]
    )
    plan = json.loads(capsys.readouterr().out)
    assert code == 0 and plan["dry_run"] is True
    assert all(int(w["value_wei"]) > 0 for w in plan["wallets"])
    assert chain_state(node) == before


def test_send_gas(
    node: Anvil, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRIVATE_KEY", KEY_0)
    code = cli.main(
        [
            "send-gas",
            "--from",
            ADDRESS_0.lower(),
            "--to",
            ADDRESS_1,
            "--amount",
            "0.25",
            "--rpc-url",
            node.rpc_url,
            "--json",
        ]
    )
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert code == 0 and report["transferred"] == 1
    assert report["balances_wei"][ADDRESS_1] == str(10**18 + 25 * 10**16)
    assert KEY_0 not in captured.out + captured.err

    assert (
        cli.main(
            [
                "send-gas",
                "--from",
                ADDRESS_0,
                "--to",
                ADDRESS_1,
                "--amount",
                "5",
                "--rpc-url",
                node.rpc_url,
            ]
        )
        == 1
    )
    assert "needs" in capsys.readouterr().err


def test_ctrl_c_during_countdown_sends_nothing(node: Anvil) -> None:
    before = chain_state(node)
    env = {**os.environ, "OLD_SEED": OLD, "NEW_SEED": NEW}
    process = subprocess.Popen(
        [sys.executable, "-m", "wallet_tools", "transfer", "--rpc-url", node.rpc_url, "--end", "4"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        seen = ""
        deadline = time.monotonic() + 20
        while "Sending in" not in seen and time.monotonic() < deadline:
            seen += process.stderr.readline()
        assert "chain id:   31337" in seen and "gas buffer: 10%" in seen
        process.send_signal(signal.SIGINT)
        _, rest = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130
    assert "Cancelled" in rest
    assert chain_state(node) == before


def test_console_scripts(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["generate-wallets", "--seed", OLD, "--end", "1", "--json"])
    with pytest.raises(SystemExit) as exited:
        cli.generate_wallets_main()
    assert exited.value.code == 0 and ADDRESS_0 in capsys.readouterr().out

    monkeypatch.setattr(sys, "argv", ["transfer-funds", "generate", "--seed", OLD])
    with pytest.raises(SystemExit) as exited:
        cli.transfer_funds_main()
    assert exited.value.code == 2 and "invalid choice: 'generate'" in capsys.readouterr().err
