"""The `mer` front door: version, help, and every registered subcommand's --help."""

from __future__ import annotations

import importlib
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from mer.commands.cli import COMMANDS, build_parser

ROOT = Path(__file__).resolve().parents[1]


def mer(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mer", *args], capture_output=True, text=True, cwd=ROOT)


def test_version_names_package_and_commit():
    done = mer("--version")
    assert done.returncode == 0, done.stderr
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert done.stdout.startswith(f"mer {metadata.version('mer')} (commit {commit}")


def test_help_lists_every_subcommand():
    done = mer("--help")
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())  # argparse wraps the summaries
    for command in COMMANDS:
        assert f"{command.name} {command.summary}" in text


def test_no_subcommand_prints_help_and_fails():
    done = mer()
    assert done.returncode == 2 and "usage: mer" in done.stdout


@pytest.mark.parametrize("name", [c.name for c in COMMANDS])
def test_subcommand_help(name):
    done = mer(name, "--help")
    assert done.returncode == 0, done.stderr
    assert f"usage: mer {name}" in done.stdout


def test_names_are_unique_and_modules_provide_run():
    assert len({c.name for c in COMMANDS}) == len(COMMANDS)
    for command in COMMANDS:
        module = importlib.import_module(command.module)
        assert callable(module.add_arguments) and callable(module.run), command.module
    build_parser()  # every module adds its arguments without clashing


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "mer"
    assert script.exists(), "pip install -e . installs the `mer` console script beside python"
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0 and done.stdout.startswith("mer ")
