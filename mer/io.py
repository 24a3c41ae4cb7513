"""Atomic file writes and run reports.

Every output is written to a temporary sibling and renamed into place, so an interrupted
stage never leaves a half-written file that a rerun (or DVC) would trust.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import yaml


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    The file gets the mode a plain `open` would give (0666 less the umask: 0644 under 022), not
    mkstemp's 0600, so teammates on a shared file system can read it; it is fsynced before the
    rename and the folder after, so the rename survives a crash.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~umask())
        _fsync(tmp_path)
        os.replace(tmp_path, path)
        _fsync(path.parent)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory beside `path`; it replaces `path` only if the block succeeds.

    At no moment is there neither the old nor the new folder at `path`: where Linux offers it the
    two are swapped in one `renameat2(RENAME_EXCHANGE)`; elsewhere the old folder is renamed aside
    (`.<name>.old`), the new one renamed in, and only then is the old deleted. A crash between the
    two renames leaves the old folder aside, and the next `atomic_dir(path)` puts it back first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.parent / f".{path.name}.old"
    restore_aside(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~umask())
        _fsync_tree(tmp)
        if not path.exists():
            os.replace(tmp, path)
        elif not _exchange(tmp, path):  # `tmp` now holds the old folder
            os.replace(path, aside)
            try:
                os.replace(tmp, path)
            except BaseException:
                os.replace(aside, path)
                raise
            _fsync(path.parent)
            shutil.rmtree(aside)
        _fsync(path.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def restore_aside(path: str | os.PathLike) -> None:
    """Put back an old folder that an interrupted `atomic_dir` left aside, if `path` itself is gone."""
    path = Path(path)
    aside = path.parent / f".{path.name}.old"
    if aside.is_dir():
        if path.exists():
            shutil.rmtree(aside)
        else:
            os.replace(aside, path)


def umask() -> int:
    """The process umask, read without changing it where /proc tells it (os.umask alone must set one)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with Linux renameat2(RENAME_EXCHANGE); False where unsupported."""
    renameat2 = getattr(_libc(), "renameat2", None) if sys.platform.startswith("linux") else None
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # file system or kernel without the flag
        return False
    raise OSError(error, f"cannot swap {a} and {b}: {os.strerror(error)}")


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(folder: Path) -> None:
    """fsync every file and folder under `folder`, so a rename of `folder` publishes durable contents."""
    for root, _, files in os.walk(folder):
        for name in files:
            _fsync(Path(root) / name)
        _fsync(Path(root))


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write `data` as indented JSON, atomically (stable key order keeps `dvc metrics diff` readable)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def load_params(path: str | os.PathLike = "params.yaml") -> dict:
    """The whole params file; stages pick the keys they declare in dvc.yaml."""
    with open(path) as f:
        return yaml.safe_load(f)


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
