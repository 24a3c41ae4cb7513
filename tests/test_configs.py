"""Named configurations (conf/, composed by Hydra as `dvc exp run` does): params.yaml is their
composition, every option composes into params the stages accept, and the data sets bring the
paper's schedule unless the command line says otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from mer.datasets import composite
from mer.datasets.ingest import FORMATS
from mer.datasets.protocols import Protocol
from mer.fold_store import seeds_of
from mer.models import build_model
from mer.training.loop import InputConfig, fold_config

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
GROUPS = {
    group: sorted(p.stem for p in (CONF / group).glob("*.yaml"))
    for group in ("dataset", "model", "input", "loss", "schedule")
}


def _compose(*overrides: str) -> dict:
    with initialize_config_dir(str(CONF), version_base=None):
        cfg = compose("config", overrides=list(overrides))
    OmegaConf.resolve(cfg)
    return cfg


def test_shipped_options():
    assert GROUPS == {
        "dataset": [
            "casme2_3class",
            "casme2_5class",
            "casme2_to_samm",
            "casme3_4class",
            "megc2019",
            "megc2019_flow",
            "mmew_4class",
            "samm_5class",
            "smic_3class",
            "synthetic",
            "synthetic_casme2_size",
        ],
        "model": ["mmnet", "mmnet_small", "off_apexnet", "resnet18", "resnet50", "ststnet"],
        "input": ["depth", "difference", "flow", "precomputed", "rgbd"],
        "loss": ["plain", "weighted"],
        "schedule": ["meb", "paper", "quick"],
    }


def test_params_yaml_is_the_default_composition_byte_for_byte():
    """`dvc exp run` rewrites params.yaml from conf/: with no override it must not change a byte."""
    assert (ROOT / "params.yaml").read_text() == OmegaConf.to_yaml(_compose())


@pytest.mark.parametrize("group,option", [(g, o) for g, options in GROUPS.items() for o in options])
def test_every_option_composes_into_params_the_stages_accept(group, option):
    params = OmegaConf.to_container(_compose(f"{group}={option}"))
    dataset = params["dataset"]
    assert dataset["format"] in (*FORMATS, composite.FORMAT)
    assert all(part["format"] in FORMATS for part in dataset["parts"].values())
    assert Protocol.from_params(dataset["protocol"], params["protocols"]).classes
    subjects = dataset["subjects"]
    assert subjects and all(isinstance(s, str) for s in subjects) and len(set(subjects)) == len(subjects)
    for seed in seeds_of(params["train"]):
        assert fold_config(params["train"], seed).seed == seed
    InputConfig(**{k: v for k, v in params["input"].items() if k != "file"})
    assert params["input"]["file"] == ("data/flow.h5" if params["input"]["kind"] == "flow" else "data/cache.h5")
    if dataset["format"] == "precomputed":  # its data sets bring the kind (input=precomputed alone: a clear error)
        assert params["input"]["kind"] == "precomputed"
    model = params["model"]
    assert build_model(model["name"], 3, 3, **model["options"]) is not None


def test_real_data_sets_bring_the_paper_schedule_and_full_mmnet():
    synthetic = _compose()
    assert (synthetic.input.size, synthetic.train.epochs, synthetic.model.options) == (
        112,
        30,
        {"width_mult": 0.25, "stem_width": 16},
    )
    for name in GROUPS["dataset"]:
        if name.startswith("synthetic") or name == "megc2019_flow":  # generated sets; precomputed inputs below
            continue
        params = _compose(f"dataset={name}")
        assert params.input.size == 224 and params.flow.size == 224
        assert (params.train.epochs, params.train.batch_size, params.train.weight_decay) == (70, 32, 0.6)
        assert params.train.augment.crop_padding == 15
        assert params.model == {"name": "mmnet", "options": {}}
        # a composite reads its parts' raw data (ingest_part@<part>), then the parts it ingested
        raw = params.dataset.parts.values() or [params.dataset]
        assert all(d.root.startswith("data/raw/") and d.labels.startswith("data/raw/") for d in raw)
        assert params.dataset.root == ("data/parts" if params.dataset.parts else params.dataset.root)


def test_precomputed_flow_images_bring_meb_s_schedule_and_their_model():
    """dataset=megc2019_flow: STSTNet on the published 28x28 inputs, trained as MEB does; `model=off_apexnet`
    brings OFF-ApexNet's own learning rate and epochs."""
    params = _compose("dataset=megc2019_flow")
    assert (params.input.kind, params.input.size, params.model.name) == ("precomputed", 28, "ststnet")
    train = params.train
    assert (train.optimizer, train.lr, train.epochs, train.batch_size, train.weight_decay, train.gamma) == (
        "adam",
        5e-5,
        500,
        32,
        1e-3,
        1.0,
    )
    assert not any(train.augment.values()) and train.precision == "fp32" and train.threads == 1
    off = _compose("dataset=megc2019_flow", "model=off_apexnet").train
    assert (off.lr, off.epochs) == (1e-4, 3000)
    assert len(params.dataset.subjects) == 68


def test_a_run_has_only_the_optional_stages_it_uses():
    """dvc.yaml's optional stages (foreach over `pipeline`): the generated set is synthesized only for itself,
    flow only for input kind flow, the face stages only for raw clips, spotting only when asked for."""
    expected = {
        (): {"synthesize": ["synthetic"], "faces": ["synthetic"], "precomputed": [], "flow": [], "spot": []},
        ("input=flow",): {
            "synthesize": ["synthetic"],
            "faces": ["synthetic"],
            "precomputed": [],
            "flow": ["synthetic"],
            "spot": [],
        },
        ("dataset=samm_5class",): {"synthesize": [], "faces": ["samm"], "precomputed": [], "flow": [], "spot": []},
        ("dataset=samm_5class", "input=flow"): {
            "synthesize": [],
            "faces": ["samm"],
            "precomputed": [],
            "flow": ["samm"],
            "spot": [],
        },
        ("dataset=megc2019_flow",): {
            "synthesize": [],
            "faces": [],
            "precomputed": ["megc2019_flow"],
            "flow": [],
            "spot": [],
        },
        ("pipeline.spot=[synthetic_long]",): {
            "synthesize": ["synthetic"],
            "faces": ["synthetic"],
            "precomputed": [],
            "flow": [],
            "spot": ["synthetic_long"],
        },
    }
    for overrides, pipeline in expected.items():
        ingest_manifest = {"apex": [], "manifest": "data/manifest.csv"}
        assert OmegaConf.to_container(_compose(*overrides).pipeline) == {**pipeline, **ingest_manifest}, overrides


def test_apex_repair_spot_adds_the_apex_stage_whose_manifest_crop_and_cache_read():
    """`ingest.apex_repair: spot` alone adds apex@<data set> for raw clips (none for precomputed inputs, which have
    no frames to spot in) and points crop and cache at its manifest; middle and reject leave the run as it was."""
    for overrides, apex in {
        ("ingest.apex_repair=spot",): ["synthetic"],
        ("ingest.apex_repair=spot", "dataset=samm_5class"): ["samm"],
        ("ingest.apex_repair=spot", "dataset=megc2019_flow"): [],
    }.items():
        pipeline = OmegaConf.to_container(_compose(*overrides).pipeline)
        assert (pipeline["apex"], pipeline["manifest"]) == (apex, "data/manifest_apex.csv"), overrides
    reject = OmegaConf.to_container(_compose("ingest.apex_repair=reject").pipeline)
    assert (reject["apex"], reject["manifest"]) == ([], "data/manifest.csv")


def test_composites_name_their_parts_protocols_and_folds():
    """MEGC 2019: three parts whose protocols all give the composite's 3 classes; one fold per prefixed
    subject. The cross-data-set config: folds are data sets, the test one a part."""
    for name, folds in (("megc2019", "subject"), ("casme2_to_samm", "dataset")):
        params = OmegaConf.to_container(_compose(f"dataset={name}"))
        dataset, protocols = params["dataset"], params["protocols"]
        classes = set(Protocol.from_params(dataset["protocol"], protocols).classes)
        assert classes == {"negative", "positive", "surprise"} and dataset["folds"] == folds
        for part in dataset["parts"].values():
            assert set(Protocol.from_params(part["protocol"], protocols).classes) == classes
        prefixes = {s.split("_")[0] for s in dataset["subjects"]} if folds == "subject" else set(dataset["subjects"])
        assert prefixes <= set(dataset["parts"])
    megc = _compose("dataset=megc2019").dataset
    assert list(megc.parts) == ["casme2", "samm", "smic"]
    counts = {part: sum(s.startswith(f"{part}_") for s in megc.subjects) for part in megc.parts}
    assert counts == {"casme2": 24, "samm": 28, "smic": 16}  # MEGC 2019's 68 subjects
    # the subjects with no clip in the three classes, from MEGC 2019's published 442-clip list
    assert not {"casme2_sub10", "casme2_sub18", "samm_025"} & set(megc.subjects)
    assert {"casme2_sub08", "casme2_sub21", "samm_024", "samm_036"} <= set(megc.subjects)


def test_command_line_choices_win_over_the_data_sets():
    params = _compose("dataset=casme2_5class", "model=resnet18", "input=flow", "loss=weighted", "train.epochs=5")
    assert params.model.name == "resnet18" and params.input.kind == "flow"
    assert params.train.class_weights == "inverse_frequency" and params.train.epochs == 5
    assert params.train.batch_size == 32  # the rest of the paper's schedule stays
    assert _compose("dataset=casme2_5class", "schedule=quick").input.size == 112


def test_data_set_specifics():
    assert _compose("dataset=casme2_5class").dataset.subjects == [f"sub{i:02d}" for i in range(1, 27)]
    assert _compose("dataset=casme2_3class").dataset.protocol == "casme2_3class_mmnet"
    samm = _compose("dataset=samm_5class").dataset.subjects
    assert samm[:2] == ["006", "007"] and samm[-1] == "037"  # strings: YAML would turn 006 into 6
    casme3 = _compose("dataset=casme3_4class").dataset.subjects
    assert len(casme3) == 94 and casme3[0] == "spNO.1" and casme3[-1] == "spNO.217"
    text = yaml.safe_load(OmegaConf.to_yaml(_compose("dataset=samm_5class")))
    assert text["dataset"]["subjects"][0] == "006"  # survives the dump DVC writes to params.yaml
