"""data/manifest.csv (mer.datasets.manifest_store): what ingest writes is what the preprocessing stages read."""

from __future__ import annotations

import pandas as pd
import pytest

from mer.datasets import manifest_store
from mer.datasets.protocols import Protocol
from mer.datasets.records import Clip

PROTOCOL = Protocol.from_params("toy", {"toy": {"classes": ["negative", "positive"], "map": {"sad": "negative"}}})


def _clip(clip: str, emotion: str, depth: bool) -> Clip:
    frames = [f"raw/sub01/{clip}/img{n}.jpg" for n in (7, 8, 10)]
    return Clip(
        subject="01",  # a numeric-looking subject must stay a string
        clip=clip,
        onset=7,
        apex=8,
        offset=10,
        emotion=emotion,
        frames=frames,
        frame_numbers=[7, 8, 10],
        source="coding.xlsx:row 3",
        repairs=("erratum",) if depth else (),
        depth_frames=[f.replace("img", "depth") for f in frames] if depth else None,
    )


def test_clips_read_back_with_their_lists_and_labels(tmp_path):
    clips = [_clip("EP01", "sad", depth=False), _clip("EP02", "Sad", depth=True)]
    manifest_store.write(tmp_path / "manifest.csv", manifest_store.table(clips, PROTOCOL))
    back = manifest_store.read(tmp_path / "manifest.csv")
    assert list(back.columns) == manifest_store.COLUMNS
    assert back.sample_id.tolist() == ["01/EP01", "01/EP02"] and back.subject.tolist() == ["01", "01"]
    assert back.label.tolist() == ["negative", "negative"] and back.label_index.tolist() == [0, 0]
    assert back.emotion.tolist() == ["sad", "Sad"]
    assert back.frame_numbers.tolist() == [[7, 8, 10], [7, 8, 10]]
    assert back.frames[1] == clips[1].frames and back.depth_frames[1] == clips[1].depth_frames
    assert back.depth_frames[0] is None and back.repairs.tolist() == ["", "erratum"]


def test_a_manifest_read_and_changed_writes_back_in_the_same_format(tmp_path):
    """As stage apex@ writes its copy: read, apex changed, written; only that cell's bytes differ."""
    clips = [_clip("EP01", "sad", depth=False), _clip("EP02", "Sad", depth=True)]
    manifest_store.write(tmp_path / "manifest.csv", manifest_store.table(clips, PROTOCOL))
    back = manifest_store.read(tmp_path / "manifest.csv")
    manifest_store.write(tmp_path / "same.csv", back)
    assert (tmp_path / "same.csv").read_bytes() == (tmp_path / "manifest.csv").read_bytes()
    back.loc[1, "apex"] = 10
    manifest_store.write(tmp_path / "changed.csv", back)
    written = (tmp_path / "manifest.csv").read_text().splitlines()
    assert (tmp_path / "changed.csv").read_text().splitlines() == [
        *written[:2],
        written[2].replace(",7,8,10,", ",7,10,10,"),
    ]


def test_a_label_outside_the_protocol_names_the_clip_and_row():
    with pytest.raises(ValueError, match=r"coding\.xlsx:row 3: clip 01/EP03 has label 'happy', outside protocol 'toy'"):
        manifest_store.table([_clip("EP03", "happy", depth=False)], PROTOCOL)


def test_another_csv_is_named_with_the_missing_columns(tmp_path):
    pd.DataFrame({"sample_id": ["a"], "subject": ["s"]}).to_csv(tmp_path / "other.csv", index=False)
    with pytest.raises(ValueError, match=r"other\.csv: not an ingest manifest \(missing columns \['clip', 'label'"):
        manifest_store.read(tmp_path / "other.csv")
