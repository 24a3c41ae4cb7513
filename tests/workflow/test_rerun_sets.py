"""`dvc repro` redoes exactly what a change affects (issue 18): for each change, the exact set of stages
DVC says will run (`dvc status`: the stages whose own deps or params changed), and for the changes
whose promise is "nothing downstream" the stages a real `dvc repro` runs."""

from __future__ import annotations

import contextlib

import pytest
import yaml
from dvc.repo import Repo as DvcRepo

from tests.test_dvc_deps import closure
from tests.workflow.conftest import PROJECT, Repo, ran

pytestmark = pytest.mark.slow

FOLDS = {"train@sub01-7", "train@sub02-7"}
FLOW_INPUT: dict[str, object] = {  # what `-S input=flow` sets
    "input.kind": "flow",
    "input.file": "data/flow.h5",
    "pipeline.flow": ["synthetic"],
}
APEX_SPOT: dict[str, object] = {  # what `-S ingest.apex_repair=spot` sets
    "ingest.apex_repair": "spot",
    "pipeline.apex": ["synthetic"],
    "pipeline.manifest": "data/manifest_apex.csv",
}

PARAM_CHANGES: dict[str, tuple[dict[str, object], set[str]]] = {  # name -> (params set, stages dvc status names)
    "preview: crop sheet": ({"previews.crop_per_class": 1}, {"crop@synthetic"}),
    "preview: landmarks sheet": ({"previews.landmarks_clips": 2}, {"landmarks@synthetic"}),
    "preview: normalise sheet": ({"previews.normalise_clips": 1}, {"normalise@synthetic"}),
    "preview: attention figure": ({"previews.attention_per_class": 1}, {"attention@synthetic"}),
    "crop knob": (
        {"crop.width": 2.0},
        {"crop@synthetic", "attention@synthetic"},
    ),  # attention places the template face by it
    "normalise knob": ({"normalise.neighbours": 16}, {"normalise@synthetic"}),
    "train knob": ({"train.epochs": 3}, FOLDS | {"report"}),
    "model knob": ({"model.options.width_mult": 0.5}, FOLDS | {"attention@synthetic", "report"}),
    "flow knob, kind difference": ({"flow.size": 16}, set()),  # no flow stage: the run uses no flow
    "input kind difference -> flow": (FLOW_INPUT, {"flow@synthetic"} | FOLDS | {"attention@synthetic", "report"}),
    "optional final model": ({"final": ["all"]}, {"final@all"}),
    "spot knob, apex repair middle": ({"spot.flow": "farneback"}, set()),  # no apex stage: nothing spots
    "apex repair middle -> spot": (APEX_SPOT, {"ingest", "apex@synthetic", "crop@synthetic", "cache@synthetic"}),
    "protocols": ({"protocols.synthetic_4class.classes": ["surprise", "happiness"]}, {"ingest"}),
}

MODULE_CHANGES = {  # one line added to a library module -> the stages that run it
    "mer/io.py": {
        "synthesize@synthetic",
        "ingest",
        "landmarks@synthetic",
        "normalise@synthetic",
        "crop@synthetic",
        "cache@synthetic",
        "attention@synthetic",
        "report",
    }
    | FOLDS,
    "mer/datasets/samm.py": {"ingest"},
    "mer/datasets/manifest_store.py": {"ingest", "landmarks@synthetic", "crop@synthetic", "cache@synthetic"},
    "mer/face/lwm.py": {"normalise@synthetic", "crop@synthetic", "attention@synthetic"},
    "mer/face/crop.py": {"crop@synthetic"},
    "mer/face/landmark_store.py": {
        "landmarks@synthetic",
        "normalise@synthetic",
        "crop@synthetic",
        "attention@synthetic",
    },
    "mer/face/normalised_store.py": {"normalise@synthetic", "crop@synthetic", "attention@synthetic"},
    "mer/face/crop_store.py": {"crop@synthetic", "cache@synthetic"},
    "mer/cache_store.py": {"crop@synthetic", "cache@synthetic", "attention@synthetic"} | FOLDS,
    "mer/flow.py": set(),  # the TV-L1 computation: only the flow stage runs it, and this run has none
    "mer/flow_store.py": {"attention@synthetic"} | FOLDS,
    "mer/parallel.py": {"landmarks@synthetic", "crop@synthetic"},
    "mer/models/mmnet.py": FOLDS | {"attention@synthetic"},
    "mer/fold_store.py": FOLDS | {"report"},
    "mer/failures.py": {
        "ingest",
        "landmarks@synthetic",
        "normalise@synthetic",
        "crop@synthetic",
        "attention@synthetic",
        "report",
    },
    "mer/images.py": {"landmarks@synthetic", "normalise@synthetic", "crop@synthetic", "attention@synthetic", "report"},
    "mer/report/figures.py": {"report"},
    "mer/attention.py": {"attention@synthetic"},
    "mer/predict.py": set(),  # a command, not a stage
}


def _status(repo: Repo) -> set[str]:
    """The stages `dvc status` says changed (and `dvc repro` would start from).

    DVC's own status, called in this process: the CLI's start-up, paid once per module and param change
    (~90 times), was most of this file's time."""
    with contextlib.chdir(repo.path), DvcRepo() as dvc:  # names relative to the cwd, as the CLI run there
        return set(dvc.status())


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
    # every other module too: the stages whose scripts import it (mer.deps's closure, which writes dvc.yaml's deps)
    scripts = {"train@sub01-7": "stages/train.py", "train@sub02-7": "stages/train.py"}
    stages = seen[modules[0]] | _every_stage(built)
    runs = {m: {s for s in stages if m in closure(scripts.get(s, f"stages/{s.split('@')[0]}.py"))} for m in modules}
    assert seen == runs


def _every_stage(repo: Repo) -> set[str]:
    return set(repo.dvc("stage", "list", "--name-only").stdout.split())


@pytest.mark.parametrize(
    "params,stage,picture",
    [
        ({"previews.crop_per_class": 1}, "crop@synthetic", "reports/crop.png"),
        ({"previews.landmarks_clips": 2}, "landmarks@synthetic", "reports/landmarks.png"),
        ({"previews.normalise_clips": 1}, "normalise@synthetic", "reports/normalise.png"),
        ({"previews.attention_per_class": 1}, "attention@synthetic", "reports/attention.png"),
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
    """Kind difference: no flow stage, so a flow knob runs nothing; kind flow brings the stage in, cached."""
    built.set_params(**{"flow.size": 16})
    assert ran(built.dvc("repro").stdout) == set()  # kind difference: nothing computes a flow
    built.set_params(**FLOW_INPUT)
    assert ran(built.dvc("repro").stdout) == {"flow@synthetic"} | FOLDS | {"attention@synthetic", "report"}
    assert ran(built.dvc("repro").stdout) == set()  # computed once, cached as any stage
    built.set_params(**{"flow.size": 24})
    assert ran(built.dvc("repro").stdout) == {"flow@synthetic"} | FOLDS | {"attention@synthetic", "report"}
    lock = yaml.safe_load((built.path / "dvc.lock").read_text())
    assert "data/flow.h5" in {dep["path"] for dep in lock["stages"]["train@sub01-7"]["deps"]}


def test_a_real_data_set_synthesizes_nothing(built):
    """A real data set's run has no synthesize stage: the generated set is neither made nor a dep."""
    built.set_params(**{"pipeline.synthesize": []})  # what `-S dataset=<real>` sets (conf/dataset/*.yaml)
    assert "synthesize@synthetic" not in _every_stage(built)
    assert ran(built.dvc("repro").stdout) == set()  # the data it read is still there: nothing to redo


def test_a_kind_whose_file_does_not_match_stops_with_the_fix(built):
    built.set_params(**{"input.kind": "flow"})  # without input.file: data/flow.h5
    failed = built.dvc("repro", "train@sub01-7", check=False)
    assert failed.returncode != 0 and "Traceback" not in failed.stderr
    assert (
        "input kind 'flow' reads its motion from the flow stage's file (data/flow.h5), but input.file is "
        "'data/cache.h5'" in failed.stderr
    )
