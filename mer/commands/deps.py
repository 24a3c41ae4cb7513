"""dvc.yaml's code deps, written from each stage's import closure (mer/deps.py says what counts):

mer deps           # list what differs from dvc.yaml; exit 1 when something does
mer deps --write   # rewrite the code deps in dvc.yaml (comments and everything else kept)
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--write", action="store_true", help="rewrite dvc.yaml's code deps (default: only list)")
    parser.add_argument("--project", type=Path, default=Path("."), help="the project checkout (default: here)")


def run(args: argparse.Namespace) -> int:
    from mer.deps import load, problems, write

    path = args.project / "dvc.yaml"
    if not path.is_file():
        print(f"mer deps: no dvc.yaml in {args.project.resolve()} (run it in the project, or pass --project)")
        return 2
    found = problems(args.project.resolve(), load(path))
    if args.write:
        if found:
            write(args.project.resolve(), path)
        print(f"mer deps: {path} " + (f"rewritten ({len(found)} changes)" if found else "already up to date"))
        return 0
    for problem in found:
        print(problem)
    return 1 if found else 0
