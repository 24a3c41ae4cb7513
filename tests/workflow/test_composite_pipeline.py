"""Issue 12's done-when for the composite protocols under real DVC: `dvc exp run -S dataset=megc2019` (CASME II
+ SAMM + SMIC, LOSO over the union) and `-S dataset=casme2_to_samm` (a fold holds out a data set), each on
parts in their releases' layouts (synthetic faces re-filed as CASME II, SAMM and SMIC HS), to a report with
the composite and per-data-set UF1/UAR; each part's stage depends on exactly its own root and table."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from sklearn.metrics import f1_score, recall_score

from mer.datasets import casme2
from tests.datasets import fixtures
from tests.workflow.conftest import Repo, copy_repo, ran
from tests.workflow.test_configs_pipeline import _commit, _configured_repo

pytestmark = pytest.mark.slow

SHRINK = [
    "model=mmnet_small",
    "input.size=32",
    "flow.size=32",
    "train.epochs=1",
    "train.batch_size=4",
    "train.seeds=[7]",
]
SAMM_IDS = {"sub01": "011", "sub02": "012"}
SMIC_IDS = {"sub01": "s1", "sub02": "s2"}
SMIC_CLASSES = {"happiness": ("positive", "po"), "surprise": ("surprise", "sur")}


def _write_parts(repo: Repo, samm_subjects: list[str], smic_subjects: list[str]) -> None:
    """The synthetic clips (CASME II layout) re-filed under data/raw as the three releases ship them."""
    synthetic = repo.path / "data/synthetic"
    raw = repo.path / "data/raw"
    shutil.copytree(synthetic / "CASME2_RAW_selected", raw / "CASME2/CASME2_RAW_selected")
    shutil.copy(synthetic / "CASME2-coding-synthetic.xlsx", raw / "CASME2/CASME2-coding-20140508.xlsx")
    clips = casme2.read(synthetic / "CASME2_RAW_selected", synthetic / "CASME2-coding-synthetic.xlsx").clips
    cells, taken = [], {s: 0 for s in samm_subjects}
    for clip in clips:
        folder = synthetic / "CASME2_RAW_selected" / clip.subject / clip.clip
        files = casme2.FRAME_PATTERN
        numbered = {int(m.group(1)): f for f in folder.iterdir() if (m := files.fullmatch(f.name))}
        if clip.subject in samm_subjects:
            subject = SAMM_IDS[clip.subject]
            taken[clip.subject] += 1
            name = f"{subject}_{taken[clip.subject]}_1"
            (raw / "SAMM" / subject / name).mkdir(parents=True)
            for n, f in numbered.items():
                shutil.copy(f, raw / "SAMM" / subject / name / f"{subject}_{n:05d}.jpg")
            emotion = clip.emotion.capitalize()
            cells.append(
                [int(subject), name, 1, clip.onset, clip.apex, clip.offset, 0, "Micro", 1, None, "12", emotion]
            )
        if clip.subject in smic_subjects:
            emotion, short = SMIC_CLASSES[clip.emotion]
            subject = SMIC_IDS[clip.subject]
            target = raw / "SMIC/SMIC_all_raw/HS" / subject / "micro" / emotion / f"{subject}_{short}_01"
            target.mkdir(parents=True)
            for n, f in numbered.items():  # SMIC's clip folder is the micro-expression: onset..offset only
                if clip.onset <= n <= clip.offset:
                    shutil.copy(f, target / f"image{n:06d}.jpg")
    notes = [f"Note {i}" for i in range(1, fixtures.SAMM_NOTES + 1)]
    table = raw / "SAMM_Micro_FACS_Codes_v2.xlsx"
    fixtures._write_xlsx(table, fixtures.SAMM_COLUMNS, cells, frozenset(), notes=[*notes, None], sheet="MICRO_ONLY")


@pytest.fixture(scope="module")
def parts(tmp_path_factory) -> Repo:
    """A committed repository with CASME II (sub01, sub02), SAMM (012 = sub02's clips) and SMIC (s1 = sub01's)."""
    repo = _configured_repo(tmp_path_factory.mktemp("composite") / "repo")
    repo.dvc("repro", "synthesize")
    _write_parts(repo, ["sub02"], ["sub01"])
    _commit(repo)
    return repo


def _lock_deps(repo: Repo, stage: str) -> list[str]:
    lock = yaml.safe_load((repo.path / "dvc.lock").read_text())["stages"][stage]
    return sorted({d["path"] for d in lock["deps"] if not d["path"].startswith(("stages/", "mer/"))})


def _check_per_dataset(repo: Repo, metrics: dict, parts: list[str]) -> None:
    """metrics.json's per-data-set UF1/UAR against sklearn on the report's pooled predictions."""
    predictions = pd.read_csv(repo.path / "reports/predictions.csv")
    part_of = predictions.sample_id.str.split("/").str[0]
    assert set(metrics["per_dataset"]) == set(parts)
    for part in parts:
        rows = predictions[part_of == part]
        present = sorted(set(rows.label))
        uf1 = f1_score(rows.label, rows.pred, labels=present, average="macro", zero_division=0)
        uar = recall_score(rows.label, rows.pred, labels=present, average="macro", zero_division=0)
        got = metrics["per_dataset"][part]
        assert got["clips"] == len(rows) > 0
        assert got["uf1"]["mean"] == pytest.approx(uf1) and got["uar"]["mean"] == pytest.approx(uar)


def test_megc2019_runs_end_to_end_with_composite_and_per_data_set_scores(parts, tmp_path):
    repo = copy_repo(parts, tmp_path / "repo")
    subjects = "[casme2_sub01,casme2_sub02,samm_012,smic_s1]"
    done = repo.dvc(
        "exp",
        "run",
        "-S",
        "dataset=megc2019",
        "-S",
        "dataset.protocol=megc2019_3class",  # the synthetic clips are not MEGC 2019's published list
        "-S",
        f"dataset.subjects={subjects}",
        *(f"-S{s}" for s in SHRINK),
        "report",
    )
    assert {"ingest_part@casme2", "ingest_part@samm", "ingest_part@smic", "ingest", "report"} <= ran(done.stdout)
    assert "ingest: 8 clips, 4 folds, 0 rejected" in done.stdout

    # each part's stage depends on exactly its own root and table; ingest on the parts it joins
    assert _lock_deps(repo, "ingest_part@casme2") == [
        "data/raw/CASME2/CASME2-coding-20140508.xlsx",
        "data/raw/CASME2/CASME2_RAW_selected",
    ]
    assert _lock_deps(repo, "ingest_part@samm") == ["data/raw/SAMM", "data/raw/SAMM_Micro_FACS_Codes_v2.xlsx"]
    assert _lock_deps(repo, "ingest_part@smic") == ["data/raw/SMIC"]
    assert _lock_deps(repo, "ingest") == ["data/parts"]

    manifest = pd.read_csv(repo.path / "data/manifest.csv", dtype=str, keep_default_na=False)
    assert list(manifest.subject.unique()) == ["casme2_sub01", "casme2_sub02", "samm_012", "smic_s1"]
    assert manifest.groupby("dataset").size().to_dict() == {"casme2": 4, "samm": 2, "smic": 2}
    assert set(manifest.label) == {"positive", "surprise"}
    assert set(manifest.label_index) == {"1", "2"}  # megc2019_3class: negative, positive, surprise
    assert manifest.sample_id.str.match(r"^(casme2/sub0[12]|samm/012|smic/s1)/").all()
    report = json.loads((repo.path / "reports/ingest.json").read_text())
    assert report["per_dataset"] == {"casme2": 4, "samm": 2, "smic": 2}
    assert report["repaired"]["apex_missing"] == ["smic/s1/s1_po_01", "smic/s1/s1_sur_01"]  # SMIC: no apex labelled

    metrics = json.loads((repo.path / "reports/metrics.json").read_text())
    assert metrics["folds"] == 4 and metrics["clips"] == 8
    _check_per_dataset(repo, metrics, ["casme2", "samm", "smic"])
    shown = json.loads(repo.dvc("metrics", "show", "--json").stdout)
    flat = json.dumps(shown)
    assert '"uf1": {"mean"' in flat and '"smic": {"accuracy"' in flat  # DVC reads the per-data-set keys

    page = (repo.path / "reports/README.md").read_text()
    assert "data set **megc2019** (composite layout), protocol **megc2019_3class**, 8 clips in 4 leave-one" in page
    assert "| data set | UF1 | UAR | accuracy | clips |" in page and re.search(r"\| samm \| [0-9.]+ \|", page)
    samm_table = (repo.path / "data/raw/SAMM_Micro_FACS_Codes_v2.xlsx").read_bytes()
    digest = hashlib.sha256(samm_table).hexdigest()
    assert f"- samm: label table `SAMM_Micro_FACS_Codes_v2.xlsx`, SHA-256 `{digest}`" in page
    assert "- smic: label table `SMIC`, SHA-256 `no table (labels from folders)`" in page
    assert "- apex_missing: 2 clip(s): smic/s1/s1_po_01, smic/s1/s1_sur_01" in page

    # a change to one part's table reruns that part's stage only
    _commit(repo)
    fixtures._write_xlsx(Path(repo.path / "data/raw/SAMM_Micro_FACS_Codes_v2.xlsx"), ["x"], [[1]], frozenset())
    status = repo.dvc("status", "--json", "--with-deps", "report").stdout
    assert set(json.loads(status)) == {"ingest_part@samm"}, status


def test_cross_data_set_config_trains_on_casme2_and_tests_on_samm(parts, tmp_path):
    repo = copy_repo(parts, tmp_path / "repo")
    done = repo.dvc("exp", "run", "-S", "dataset=casme2_to_samm", *(f"-S{s}" for s in SHRINK), "report")
    assert {"ingest_part@casme2", "ingest_part@samm", "ingest", "train@samm-7", "report"} <= ran(done.stdout)
    manifest = pd.read_csv(repo.path / "data/manifest.csv", dtype=str, keep_default_na=False)
    assert manifest.groupby("subject").size().to_dict() == {"casme2": 4, "samm": 2}  # the fold units: data sets
    curves = json.loads((repo.path / "reports/folds/seed7/samm/curves.json").read_text())
    splits = json.dumps(curves)
    assert "casme2/sub01/" in splits and "samm/012/012_1_1" in splits
    predictions = pd.read_csv(repo.path / "reports/predictions.csv")
    assert sorted(predictions.sample_id) == ["samm/012/012_1_1", "samm/012/012_2_1"]  # tested on SAMM only
    metrics = json.loads((repo.path / "reports/metrics.json").read_text())
    assert metrics["folds"] == 1 and metrics["clips"] == 2
    _check_per_dataset(repo, metrics, ["samm"])
    page = (repo.path / "reports/README.md").read_text()
    assert "2 clips in 1 cross-data-set folds (each tests on one data set, trained on the others: samm)" in page
