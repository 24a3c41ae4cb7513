"""Write dvc.yaml's code deps: each stage's import closure, so a change to a module reruns exactly the stages
that run it.

A stage's code deps are its script and every `mer` module the script imports, transitively: imports inside
functions count (they run), `if TYPE_CHECKING:` blocks do not, a package `__init__.py` counts when it holds
code, and the reader registry (mer/datasets/ingest.py, which loads `mer.datasets.<format>` by name) counts
every reader of its FORMATS. A package that a stage runs whole and that imports nothing of `mer` outside
itself (mer/models) is listed as its folder. Every other dep (data, `${...}` paths, other scripts) is kept
as written, in its place.

`mer deps [--write]` (mer/commands/deps.py) lists or writes them; tests/test_dvc_deps.py fails, naming the
command, when dvc.yaml differs from what it writes.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML

from mer.io import atomic_path

PACKAGE = "mer"


def load(path: Path) -> dict[str, Any]:
    """dvc.yaml as data."""
    return yaml.safe_load(path.read_text())


def module_file(project: Path, name: str) -> Path | None:
    """The file of module `name` (a dotted mer.* name), or None when it is not a module of the package."""
    path = project / Path(*name.split("."))
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return None


def _readers() -> set[str]:
    """Modules the reader registry can load: one per format of `mer.datasets.ingest.FORMATS`."""
    from mer.datasets.ingest import FORMATS, reader_module

    return {reader_module(fmt) for fmt in FORMATS}


DYNAMIC: dict[str, Callable[[], set[str]]] = {f"{PACKAGE}.datasets.ingest": _readers}  # loader -> what it loads


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _package(project: Path, path: Path) -> list[str]:
    """The dotted package a relative import in `path` starts from."""
    folder = path.parent.relative_to(project)
    return list(folder.parts) if folder.parts and folder.parts[0] == PACKAGE else []


def imported(project: Path, path: Path) -> set[str]:
    """The mer modules `path` imports directly (for `from a.b import c`: a.b, and a.b.c if c is a module)."""
    tree = ast.parse(path.read_text())
    skip = _type_checking_lines(tree)
    names: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            package = _package(project, path)
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return {n for n in names if n.split(".")[0] == PACKAGE and module_file(project, n) is not None}


def _with_packages(name: str) -> set[str]:
    """`name` and the packages importing it executes (a.b.c -> a, a.b, a.b.c)."""
    parts = name.split(".")
    return {".".join(parts[: i + 1]) for i in range(len(parts))}


def _has_code(path: Path) -> bool:
    body = ast.parse(path.read_text()).body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return any(not (isinstance(node, ast.ImportFrom) and node.module == "__future__") for node in body)


@cache
def closure(project: Path, script: str) -> dict[str, str]:
    """Every mer module file the stage script runs -> the file that first imports it (for messages)."""
    found: dict[str, str] = {}
    todo = [(name, script) for name in imported(project, project / script)]
    while todo:
        name, importer = todo.pop()
        for module in sorted(_with_packages(name)):
            path = module_file(project, module)
            if path is None or str(path.relative_to(project)) in found:
                continue
            rel = str(path.relative_to(project))
            if path.name == "__init__.py" and not _has_code(path) and module != name:
                continue
            found[rel] = importer
            todo += [(child, rel) for child in imported(project, path)]
            todo += [(child, f"{rel} (dynamic)") for child in (DYNAMIC[module]() if module in DYNAMIC else ())]
    return {
        rel: importer
        for rel, importer in found.items()
        if not (rel.endswith("__init__.py") and not _has_code(project / rel))
    }


def _self_contained(project: Path, folder: Path, runs: set[str]) -> bool:
    """`folder` is a package the stage runs whole (every module with code) and that imports no mer module
    outside itself: listing the folder then reruns the stage for exactly the changes listing its files would."""
    if not (folder / "__init__.py").is_file():
        return False
    prefix = str(folder.relative_to(project)) + "/"
    for path in folder.rglob("*.py"):
        rel = str(path.relative_to(project))
        if (path.name != "__init__.py" or _has_code(path)) and rel not in runs:
            return False
        for name in imported(project, path):
            target = module_file(project, name)
            if target is not None and not str(target.relative_to(project)).startswith(prefix):
                return False
    return True


def code_deps(project: Path, script: str) -> list[str]:
    """The `mer` deps of the stage running `script`, sorted: modules, and whole self-contained packages."""
    runs = set(closure(project, script))
    folders = sorted(
        {str(Path(rel).parent) for rel in runs} - {PACKAGE},
        key=lambda f: f.count("/"),
    )
    whole: list[str] = []
    for folder in folders:
        if not any(folder.startswith(w + "/") for w in whole) and _self_contained(project, project / folder, runs):
            whole.append(folder)
    modules = {rel for rel in runs if not any(rel.startswith(w + "/") for w in whole)}
    return sorted(modules | set(whole))


def _stages(pipeline: dict) -> dict[str, dict]:
    """Stage name -> its definition (`foreach` stages by their `do` body)."""
    return {name: body.get("do", body) for name, body in pipeline["stages"].items()}


def script(name: str, stage: dict) -> str:
    """The stages/*.py script a stage's cmd runs."""
    match = re.match(r"python (stages/\S+\.py)", stage["cmd"])
    if not match:
        raise ValueError(f"dvc.yaml stage {name!r}: cmd {stage['cmd']!r} does not run a stages/*.py script")
    return match.group(1)


def expected(project: Path, name: str, stage: dict) -> list[str]:
    """The stage's deps as `mer deps --write` writes them: its script first, its other non-code deps in
    their order, then its code deps."""
    own = script(name, stage)
    other = [str(d) for d in stage.get("deps", []) if not str(d).startswith(f"{PACKAGE}/") and str(d) != own]
    return [own, *other, *code_deps(project, own)]


def problems(project: Path, pipeline: dict) -> list[str]:
    """What dvc.yaml's deps get wrong against `expected`, one sentence per difference."""
    found = []
    for name, stage in _stages(pipeline).items():
        deps = [str(d) for d in stage.get("deps", [])]
        want = expected(project, name, stage)
        runs = closure(project, want[0])
        differ = [
            f"stage {name!r}: add `- {dep}`" + (f" (imported by {runs[dep]})" if dep in runs else "")
            for dep in want
            if dep not in deps
        ] + [f"stage {name!r}: remove `- {dep}` (the stage never runs it)" for dep in deps if dep not in want]
        if not differ and deps != want:
            differ = [f"stage {name!r}: deps out of order (its script, its other deps, then its code deps sorted)"]
        found += differ
    return found


def write(project: Path, path: Path) -> None:
    """Rewrite every stage's deps in `path` as `expected` gives them, keeping comments and layout elsewhere."""
    yaml = YAML()  # round trip: comments, order and quoting kept
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    document = yaml.load(path.read_text())
    for name, stage in _stages(document).items():
        deps, want = stage["deps"], expected(project, name, stage)
        if [str(dep) for dep in deps] == want:
            continue  # untouched: a rebuilt list moves the comment after a YAML anchor (`deps: &x  # ...`)
        comments = {str(dep): deps.ca.items.get(i) for i, dep in enumerate(deps)}
        deps.clear()
        deps.ca.items.clear()
        for i, dep in enumerate(want):
            deps.append(dep)
            if comments.get(dep) is not None:
                deps.ca.items[i] = comments[dep]
    with atomic_path(path) as tmp, open(tmp, "w") as out:
        yaml.dump(document, out)
