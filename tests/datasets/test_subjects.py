"""The fold units of a composite and the `dataset.subjects` check: one rule for ingest, the join and check-data."""

from __future__ import annotations

from mer.datasets.subjects import fold_unit, fold_units, natural_key, subjects_fault


def test_fold_units_by_subject_are_prefixed_and_naturally_ordered_within_each_part() -> None:
    kept = {"samm": ["036", "006", "006"], "casme2": ["sub10", "sub2", "sub01"], "smic": []}
    assert fold_units(kept, "subject") == ["samm_006", "samm_036", "casme2_sub01", "casme2_sub2", "casme2_sub10"]
    assert fold_unit("samm", "006") == "samm_006" and fold_unit("samm", "006", "dataset") == "samm"


def test_fold_units_by_data_set_are_the_parts_with_clips_in_their_order() -> None:
    assert fold_units({"samm": ["006"], "smic": [], "casme2": ["sub01"]}, "dataset") == ["samm", "casme2"]


def test_a_subject_list_off_the_data_names_both_and_gives_the_list_to_paste() -> None:
    data = sorted(["sub10", "sub2", "sub01"], key=natural_key)
    assert subjects_fault(data, data) is None
    fault = subjects_fault(["006", "sub01"], data)
    assert fault == (
        "the LOSO subject list in params.yaml (dataset.subjects) does not match the data.\n"
        "  params: ['006', 'sub01']\n  data:   ['sub01', 'sub2', 'sub10']\n"
        'Set it to the data\'s list:\n  subjects: ["sub01", "sub2", "sub10"]'
    )


def test_data_set_folds_name_test_parts_among_those_with_clips() -> None:
    assert subjects_fault(["samm"], ["casme2", "samm"], "dataset") is None
    assert subjects_fault(["casme2", "samm"], ["casme2", "samm"], "dataset") is None
    unknown = subjects_fault(["smic"], ["casme2", "samm"], "dataset")
    assert unknown is not None and "['smic'] is not a part with clips (['casme2', 'samm'])" in unknown
    assert "e.g. subjects: [samm]" in unknown
    assert "[] is not a part with clips (['casme2'])" in (subjects_fault([], ["casme2"], "dataset") or "")
    alone = subjects_fault(["casme2"], ["casme2"], "dataset")
    assert alone == "dataset.subjects ['casme2']: the only part with clips; a fold needs another to train on"
