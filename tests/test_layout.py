"""mer/'s imports run one way: no import cycle among its modules, and the report package never imports the
training package (a training change must not rerun the report; dvc.yaml's deps follow the imports)."""

from __future__ import annotations

from pathlib import Path

from mer.deps import imported, module_file

ROOT = Path(__file__).resolve().parents[1]


def _graph() -> dict[str, set[str]]:
    """Module file -> the mer module files it imports (package __init__ files counted as their package)."""
    graph: dict[str, set[str]] = {}
    for path in sorted((ROOT / "mer").rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        files = {module_file(ROOT, name) for name in imported(ROOT, path)}
        graph[rel] = {str(f.relative_to(ROOT)) for f in files if f} - {rel}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle (a list of files, first == last), or [] when there is none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for child in sorted(graph.get(node, ())):
            if state.get(child) == 1:
                return path[path.index(child) :] + [child]
            if child not in state and (found := visit(child)):
                return found
        path.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


def test_no_import_cycle_in_mer():
    assert _cycle(_graph()) == []


def test_the_cycle_finder_finds_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]


def test_report_never_imports_training():
    offending = {
        module: sorted(i for i in imports if i.startswith("mer/training/"))
        for module, imports in _graph().items()
        if module.startswith("mer/report/")
    }
    assert {m: i for m, i in offending.items() if i} == {}
    assert Path(ROOT / "mer/report/scores.py").is_file() and Path(ROOT / "mer/training/loop.py").is_file()
