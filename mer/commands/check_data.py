"""Check the configured data set before running anything: `mer check-data [OVERRIDE ...]`.

Reads params.yaml (or, given Hydra-style overrides such as `dataset=samm_5class` or
`dataset.root=/data/SAMM`, composes conf/ with them as `dvc exp run -S` does), then the label
table and the frame folders, and prints per problem what it found, what it expected and how to
fix it: the data root, the table (file, sheet, header, columns), the subject-folder naming, the
frame-file naming, how many rows resolve to frames, and the LOSO subject list to paste. A composite
(`dataset=megc2019`, cross-data-set configs) is checked part by part, each problem named by its part,
and its fold list is the union of the parts' as `ingest` joins them (on its published sample list, if
its protocol names one: listed clips missing or labelled otherwise are problems, clips left out notes).
It reads only; nothing is written. The exit code is 1 when ingest would fail with these settings.

A path holding characters Hydra's override grammar reserves, such as CAS(ME)^3's released table
`cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx`, is read as given (`dataset.labels=/data/cas(me)3_...`),
and the quoted form `dvc exp run -S` needs is printed: `-S "dataset.labels='/data/cas(me)3_...'"`.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
from pathlib import Path

ASSIGNMENT = re.compile(r"(?P<key>[+~]{0,2}[A-Za-z_][\w.-]*)=(?P<value>.+)")
PATH_LIKE = re.compile(r"[/\\]|\.\w+$")  # a folder separator, or a file suffix


def load(params_path: Path, conf: Path, overrides: list[str]) -> dict:
    """params.yaml as it is, or conf/ composed with `overrides` (Hydra, as `dvc exp run -S` does)."""
    if not overrides:
        from mer.io import load_params

        return load_params(params_path)
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(str(conf.resolve()), version_base=None):
        cfg = compose("config", overrides=overrides)
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def quote_paths(overrides: list[str]) -> tuple[list[str], list[str]]:
    """(`overrides` with each `key=path` that Hydra's grammar cannot parse quoted, a note per quoted one).

    Hydra reads `key=value` with a grammar in which `( ) [ ] { } , =` and quotes mean something, so
    a real file name such as `cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx` stops it. A value that fails to
    parse and looks like a path is meant as that path: it is quoted, and the note gives the form
    `dvc exp run -S` needs (DVC parses -S with the same grammar and cannot be changed here).
    """
    quoted, notes = [], []
    for override in overrides:
        fixed = _quoted_path(override)
        quoted.append(fixed or override)
        if fixed:
            key, value = fixed.split("=", 1)
            notes.append(
                f"{key}: read as the path {value} (Hydra's override grammar cannot read it unquoted); "
                f"with dvc exp run write: -S {_shell(fixed)}"
            )
    return quoted, notes


def _shell(argument: str) -> str:
    """`argument` quoted for a POSIX shell: in double quotes where nothing in it expands there."""
    return f'"{argument}"' if not set(argument) & set('"$`\\!') else shlex.quote(argument)


def _quoted_path(override: str) -> str | None:
    """`key='value'` for an override `key=value` whose path-like value Hydra cannot parse as it is, else None."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    match = ASSIGNMENT.fullmatch(override)
    if not match or not PATH_LIKE.search(match["value"]) or match["value"][0] in "'\"[{":
        return None
    parser = OverridesParser.create()
    try:
        parser.parse_overrides([override])
        return None
    except OverrideParseException:
        pass
    value = match["value"]
    quote = "'" if "'" not in value else '"' if '"' not in value else None
    if quote is None:
        return None
    fixed = f"{match['key']}={quote}{value}{quote}"
    try:
        parsed = parser.parse_overrides([fixed])[0].value()
    except OverrideParseException:
        return None
    return fixed if parsed == value else None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="OVERRIDE",
        help="Hydra-style overrides of conf/, e.g. dataset=samm_5class dataset.root=/data/SAMM",
    )
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file read without overrides")
    parser.add_argument("--conf", type=Path, default=Path("conf"), help="config folder composed with overrides")


def run(args: argparse.Namespace) -> int:
    overrides, quoted = quote_paths(args.overrides)
    for note in quoted:
        print(f"check-data: {note}")
    try:
        params = load(args.params, args.conf, overrides)
    except Exception as exc:  # hydra and yaml raise many types for a bad override or file
        hint = (
            "; quote a value holding special characters such as ( ) [ ] { } = , : key='value' "
            "(with dvc exp run: -S \"key='value'\")"
            if type(exc).__name__ == "OverrideParseException"
            else ""
        )
        print(f"check-data: cannot compose the configuration ({type(exc).__name__}: {exc}){hint}", file=sys.stderr)
        return 2
    from mer.datasets.check import check

    result = check(params)
    for note in result.notes:
        print(f"check-data: {note}")
    for i, problem in enumerate(result.problems, start=1):
        print(
            f"PROBLEM {i}: {problem.what}\n  found:    {problem.found}\n  expected: {problem.expected}\n"
            f"  fix:      {problem.fix}"
        )
    if result.subjects is not None:
        print(f"subjects: {json.dumps(result.subjects)}")
    print(
        "check-data: ok, ingest will run"
        if result.ok
        else f"check-data: {len(result.problems)} problem(s); ingest would fail"
    )
    return 0 if result.ok else 1
