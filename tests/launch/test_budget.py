"""`mer launch`'s thread budget: how many threads each fold runs, and when params.yaml must say so."""

from __future__ import annotations

import pytest

from mer.launch.budget import ThreadBudget, set_threads_param, thread_budget


@pytest.mark.parametrize(
    ("param", "workers", "threads", "cores", "local", "expected", "sets_param"),
    [
        ("auto", 2, None, 2, True, 1, True),  # 2 folds at once on 2 cores: 1 thread each, written as the param
        ("auto", 3, None, 8, True, 2, True),  # cores / workers, rounded down
        ("auto", 4, None, 2, True, 1, True),  # at least 1
        ("auto", 1, None, 2, True, 2, False),  # every core: what `auto` already means here
        ("auto", 1, None, 2, False, 2, True),  # on a cluster `auto` would mean a node's cores, not this machine's
        (1, 2, None, 2, True, 1, False),  # a number in params is the budget
        (2, 2, None, 2, True, 2, False),  # ... even oversubscribed (said so, see below)
        (2, 2, 1, 2, True, 1, True),  # --threads overrides it, and sets it
        ("auto", 2, 2, 2, True, 2, False),  # --threads 2 on 2 cores: what `auto` means here (oversubscribed)
    ],
)
def test_budget(param, workers, threads, cores, local, expected, sets_param):
    budget = thread_budget(param, workers, threads, cores, local)
    assert (budget.threads, budget.sets_param) == (expected, sets_param)


def test_the_budget_line_says_what_changes_and_warns_of_oversubscription():
    assert str(thread_budget("auto", 2, None, 2, True)) == (
        "2 workers x 1 thread (on 2 cores); train.threads auto -> 1 in params.yaml (a fold's result depends on "
        "its thread count, so its params say it: folds trained at auto are stale)"
    )
    assert str(ThreadBudget(2, 2, 2, 2, True)) == (
        "2 workers x 2 threads (on 2 cores); OVERSUBSCRIBED: 4 threads on 2 cores run each fold several times "
        "slower (fewer --workers, or --threads 1)"
    )
    assert str(thread_budget(4, 8, None, 2, False)) == "8 workers x 4 threads (a task asks Ray for as many CPUs)"


def test_a_bad_thread_count_is_refused():
    with pytest.raises(SystemExit, match="--threads must be at least 1, got 0"):
        thread_budget("auto", 2, 0, 2, True)


def test_setting_the_param_changes_that_line_only(tmp_path):
    text = (
        "# generated\n"
        "model:\n  name: mmnet  # the paper's\n  options: {}\n"
        "train:\n  seeds:\n  - 7\n  - 8\n  threads: auto\n  precision: 'auto'\n"
        "previews:\n  threads: auto\n"
    )
    path = tmp_path / "params.yaml"
    path.write_text(text)
    set_threads_param(path, 3)
    assert path.read_text() == text.replace("  threads: auto\n  precision", "  threads: 3\n  precision")
