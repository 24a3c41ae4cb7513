"""The attention stage after `dvc repro` of the tiny pipeline: reports/attention.png, a declared plot, drawn
from the first seed's fold models, and the synthetic clips' mean maps peak where the generator moved them."""

from __future__ import annotations

import pytest

from mer.io import read_json

pytestmark = pytest.mark.slow


def test_attention_figure_and_maps_after_repro(pipeline):
    figure = pipeline.path / "reports/attention.png"
    assert figure.stat().st_size > 10_000
    assert "reports/attention.png" in pipeline.dvc("plots", "show", "--json").stdout
    report = read_json(pipeline.path / "reports/attention.json")
    size = pipeline.params()["input"]["size"]  # 32 px: maps of 16, 8, 4, 2 (at 224: 112, 56, 28, 14)
    assert report["map_sizes"] == {"CA1": size // 2, "CA2": size // 4, "CA3": size // 8, "CA4": size // 16}
    assert report["clips"] == 4 and len(report["shown"]) == 4  # 2 per class, 2 classes with 2 clips each


def test_mean_maps_peak_inside_the_moving_region_more_often_than_chance(pipeline):
    check = read_json(pipeline.path / "reports/attention.json")["peak_in_moving_region"]
    assert check["clips"] == 4
    assert 0 < check["expected_by_chance"] < 4
    assert check["hits"] > check["expected_by_chance"], check


def test_attention_reads_the_first_seeds_models(pipeline):
    import yaml

    lock = yaml.safe_load((pipeline.path / "dvc.lock").read_text())["stages"]["attention@synthetic"]
    assert "models/seed7" in {dep["path"] for dep in lock["deps"]}
    assert "--models models/seed7 " in lock["cmd"]
