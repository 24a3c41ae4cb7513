"""The `mer` command: the user-facing verbs beside `dvc` (the stages stay DVC's entry points).

Each subcommand lives in its own module, which provides `add_arguments(parser)` and
`run(args) -> int`, and keeps heavy imports (torch, cv2) inside `run` so that `mer --help`
stays instant. A new verb is one line in `COMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from importlib import metadata
from pathlib import Path
from typing import NamedTuple

from mer.provenance import git_commit


class Command(NamedTuple):
    name: str
    module: str
    summary: str


COMMANDS: tuple[Command, ...] = (
    Command("check-data", "mer.commands.check_data", "check the data set's table and folders before running anything"),
    Command("deps", "mer.commands.deps", "write dvc.yaml's code deps from each stage's import closure"),
    Command("launch", "mer.commands.launch", "run the out-of-date fold stages in parallel on Ray, then dvc repro"),
    Command("predict", "mer.commands.predict", "class probabilities of the trained models for a new clip"),
)


def version() -> str:
    """The installed package version and the git commit of the checkout it runs from."""
    try:
        package = metadata.version("mer")
    except metadata.PackageNotFoundError:
        package = "unknown (not installed)"
    return f"mer {package} (commit {git_commit(Path(__file__).resolve().parents[2])})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mer", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=version())
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for command in COMMANDS:
        module = importlib.import_module(command.module)
        sub = subparsers.add_parser(
            command.name,
            help=command.summary,
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
