"""Per-clip work in a process pool, streamed in input order, with a progress bar.

Results come back one at a time (`imap`), so a stage can write each clip as it arrives and
memory does not grow with the number of clips. `workers <= 0` means one per CPU core;
`workers == 1` runs in-process (simplest to debug, same results).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")
R = TypeVar("R")


def worker_count(requested: int) -> int:
    return requested if requested > 0 else (os.cpu_count() or 1)


def map_clips(
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    workers: int = 0,
    desc: str = "",
    initializer: Callable[..., None] | None = None,
    initargs: tuple = (),
    total: int | None = None,
) -> Iterator[R]:
    """`fn` over `items` in order; `initializer(*initargs)` runs once per worker (e.g. loads a model)."""
    workers = worker_count(workers)
    items = list(items)
    bar = tqdm(total=total or len(items), desc=desc, unit="clip")
    try:
        if workers == 1 or len(items) <= 1:
            if initializer:
                initializer(*initargs)
            for item in items:
                yield fn(item)
                bar.update()
            return
        with ProcessPoolExecutor(workers, initializer=initializer, initargs=initargs) as pool:
            for result in pool.map(fn, items, chunksize=1):
                yield result
                bar.update()
    finally:
        bar.close()
