"""`dvc repro` redoes exactly what a change affects (issue 18): for each change, the exact set of stages
DVC says will run (`dvc status`: the stages whose own deps or params changed), and for the changes
whose promise is "nothing downstream" the stages a real `dvc repro` runs."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.test_dvc_deps import closure
from tests.workflow.conftest import PROJECT, Repo, ran

pytestmark = pytest.mark.slow

FOLDS = {"train@sub01-7", "train@sub02-7"}
FLOW_INPUT: dict[str, object] = {"input.kind": "flow", "input.file": "data/flow.h5"}  # what `-S input=flow` sets

PARAM_CHANGES: dict[str, tuple[dict[str, object], set[str]]] = {  # name -> (params set, stages dvc status names)
    "preview: crop sheet": ({"previews.crop_per_class": 1}, {"crop"}),
    "preview: landmarks sheet": ({"previews.landmarks_clips": 2}, {"landmarks"}),
    "preview: normalise sheet": ({"previews.normalise_clips": 1}, {"normalise"}),
    "preview: attention figure": ({"previews.attention_per_class": 1}, {"attention"}),
    "crop knob": ({"crop.width": 2.0}, {"crop", "attention"}),  # attention places the template face by it
    "normalise knob": ({"normalise.neighbours": 16}, {"normalise"}),
    "train knob": ({"train.epochs": 3}, FOLDS | {"report"}),
    "model knob": ({"model.options.width_mult": 0.5}, FOLDS | {"attention", "report"}),
    "flow knob, kind difference": ({"flow.size": 16}, {"flow"}),
    "input kind difference -> flow": (FLOW_INPUT, FOLDS | {"attention", "report"}),
    "optional final model": ({"final": ["all"]}, {"final@all"}),
    "protocols": ({"protocols.synthetic_4class.classes": ["surprise", "happiness"]}, {"ingest"}),
}

MODULE_CHANGES = {  # one line added to a library module -> the stages that run it
    "mer/io.py": {"synthesize", "ingest", "landmarks", "normalise", "crop", "cache", "flow", "attention", "report"}
    | FOLDS,
    "mer/datasets/samm.py": {"ingest"},
    "mer/datasets/manifest.py": {"ingest", "landmarks", "crop", "cache"},
    "mer/face/lwm.py": {"landmarks", "normalise", "crop", "attention"},
    "mer/face/crop.py": {"crop"},
    "mer/face/crops.py": {"crop", "cache"},
    "mer/cache.py": {"crop", "cache", "flow", "attention"} | FOLDS,
    "mer/flow.py": {"flow", "attention"} | FOLDS,
    "mer/parallel.py": {"landmarks", "crop", "flow", "attention"} | FOLDS,
    "mer/models/mmnet.py": FOLDS | {"attention"},
    "mer/folds.py": FOLDS | {"report"},
    "mer/failures.py": {"ingest", "landmarks", "normalise", "crop", "attention", "report"},
    "mer/images.py": {"landmarks", "normalise", "crop", "attention", "report"},
    "mer/report/figures.py": {"report"},
    "mer/attention.py": {"attention"},
    "mer/predict.py": set(),  # a command, not a stage
}


def _status(repo: Repo) -> set[str]:
    """The stages `dvc status` says changed (and `dvc repro` would start from)."""
    return set(json.loads(repo.dvc("status", "--json").stdout or "{}"))


@pytest.mark.parametrize("change", PARAM_CHANGES)
def test_a_param_change_names_exactly_its_stages(built, change):
    params, expected = PARAM_CHANGES[change]
    built.set_params(**params)
    assert _status(built) == expected


def test_one_line_in_a_library_module_names_exactly_the_stages_that_run_it(built):
    modules = sorted(str(p.relative_to(PROJECT)) for p in (PROJECT / "mer").rglob("*.py"))
    seen = {}
    for module in modules:
        path = built.path / module
        original = path.read_text()
        path.write_text(original + "\n# one more line\n")
        seen[module] = _status(built)
        path.write_text(original)
    assert {m: seen[m] for m in MODULE_CHANGES} == MODULE_CHANGES
    # every other module too: the stages whose scripts import it (tests/test_dvc_deps.py's closure)
    scripts = {"train@sub01-7": "stages/train.py", "train@sub02-7": "stages/train.py"}
    runs = {
        m: {s for s in seen[modules[0]] | _every_stage(built) if m in closure(scripts.get(s, f"stages/{s}.py"))}
        for m in modules
    }
    assert seen == runs


def _every_stage(repo: Repo) -> set[str]:
    return set(repo.dvc("stage", "list", "--name-only").stdout.split())


@pytest.mark.parametrize(
    "params,stage,picture",
    [
        ({"previews.crop_per_class": 1}, "crop", "reports/crop.png"),
        ({"previews.landmarks_clips": 2}, "landmarks", "reports/landmarks.png"),
        ({"previews.normalise_clips": 1}, "normalise", "reports/normalise.png"),
        ({"previews.attention_per_class": 1}, "attention", "reports/attention.png"),
    ],
)
def test_a_preview_knob_reruns_only_the_stage_that_draws_it(built, params, stage, picture):
    before = (built.path / picture).read_bytes()
    cache = (built.path / "data/cache.h5").read_bytes()
    built.set_params(**params)
    rerun = built.dvc("repro")
    assert ran(rerun.stdout) == {stage}, rerun.stdout
    assert (built.path / picture).read_bytes() != before
    assert (built.path / "data/cache.h5").read_bytes() == cache
    assert "up to date" in built.dvc("status").stdout


def test_flow_reaches_only_folds_whose_input_kind_uses_it(built):
    built.set_params(**{"flow.size": 16})
    assert ran(built.dvc("repro").stdout) == {"flow"}  # kind difference: no fold reads data/flow.h5
    built.set_params(**FLOW_INPUT)
    assert ran(built.dvc("repro").stdout) == FOLDS | {"attention", "report"}
    built.set_params(**{"flow.size": 24})
    assert ran(built.dvc("repro").stdout) == {"flow"} | FOLDS | {"attention", "report"}
    lock = yaml.safe_load((built.path / "dvc.lock").read_text())
    assert "data/flow.h5" in {dep["path"] for dep in lock["stages"]["train@sub01-7"]["deps"]}


def test_a_kind_whose_file_does_not_match_stops_with_the_fix(built):
    built.set_params(**{"input.kind": "flow"})  # without input.file: data/flow.h5
    failed = built.dvc("repro", "train@sub01-7", check=False)
    assert failed.returncode != 0 and "Traceback" not in failed.stderr
    assert (
        "input kind 'flow' reads its motion from the flow stage's file (data/flow.h5), but input.file is "
        "'data/cache.h5'" in failed.stderr
    )
