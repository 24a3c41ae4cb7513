"""Format precomputed: a table of per-clip input files (MEGC 2019's published flow images in HTNet's layout)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mer.datasets import precomputed
from mer.datasets.ingest import IngestError, ingest
from mer.datasets.protocols import Protocol
from tests.datasets.fixtures import HTNET_TABLE, htnet_flow

PROTOCOL = Protocol(
    "megc2019_flow_3class", ("negative", "positive", "surprise"), {"0": "negative", "1": "positive", "2": "surprise"}
)


def _ingest(layout, on_error="fail", table=HTNET_TABLE):
    return ingest("precomputed", *layout.paths, PROTOCOL, on_error=on_error, table=table)


def test_htnet_layout_ingests_with_part_prefixed_ids(tmp_path):
    layout = htnet_flow(tmp_path)
    result = _ingest(layout)
    report = result.report
    assert report["subjects"] == ["casme2_sub01", "casme2_sub02", "samm_006", "samm_007", "smic_s01", "smic_s02"]
    assert report["clips"] == 24 and report["per_class"] == {"negative": 12, "positive": 6, "surprise": 6}
    assert report["per_dataset"] == {"casme2": 8, "samm": 8, "smic": 8}
    first = result.clips[0]
    assert (first.sample_id, first.subject, first.clip) == ("casme2/sub01/EP00_01f", "casme2_sub01", "EP00_01f")
    assert first.frames == [str(layout.root / "sub01_EP00_01f .png")]  # the space before .png, as published
    assert {c.sample_id: c.source for c in result.clips}["samm/006/006_1_2"] == f"{layout.labels}:row 11"


def test_load_input_is_the_image_in_rgb_order_scaled_to_one(tmp_path):
    layout = htnet_flow(tmp_path)
    path = layout.root / "006_006_2_3 .png"
    array = precomputed.load_input(path, 28, 3)
    expected = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB).transpose(2, 0, 1) / 255.0
    assert array.shape == (3, 28, 28) and array.dtype == np.float32
    np.testing.assert_allclose(array, expected, atol=1e-7)
    assert array[2].mean() > array[0].mean()  # label 2: the generator brightened channel 2 (surprise)


def test_npy_inputs_channels_first_or_last(tmp_path):
    stored = np.random.default_rng(1).normal(size=(2, 28, 28)).astype(np.float32)
    np.save(tmp_path / "first.npy", stored)
    np.save(tmp_path / "last.npy", stored.transpose(1, 2, 0))
    for name in ("first.npy", "last.npy"):
        np.testing.assert_array_equal(precomputed.load_input(tmp_path / name, 28, 2), stored)
    with pytest.raises(ValueError, match=r"first\.npy: shape \(2, 28, 28\), expected 28x28 with 3 channel"):
        precomputed.check_file(tmp_path / "first.npy", 28, 3)


@pytest.mark.parametrize(
    "fault,row,reason",
    [
        ("missing_file", "casme2/sub01/EP00_01f", r"file .*sub01_EP00_01f \.png not found"),
        ("wrong_size", "casme2/sub01/EP01_01f", r"sub01_EP01_01f \.png: shape \(27, 28, 3\), expected 28x28 with 3"),
        ("grey", "casme2/sub01/EP02_01f", r"sub01_EP02_01f \.png: shape \(28, 28, 1\), expected 28x28 with 3"),
        (
            "unknown_label",
            "casme2/sub01/EP03_01f",
            r"label '3' is not in protocol 'megc2019_flow_3class' \(which maps 0, 1, 2\)",
        ),
        ("duplicate", "duplicate", r"duplicate clip id, first seen at .*:row 2"),
    ],
)
def test_bad_rows_name_row_and_file_and_are_skipped_only_when_allowed(tmp_path, fault, row, reason):
    layout = htnet_flow(tmp_path, faults=[fault])
    with pytest.raises(IngestError, match="1 label row\\(s\\) rejected") as failed:
        _ingest(layout)
    (rejected,) = failed.value.rejected
    assert rejected.source == f"{layout.labels}:row {layout.rows[row]}"
    assert __import__("re").search(reason, rejected.reason), rejected.reason
    report = _ingest(layout, on_error="skip").report
    assert report["rejected_count"] == 1 and report["clips"] == 24 - (fault != "duplicate")


def test_a_table_without_the_options_names_them(tmp_path):
    layout = htnet_flow(tmp_path)
    with pytest.raises(IngestError, match=r"needs dataset\.table\.file, dataset\.table\.size"):
        _ingest(layout, table={k: v for k, v in HTNET_TABLE.items() if k not in ("file", "size")})
    with pytest.raises(IngestError, match=r"no header row containing 'subject_id'"):
        _ingest(layout, table={**HTNET_TABLE, "subject": "subject_id"})
