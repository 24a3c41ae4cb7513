"""A data set's fold units and `dataset.subjects` checked against them: the one rule ingest, the composite join
and `mer check-data` apply.

The fold unit of a single data set is its subject. A composite's (mer/datasets/composite.py) is, by
`dataset.folds`, the subject prefixed with its part (`casme2_sub01`, `samm_006`: ids stay unique across parts)
or the whole part (a fold tests on one data set after training on the others). Under subject folds
`dataset.subjects` must be the data's list, as ordered here; under data-set folds it names the parts each fold
tests on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping, Sequence

FOLDS = ("subject", "dataset")


def natural_key(text: str) -> list:
    """Sort 'sub2' before 'sub10' and 'spNO.9' before 'spNO.10'."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def fold_unit(part: str, subject: str, folds: str = "subject") -> str:
    """The composite's fold unit of a clip of `subject` in `part`."""
    return f"{part}_{subject}" if folds == "subject" else part


def fold_units(subjects: Mapping[str, Collection[str]], folds: str) -> list[str]:
    """A composite's fold units, from each part's subjects with clips (part -> subjects, in the parts' order)."""
    if folds == "subject":
        return [fold_unit(part, s) for part, found in subjects.items() for s in sorted(set(found), key=natural_key)]
    return [part for part, found in subjects.items() if found]


def subjects_fault(listed: Sequence[str], units: list[str], folds: str = "subject") -> str | None:
    """Why `dataset.subjects` (`listed`) does not fit the data's fold units, with the fix; None when it fits."""
    listed = list(listed)
    if folds == "subject":
        if listed == units:
            return None
        return (
            "the LOSO subject list in params.yaml (dataset.subjects) does not match the data.\n"
            f"  params: {listed}\n  data:   {units}\n"
            "Set it to the data's list:\n  subjects: " + json.dumps(units)  # quoted: YAML reads 006 as 6
        )
    unknown = [name for name in listed if name not in units]
    if unknown or not listed:
        example = f", e.g. subjects: [{units[-1]}]" if units else ""
        return (
            f"dataset.subjects names the test data set of each fold (dataset.folds: dataset); {unknown or listed} "
            f"is not a part with clips ({units}): set it to some of them{example}"
        )
    if set(listed) == set(units) and len(units) == 1:
        return f"dataset.subjects {listed}: the only part with clips; a fold needs another to train on"
    return None
