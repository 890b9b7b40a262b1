"""The package's shape: folders that import only the ones below them, and no import cycles.

Read from the code's own imports (those inside functions too), so a shortcut that would make
``training.core`` depend on how a model was trained, or close a loop in the data path, fails
here instead of in the next engineer's head.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "training"
FOUNDATION = {"training", "training.errors", "training.files", "training.content_types"}
FOUNDATION |= {"training.checksums", "training.progress", "training.limits"}


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts).removesuffix(".__init__")] = path
    return out


def imports() -> dict[str, set[str]]:
    """Each module's imports of other training modules, wherever in the file they are."""
    known = modules()
    graph = {}
    for name, path in known.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found |= {f"{node.module}.{a.name}" for a in node.names} | {node.module}
        graph[name] = {m for m in found if m in known and m != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_among_the_packages_modules():
    graph = imports()
    assert len(graph) > 40  # the walk found the package
    assert cycles(graph) == []


def test_the_finder_sees_a_cycle_through_an_import_inside_a_function():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_each_folder_imports_only_the_folders_below_it():
    """core (the model, its format, hyperparameters, losses, metrics) knows nothing of data,
    training or AWS; the data path knows the core; the local runtime and the AWS side sit on
    both; the CLI and the run on top."""
    allowed = {
        "training.core": {"training.core"},
        "training.data": {"training.core", "training.data"},
        # the batch transform contract is shared by the local run and the SageMaker job
        "training.local": {
            "training.core",
            "training.data",
            "training.local",
            "training.batch_transform",
        },
    }
    within = lambda name, folder: name == folder or name.startswith(folder + ".")  # noqa: E731
    wrong = []
    for module, targets in imports().items():
        for folder, may in allowed.items():
            if within(module, folder):
                # the AWS names (dependency-free) are the endpoint's contract too
                may = may | {"training.aws.naming"}
                for target in targets - FOUNDATION:
                    if not any(within(target, m) for m in may):
                        wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_importing_the_model_format_loads_nothing_of_the_trainer():
    """SageMaker's artifact format is the core: reading a model must not import the local
    trainer, the data path, the AWS side or threadpoolctl."""
    code = (
        "import sys, training.core.artifact, training.core.model\n"
        "names = (m for m in sys.modules if m.startswith(('training', 'threadpool')))\n"
        "print(' '.join(sorted(names)))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded = set(res.stdout.split())
    assert "training.core.artifact" in loaded
    stray = {m for m in loaded if m not in FOUNDATION and not m.startswith("training.core")}
    assert stray == set()
