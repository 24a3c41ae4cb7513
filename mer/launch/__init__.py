"""Parallel folds for `mer launch`: which fold stages are stale (DVC), the thread budget each fold runs with,
a task that runs one fold in its own clone of the workspace, and the pools that run tasks (this machine, or Ray).

The command (mer/commands/launch.py) strings them together and prints; nothing here writes in the workspace but
`budget.set_threads_param`.
"""
