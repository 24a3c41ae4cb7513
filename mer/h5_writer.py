"""The life of a stage file written clip by clip (crops, cache, flow): one HDF5 file open under a temporary name
beside its path, renamed onto the path only when the `with` block ends without an exception and the file is whole,
else removed, so an interrupted or failed stage leaves nothing a rerun would trust."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

import h5py

from mer.io import atomic_path


class H5Writer:
    """Base of the `*Writer` classes of the `*_store` modules. `expected`: how many clips the file must hold
    (each `add` counts one in `written`); `what` names the file in the error when fewer were added."""

    def __init__(self, path: str | Path, what: str, expected: int | None = None) -> None:
        self._atomic = atomic_path(path, ".h5")
        self._file = h5py.File(self._atomic.__enter__(), "w")
        self._what, self._expected = what, expected
        self.written = 0

    def _finish(self) -> None:
        """What the file gets once every clip is in, before it closes (an index, say)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, traceback: Any) -> None:
        if kind is None:
            self._finish()
        self._file.close()
        if kind is None and self._expected is not None and self.written != self._expected:
            self._atomic.__exit__(RuntimeError, None, None)
            raise RuntimeError(f"{self._what}: {self.written} of {self._expected} clips written; file discarded")
        self._atomic.__exit__(kind, value, traceback)
