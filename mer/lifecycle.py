"""Stage processes that end with the process that launched them.

DVC runs each stage as `$SHELL -c "python stages/<name>.py ..."` (the shell execs python). If
`dvc repro` is killed with SIGKILL it cannot stop its child, which would go on using the CPU
and writing outputs nobody records. On Linux, prctl(PR_SET_PDEATHSIG) asks the kernel to send
the stage SIGTERM when its parent dies; the request is renewed in every forked child (the
process pools of mer.parallel), so a stage's workers end with the stage. Python's default
SIGTERM action ends the process at once: an atomic write in progress leaves only its hidden
temporary file, which nothing reads.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from pathlib import Path

PR_SET_PDEATHSIG = 1
# who launched this process, taken at import: a stage imports this module before its slow imports
# (torch), so a launcher killed during those is still noticed when exit_with_parent runs (and under
# DVC, even a launcher killed before this import: see _under_dvc)
_LAUNCHED = (os.getpid(), os.getppid())


def exit_with_parent(sig: int = signal.SIGTERM) -> bool:
    """Have this process, and every process it forks, receive `sig` when its parent dies.

    Returns False where the platform has no such request (not Linux); the stage then runs as before.
    """
    if not sys.platform.startswith("linux"):
        return False
    parent = _LAUNCHED[1] if _LAUNCHED[0] == os.getpid() else os.getppid()
    _request(sig)
    os.register_at_fork(after_in_child=lambda: _request(sig))
    if os.getppid() != parent or (os.environ.get("DVC_STAGE") and not _under_dvc()):
        os.kill(os.getpid(), sig)  # the launcher died before the request took effect: end now, as it would have
    return True


def _under_dvc() -> bool:
    """Whether a process whose command line names dvc is among our ancestors (DVC sets DVC_STAGE for its
    stages; if none is left, `dvc repro` was killed before this process could notice)."""
    pid = os.getppid()
    while pid > 0:
        try:
            if b"dvc" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return True
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
    return False


def _request(sig: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"prctl(PR_SET_PDEATHSIG) failed: {os.strerror(error)}")
