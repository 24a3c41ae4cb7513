"""MEGC spotting scores against hand-computed cases."""

from __future__ import annotations

import pytest

from mer.spotting.scoring import counts, iou, match, scores


def test_iou_of_inclusive_frame_ranges():
    assert iou((10, 19), (10, 19)) == 1.0
    assert iou((10, 19), (15, 24)) == pytest.approx(5 / 15)  # 15..19 shared, 10..24 covered
    assert iou((10, 19), (20, 29)) == 0.0  # touching ends share no frame
    assert iou((10, 10), (10, 12)) == pytest.approx(1 / 3)
    assert iou((0, 3), (1, 3)) == pytest.approx(3 / 4)


def test_each_labelled_interval_is_matched_at_most_once():
    labelled = [(100, 110), (200, 205)]
    # two spotted intervals on the first label: the one overlapping it most gets it, the other is a FP
    spotted = [(101, 110), (100, 108), (300, 310), (199, 205)]
    assert match(spotted, labelled) == [0, None, None, 1]
    assert counts(spotted, labelled) == {"tp": 2, "fp": 2, "fn": 0}


def test_iou_just_below_half_is_a_miss():
    # (100, 109) vs (105, 114): 5 shared of 15 -> 0.33; (100, 109) vs (103, 112): 7 of 13 -> 0.54
    assert counts([(105, 114)], [(100, 109)]) == {"tp": 0, "fp": 1, "fn": 1}
    assert counts([(103, 112)], [(100, 109)]) == {"tp": 1, "fp": 0, "fn": 0}
    assert iou((100, 109), (104, 113)) == pytest.approx(6 / 14)
    assert counts([(104, 113)], [(100, 109)])["tp"] == 0


def test_precision_recall_f1():
    assert scores(3, 1, 2) == pytest.approx({"precision": 0.75, "recall": 0.6, "f1": 2 * 0.75 * 0.6 / 1.35})
    assert scores(0, 0, 4) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert scores(0, 2, 0) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
