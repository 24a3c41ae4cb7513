"""dvc.yaml's code deps are each stage's import closure, exactly: a change to a module the stage runs
reruns it, and a module it does not run is not listed (it would rerun the stage for nothing).

The closure follows every `mer` import a stage script makes, transitively, including imports inside
functions (they run) and excluding `if TYPE_CHECKING:` blocks (they do not). A package `__init__.py`
counts when it holds code, not only a docstring. Dynamic loaders are followed too: the reader
registry (mer/datasets/ingest.py, `import_module(reader_module(fmt))`) loads the reader of every
format in its FORMATS, asked here of the registry itself, so a new reader is picked up without
editing this test.
"""

from __future__ import annotations

import ast
import copy
import re
from functools import cache
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "mer"


def _module_file(name: str) -> Path | None:
    """The file of module `name` (a dotted mer.* name), or None when it is not a module of the package."""
    path = ROOT / Path(*name.split("."))
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return None


def _readers() -> set[str]:
    """Modules the reader registry can load: one per format of `mer.datasets.ingest.FORMATS`."""
    from mer.datasets.ingest import FORMATS, reader_module

    return {reader_module(fmt) for fmt in FORMATS}


DYNAMIC = {f"{PACKAGE}.datasets.ingest": _readers}  # loader module -> the modules it may import


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _package(path: Path) -> list[str]:
    """The dotted package a relative import in `path` starts from."""
    folder = path.parent.relative_to(ROOT)
    return list(folder.parts) if folder.parts and folder.parts[0] == PACKAGE else []


def _imported(path: Path) -> set[str]:
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
            base = _package(path)[: len(_package(path)) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return {n for n in names if n.split(".")[0] == PACKAGE and _module_file(n) is not None}


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
def closure(script: str) -> dict[str, str]:
    """Every mer module file the stage script runs -> the file that first imports it (for the message)."""
    found: dict[str, str] = {}
    todo = [(name, script) for name in _imported(ROOT / script)]
    while todo:
        name, importer = todo.pop()
        for module in sorted(_with_packages(name)):
            path = _module_file(module)
            if path is None or str(path.relative_to(ROOT)) in found:
                continue
            rel = str(path.relative_to(ROOT))
            if path.name == "__init__.py" and not _has_code(path) and module != name:
                continue
            found[rel] = importer
            todo += [(child, rel) for child in _imported(path)]
            todo += [(child, f"{rel} (dynamic)") for child in (DYNAMIC[module]() if module in DYNAMIC else ())]
    return {
        rel: importer
        for rel, importer in found.items()
        if not (rel.endswith("__init__.py") and not _has_code(ROOT / rel))
    }


def _stages(pipeline: dict) -> dict[str, dict]:
    """Stage name -> its definition (`foreach` stages by their `do` body)."""
    return {name: body.get("do", body) for name, body in pipeline["stages"].items()}


def _script(name: str, stage: dict) -> str:
    match = re.match(r"python (stages/\S+\.py)", stage["cmd"])
    assert match, f"dvc.yaml stage {name!r}: cmd {stage['cmd']!r} does not run a stages/*.py script"
    return match.group(1)


def _covered(module: str, deps: list[str]) -> bool:
    return any(module == dep or module.startswith(dep.rstrip("/") + "/") for dep in deps)


def problems(pipeline: dict) -> list[str]:
    """What dvc.yaml gets wrong about each stage's code, one sentence per fix."""
    found = []
    for name, stage in _stages(pipeline).items():
        script, deps = _script(name, stage), [str(d) for d in stage.get("deps", [])]
        runs = closure(script)
        if script not in deps:
            found.append(f"stage {name!r}: add `- {script}` (its own script) to stages.{name}.deps in dvc.yaml")
        for module, importer in sorted(runs.items()):
            if not _covered(module, deps):
                found.append(
                    f"stage {name!r} runs {module} (imported by {importer}): "
                    f"add `- {module}` to stages.{name}.deps in dvc.yaml"
                )
        for dep in deps:
            if dep.startswith(f"{PACKAGE}/") and not any(_covered(module, [dep]) for module in runs):
                found.append(
                    f"stage {name!r} lists {dep} but never imports it: "
                    f"remove it from stages.{name}.deps in dvc.yaml (it would rerun the stage for nothing)"
                )
    return found


def _pipeline() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())


def test_every_stage_lists_exactly_the_modules_it_runs():
    assert problems(_pipeline()) == []


def test_the_reader_registry_is_followed():
    runs = closure("stages/ingest.py")
    assert {
        "mer/datasets/casme2.py",
        "mer/datasets/samm.py",
        "mer/datasets/mmew.py",
        "mer/datasets/casme3.py",
        "mer/datasets/generic.py",
        "mer/datasets/smic.py",
    } <= set(runs)
    assert runs["mer/datasets/samm.py"] == "mer/datasets/ingest.py (dynamic)"
    assert "mer/datasets/synthetic.py" not in runs  # not a reader: only `synthesize` runs it


def test_lazy_relative_and_type_checking_imports():
    assert closure("stages/landmarks.py")["mer/face/lwm.py"] == "mer/face/store.py"  # inside a function: runs
    assert "mer/face/detect.py" not in closure("stages/cache.py")  # store.py imports it under TYPE_CHECKING only
    train = closure("stages/train.py")
    assert train["mer/models/mmnet.py"] == "mer/models/__init__.py"  # `from .mmnet import MMNet`
    assert "mer/models/__init__.py" in train and "mer/__init__.py" not in train  # code vs a docstring only


@pytest.mark.parametrize(
    "stage,module",
    [
        ("crop", "mer/face/lwm.py"),
        ("cache", "mer/face/crops.py"),
        ("ingest", "mer/datasets/samm.py"),
        ("train", "mer/models"),
    ],
)
def test_a_removed_dep_is_named_with_its_stage(stage, module):
    pipeline = copy.deepcopy(_pipeline())
    body = _stages(pipeline)[stage]
    body["deps"].remove(module)
    found = problems(pipeline)
    assert found and all(
        f"stage {stage!r} runs " in p and p.endswith(f"to stages.{stage}.deps in dvc.yaml") for p in found
    )
    assert any(f"add `- {module}" in p for p in found)


def test_an_unused_dep_and_a_missing_script_are_named():
    pipeline = copy.deepcopy(_pipeline())
    body = _stages(pipeline)["flow"]
    body["deps"].append("mer/report/scores.py")
    body["deps"].remove("stages/flow.py")
    assert problems(pipeline) == [
        "stage 'flow': add `- stages/flow.py` (its own script) to stages.flow.deps in dvc.yaml",
        "stage 'flow' lists mer/report/scores.py but never imports it: remove it from stages.flow.deps in dvc.yaml "
        "(it would rerun the stage for nothing)",
    ]
