"""dvc.yaml's code deps are what `mer deps --write` writes (mer/deps.py): each stage's import closure, exactly.
A change to a module the stage runs reruns it, and a module it does not run is not listed (it would rerun
the stage for nothing)."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
import yaml

from mer import deps

ROOT = Path(__file__).resolve().parents[1]


def closure(script: str) -> dict[str, str]:
    """Every mer module file the stage script runs -> the file that first imports it."""
    return deps.closure(ROOT, script)


def problems(pipeline: dict) -> list[str]:
    return deps.problems(ROOT, pipeline)


def _pipeline() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())


def test_dvc_yaml_is_what_mer_deps_writes():
    found = problems(_pipeline())
    assert found == [], "dvc.yaml's deps drifted from the stages' imports: run `mer deps --write`\n" + "\n".join(found)


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
    assert closure("stages/attention.py")["mer/datasets/synthetic.py"] == "mer/attention.py"  # inside a function: runs
    assert "mer/face/detect.py" not in closure("stages/normalise.py")  # landmark_store.py: under TYPE_CHECKING only
    train = closure("stages/train.py")
    assert train["mer/models/mmnet.py"] == "mer/models/__init__.py"  # `from .mmnet import MMNet`
    assert "mer/models/__init__.py" in train and "mer/__init__.py" not in train  # code vs a docstring only


def test_a_whole_self_contained_package_is_listed_as_its_folder():
    train = deps.code_deps(ROOT, "stages/train.py")
    assert "mer/models" in train and not any(d.startswith("mer/models/") for d in train)
    # mer/training is run whole by the fold stage too, but imports mer/cache_store.py: its files are listed
    assert "mer/training/loop.py" in train and "mer/training" not in train


@pytest.mark.parametrize(
    "stage,module",
    [
        ("crop", "mer/face/lwm.py"),
        ("cache", "mer/face/crop_store.py"),
        ("ingest", "mer/datasets/samm.py"),
        ("train", "mer/models"),
    ],
)
def test_a_removed_dep_is_named_with_its_stage(stage, module):
    pipeline = copy.deepcopy(_pipeline())
    body = deps._stages(pipeline)[stage]
    body["deps"].remove(module)
    found = problems(pipeline)
    # final@all shares the folds' deps (a YAML alias): a dep removed from train is missing from final too
    stages = [stage, "final"] if stage == "train" else [stage]
    assert [f.split(" (imported by ")[0] for f in found] == [f"stage {s!r}: add `- {module}`" for s in stages]


def test_an_unused_dep_a_missing_script_and_the_order_are_named():
    pipeline = copy.deepcopy(_pipeline())
    body = deps._stages(pipeline)["flow"]
    body["deps"].append("mer/report/scores.py")
    body["deps"].remove("stages/flow.py")
    assert problems(pipeline) == [
        "stage 'flow': add `- stages/flow.py`",
        "stage 'flow': remove `- mer/report/scores.py` (the stage never runs it)",
    ]
    pipeline = copy.deepcopy(_pipeline())
    body = deps._stages(pipeline)["flow"]["deps"]
    body[-1], body[-2] = body[-2], body[-1]
    assert problems(pipeline) == [
        "stage 'flow': deps out of order (its script, its other deps, then its code deps sorted)"
    ]


def test_mer_deps_write_restores_dvc_yaml_and_keeps_its_comments(tmp_path, capsys):
    """A copy of the project whose dvc.yaml lost a dep and gained a stray one: `mer deps` lists both and exits 1,
    `mer deps --write` gives back the committed dvc.yaml byte for byte (comments included)."""
    for name in ("mer", "stages"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    original = (ROOT / "dvc.yaml").read_text()
    broken = original.replace("        - mer/face/lwm.py\n", "", 1).replace(
        "      - mer/report/readme.py\n", "      - mer/report/readme.py\n      - mer/training/loop.py\n", 1
    )
    assert broken != original
    (tmp_path / "dvc.yaml").write_text(broken)
    from mer.commands import cli

    assert cli.main(["deps", "--project", str(tmp_path)]) == 1
    listed = capsys.readouterr().out
    assert "add `- mer/face/lwm.py`" in listed and "stage 'report': remove `- mer/training/loop.py`" in listed
    assert cli.main(["deps", "--write", "--project", str(tmp_path)]) == 0
    assert (tmp_path / "dvc.yaml").read_text() == original
    assert cli.main(["deps", "--project", str(tmp_path)]) == 0
