"""The spot stage's measure on a generated recording: counts, pooled scores and rows against the truth."""

from __future__ import annotations

import pytest

from mer.spotting.evaluate import ROW_COLUMNS, evaluate
from mer.spotting.spotter import SpotConfig


def test_every_event_found_no_blink_apexes_exact(long_small, dlib_detector):
    root, meta = long_small
    result = evaluate(root, meta, SpotConfig(), dlib_detector)
    m = result.metrics
    assert (m["tp"], m["fp"], m["fn"], m["events"], m["blinks"]) == (3, 0, 0, 3, 2)
    assert (m["precision"], m["recall"], m["f1"], m["blinks_reported"]) == (1.0, 1.0, 1.0, 0)
    assert m["apex_error_mean"] == 0.0 and m["apex_error_p90"] == 0.0
    assert [len(row) for row in result.rows] == [len(ROW_COLUMNS)] * 3
    assert all(row[6] and row[7] >= 0.5 and not row[8] for row in result.rows)  # hit, IoU, not a blink


def test_a_label_where_nothing_moves_is_a_miss_and_its_event_a_false_positive(long_small, dlib_detector, tmp_path):
    root, meta = long_small
    lines = (root / "labels.csv").read_text().splitlines()
    sub, count, onset, apex, offset, au, emotion = lines[1].split(",")
    info = meta["recordings"]["1"]
    others = [(e["onset"] - 10, e["offset"] + 10) for e in info["events"][1:] + info["blinks"]]
    shift = next(s for s in range(20, 200) if all(b < int(onset) + s or a > int(offset) + s for a, b in others))
    moved = [str(int(v) + shift) for v in (onset, apex, offset)]
    lines[1] = ",".join([sub, count, *moved, au, emotion])
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "recordings").symlink_to(root / "recordings")
    m = evaluate(tmp_path, meta, SpotConfig(), dlib_detector).metrics
    assert (m["tp"], m["fp"], m["fn"]) == (2, 1, 1)
    assert (m["precision"], m["recall"], m["f1"]) == pytest.approx((2 / 3, 2 / 3, 2 / 3), abs=1e-4)
