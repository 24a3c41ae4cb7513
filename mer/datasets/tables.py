"""Label tables: load xlsx/csv, find the header row, match columns by name, parse frame cells.

Column names are matched case- and space-insensitively; frame numbers may be stored as text.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from mer.datasets.records import IngestError

MISSING_APEX = object()


def normalise_name(name: object) -> str:
    return re.sub(r"[\s_]+", "", str(name)).lower()


def load_table(path: str | Path, header_hint: str = "subject", sheets: tuple[str | int, ...] = (0,)) -> pd.DataFrame:
    """Read a label table, locating the header row as the first row holding `header_hint`.

    `sheets`: the workbook's sheet is the first of these it has (a name, or an index).
    The returned frame keeps a `_row` column: the 1-based row number in the file, for messages.
    """
    path = Path(path)
    if not path.is_file():
        raise IngestError(f"{path}: label table not found")
    try:
        if path.suffix.lower() in {".xlsx", ".xlsm", ".xls"}:
            with pd.ExcelFile(path) as book:
                sheet = _pick_sheet(path, book.sheet_names, sheets)
                raw = pd.read_excel(book, sheet_name=sheet, header=None, dtype=object)
        else:
            raw = pd.read_csv(path, header=None, dtype=object, keep_default_na=False, skip_blank_lines=False)
    except IngestError:
        raise
    except Exception as exc:  # openpyxl/pandas raise many types for a damaged file
        raise IngestError(f"{path}: cannot read label table ({type(exc).__name__}: {exc})") from exc
    header_row = _find_header(raw, header_hint)
    if header_row is None:
        raise IngestError(f"{path}: no header row containing {header_hint!r} found")
    names = [_column_name(v, i) for i, v in enumerate(raw.iloc[header_row])]
    table = raw.iloc[header_row + 1 :].copy()
    table.columns = names
    table["_row"] = [i + 1 for i in table.index]  # pandas index is 0-based file row
    table = table[~table.drop(columns="_row").map(_blank).all(axis=1)]
    return table.reset_index(drop=True)


# Columns only one data set's table has (normalised names): a table of another data set is named as such.
MARKERS = (
    ("samm", {"inducementcode"}),
    ("mmew", {"remarks"}),
    ("casme3", {"au", "objectiveclass"}),
    ("casme2", {"actionunits", "estimatedemotion"}),
)


def require_dataset(table: pd.DataFrame, path: str | Path, fmt: str) -> None:
    """Refuse the table of another data set (the readers would otherwise half-read it)."""
    names = {normalise_name(c) for c in table.columns}
    guess = next((name for name, marks in MARKERS if marks <= names), None)
    if guess is not None and guess != fmt:
        raise IngestError(
            f"{path}: this looks like the {guess} label table (its columns: "
            f"{', '.join(repr(c) for c in table.columns if c != '_row')}), not a {fmt} one; "
            f"set dataset.format={guess}, or point dataset.labels at the {fmt} table"
        )


def column(table: pd.DataFrame, path: str | Path, *candidates: str) -> str:
    """The table's actual column name matching one of `candidates` (case/space-insensitive)."""
    wanted = {normalise_name(c) for c in candidates}
    for name in table.columns:
        if normalise_name(name) in wanted:
            return name
    raise IngestError(
        f"{path}: missing column {candidates[0]!r} (looked for {', '.join(map(repr, candidates))}; "
        f"found {', '.join(repr(c) for c in table.columns if c != '_row')})"
    )


def parse_frame(value: object, what: str) -> int:
    """A frame-number cell as int; raises ValueError with a readable reason."""
    if _blank(value):
        raise ValueError(f"{what} is empty")
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"{what} is not a frame number: {text!r}") from None
    if number != int(number):
        raise ValueError(f"{what} is not a whole frame number: {text!r}")
    return int(number)


def parse_apex(value: object) -> int | object:
    """The apex cell, or MISSING_APEX for the known 'no apex' markers ('/', -1, empty)."""
    if _blank(value) or str(value).strip() in {"/", "-1", "-1.0"}:
        return MISSING_APEX
    return parse_frame(value, "apex")


def cell_text(value: object) -> str:
    return "" if _blank(value) else str(value).strip()


def _pick_sheet(path: Path, names: list[int | str], wanted: tuple[str | int, ...]) -> str | int:
    for sheet in wanted:
        if isinstance(sheet, int) or sheet in names:
            return sheet
    raise IngestError(
        f"{path}: no sheet named {' or '.join(map(repr, wanted))} (the workbook has "
        f"{', '.join(map(repr, names))}); is this the right data set's table?"
    )


def _find_header(raw: pd.DataFrame, hint: str) -> int | None:
    for i in range(min(len(raw), 50)):
        if any(normalise_name(v) == hint for v in raw.iloc[i] if not _blank(v)):
            return i
    return None


def _column_name(value: object, index: int) -> str:
    return f"Unnamed: {index}" if _blank(value) else str(value).strip()


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value)) or str(value).strip() == ""
