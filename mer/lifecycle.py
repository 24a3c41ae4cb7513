"""Stage processes that end with the `dvc repro` that launched them.

DVC runs each stage as `$SHELL -c "python stages/<name>.py ..."`. If `dvc repro` is killed with
SIGKILL it cannot stop its child, which would go on using the CPU and writing outputs nobody
records. On Linux, prctl(PR_SET_PDEATHSIG) asks the kernel to send the stage SIGTERM when its
parent dies; the request is renewed in every forked child (the process pools of mer.parallel), so
a stage's workers end with the stage. Bash execs a lone command, so its stage's parent is dvc; a
shell that does not (dash as /bin/sh, the default when SHELL is unset, or a compound command) sits
between, and outlives dvc: the stage then also watches the dvc process itself (a pidfd, so a reused
pid cannot fool it). Python's default SIGTERM action ends the process at once: an atomic write in
progress leaves only its hidden temporary file, which nothing reads.
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import sys
import threading
from pathlib import Path

PR_SET_PDEATHSIG = 1
# who launched this process, taken at import: a stage imports this module before its slow imports
# (torch), so a launcher killed during those is still noticed when exit_with_parent runs (and under
# DVC, even a launcher killed before this import: see _dvc_ancestor)
_LAUNCHED = (os.getpid(), os.getppid())


def exit_with_parent(sig: int = signal.SIGTERM) -> bool:
    """Have this process, and every process it forks, receive `sig` when its parent (or, under DVC,
    the dvc process above it) dies.

    Returns False where the platform has no such request (not Linux); the stage then runs as before.
    """
    if not sys.platform.startswith("linux"):
        return False
    parent = _LAUNCHED[1] if _LAUNCHED[0] == os.getpid() else os.getppid()
    _request(sig)
    os.register_at_fork(after_in_child=lambda: _request(sig))
    launcher = _dvc_ancestor() if os.environ.get("DVC_STAGE") else None
    if os.getppid() != parent or (os.environ.get("DVC_STAGE") and launcher is None):
        os.kill(os.getpid(), sig)  # the launcher died before the request took effect: end now, as it would have
    elif launcher is not None and launcher != os.getppid():
        _watch(launcher, sig)
    return True


def _dvc_ancestor() -> int | None:
    """The nearest ancestor that runs dvc (DVC sets DVC_STAGE for its stages; if none is left, `dvc repro`
    was killed before this process could notice)."""
    pid = os.getppid()
    while pid > 0:
        try:
            if _runs_dvc(Path(f"/proc/{pid}/cmdline").read_bytes()):
                return pid
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return None
    return None


def _runs_dvc(cmdline: bytes) -> bool:
    """`dvc ...`, `python .../bin/dvc ...` or `python -m dvc ...`; not a shell whose command mentions dvc."""
    args = cmdline.split(b"\0")
    return b"dvc" in (os.path.basename(arg) for arg in args[:2]) or args[1:3] == [b"-m", b"dvc"]


def _watch(pid: int, sig: int) -> None:
    """Send ourselves `sig` when process `pid` ends, from a daemon thread blocked on its pidfd."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        os.kill(os.getpid(), sig)
        return

    def wait() -> None:
        select.select([pidfd], [], [])
        os.kill(os.getpid(), sig)

    threading.Thread(target=wait, name="mer-exit-with-dvc", daemon=True).start()


def _request(sig: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"prctl(PR_SET_PDEATHSIG) failed: {os.strerror(error)}")
