import json
import os
import shutil
import stat

import pytest

import mer.io
from mer.io import atomic_dir, atomic_path, write_bytes, write_json


def test_atomic_path_keeps_old_file_when_writer_fails(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]  # no temp file left behind


def test_atomic_dir_replaces_only_on_success(tmp_path):
    target = tmp_path / "data"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "new.txt").write_text("new")
            raise RuntimeError("interrupted")
    assert [p.name for p in target.iterdir()] == ["old.txt"]
    with atomic_dir(target) as tmp:
        (tmp / "new.txt").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_write_json_numpy_values(tmp_path):
    import numpy as np

    write_json(tmp_path / "r.json", {"a": np.int64(3), "b": np.arange(2), "c": np.float32(0.5)})
    assert json.loads((tmp_path / "r.json").read_text()) == {"a": 3, "b": [0, 1], "c": 0.5}


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_outputs_get_the_umask_mode_not_mkstemps_0600(tmp_path, umask_022):
    write_json(tmp_path / "metrics.json", {"a": 1})
    write_bytes(tmp_path / "model.pt", b"x")
    with atomic_path(tmp_path / "README.md", ".md") as tmp:
        tmp.write_text("report")
    with atomic_dir(tmp_path / "cropped") as tmp:
        (tmp / "img1.png").write_bytes(b"png")
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert modes == {"metrics.json": 0o644, "model.pt": 0o644, "README.md": 0o644, "cropped": 0o755}
    assert stat.S_IMODE((tmp_path / "cropped" / "img1.png").stat().st_mode) == 0o644
    os.umask(0o027)
    write_json(tmp_path / "private.json", {})
    assert stat.S_IMODE((tmp_path / "private.json").stat().st_mode) == 0o640
    assert mer.io.umask() == 0o027


def test_file_is_fsynced_before_its_rename_and_the_folder_after(tmp_path, monkeypatch):
    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(
        os, "fsync", lambda fd: (calls.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))), real_fsync(fd))
    )
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append(("replace", str(b))), real_replace(a, b)))
    write_json(tmp_path / "r.json", {})
    assert [c[0] for c in calls] == ["fsync", "replace", "fsync"]
    assert calls[0][1].startswith(str(tmp_path / ".r.json.")) and calls[2][1] == str(tmp_path)


def _old_folder(tmp_path):
    target = tmp_path / "data"
    target.mkdir()
    (target / "old.txt").write_text("old")
    return target


def _contents(folder):
    return sorted(p.name for p in folder.iterdir())


def test_directory_swap_is_one_exchange_on_linux(tmp_path, monkeypatch):
    target = _old_folder(tmp_path)
    monkeypatch.setattr(os, "replace", lambda a, b: pytest.fail(f"replace({a}, {b}) instead of an exchange"))
    with atomic_dir(target) as tmp:
        (tmp / "new.txt").write_text("new")
    assert _contents(target) == ["new.txt"]
    assert _contents(tmp_path) == ["data"]


@pytest.mark.parametrize("step", ["exchange", "fsync"])
def test_interrupted_exchange_keeps_the_old_folder_or_the_whole_new_one(tmp_path, monkeypatch, step):
    target = _old_folder(tmp_path)
    real_exchange = mer.io._exchange
    if step == "exchange":
        monkeypatch.setattr(mer.io, "_exchange", lambda a, b: _interrupt())
    else:  # the swap happened, the following fsync of the parent is interrupted
        monkeypatch.setattr(mer.io, "_exchange", lambda a, b: (real_exchange(a, b), _interrupt()))
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(target) as tmp:
            (tmp / "new.txt").write_text("new")
    assert _contents(target) == (["old.txt"] if step == "exchange" else ["new.txt"])
    assert _contents(tmp_path) == ["data"]


@pytest.mark.parametrize("interrupted", [1, 2, 3])
def test_rename_aside_replace_keeps_the_old_folder_when_interrupted_at_every_step(tmp_path, monkeypatch, interrupted):
    """Without renameat2: rename old aside (1), rename new in (2), delete the old (3)."""
    target = _old_folder(tmp_path)
    monkeypatch.setattr(mer.io, "_exchange", lambda a, b: False)
    steps = []
    real_replace, real_rmtree = os.replace, shutil.rmtree

    def step(real):
        def run(*args, **kwargs):
            steps.append(real.__name__)
            if len(steps) == interrupted:
                _interrupt()
            return real(*args, **kwargs)

        return run

    monkeypatch.setattr(os, "replace", step(real_replace))
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(target) as tmp:
            (tmp / "new.txt").write_text("new")
            monkeypatch.setattr(
                shutil,
                "rmtree",
                lambda p, ignore_errors=False: (
                    steps.append("rmtree") if not ignore_errors else None,
                    _interrupt() if not ignore_errors and len(steps) == interrupted else None,
                    real_rmtree(p, ignore_errors=ignore_errors),
                ),
            )
    monkeypatch.undo()
    assert steps[:interrupted] == ["replace", "replace", "rmtree"][:interrupted]
    assert _contents(target) == (["new.txt"] if interrupted == 3 else ["old.txt"])
    with atomic_dir(target) as tmp:  # the next run starts clean
        (tmp / "newer.txt").write_text("newer")
    assert _contents(target) == ["newer.txt"]
    assert _contents(tmp_path) == ["data"]


def test_a_crash_between_the_two_renames_is_repaired_by_the_next_run(tmp_path):
    """kill -9 after the old folder went aside and before the new one came in: the old one comes back."""
    aside = tmp_path / ".data.old"
    aside.mkdir()
    (aside / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path / "data"):
            raise RuntimeError("this run fails too")
    assert _contents(tmp_path / "data") == ["old.txt"]
    assert _contents(tmp_path) == ["data"]


def _interrupt():
    raise KeyboardInterrupt("simulated crash")
