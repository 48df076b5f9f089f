"""The package's structure: no import cycle, and importing any module changes no global state.

The import graph is read from the source with ``ast``, counting imports inside functions (they
run later, but a cycle through them is still a cycle in the design); only ``if TYPE_CHECKING:``
blocks are left out, since they never run. The state check imports every module in one fresh
interpreter and compares what a user's process could notice (environment, import machinery,
torch and triton state, the attributes the oracle's shims patch) with a snapshot taken before.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "pytest_mmhash"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement that can run, at any depth (functions included)."""
    found: list[ast.Import | ast.ImportFrom] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return found


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """``module -> modules of the package it imports``; ``from pkg import name`` targets the
    submodule ``pkg.name`` when there is one, else ``pkg`` itself."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in _runtime_imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                    for a in node.names
                ]
            edges |= {t for t in targets if t in modules and t != name}
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (``[a, b, ..., a]``), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_graph_counts_imports_inside_functions_and_relative_imports(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n"
    )
    (pkg / "a.py").write_text("def f():\n    from .sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("from .. import a\nimport pkg.sub\n")
    modules = {
        ".".join(p.relative_to(tmp_path).with_suffix("").parts).removesuffix(".__init__"): p
        for p in sorted(pkg.rglob("*.py"))
    }
    graph = import_graph(modules)
    assert graph == {
        "pkg": set(),
        "pkg.a": {"pkg.sub.b"},
        "pkg.sub": set(),
        "pkg.sub.b": {"pkg.a", "pkg.sub"},
    }
    assert find_cycle(graph) == ["pkg.a", "pkg.sub.b", "pkg.a"]


def test_no_import_cycle_in_the_package():
    graph = import_graph(MODULES)
    assert graph["pytest_mmhash.api"] >= {"pytest_mmhash.cuda.emulation", "pytest_mmhash.features"}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cuda_path_is_one_package_over_a_leaf():
    """The CUDA path lives in ``pytest_mmhash.cuda``; its constants import nothing of the package
    but the integer helpers; pure schemes know nothing of the CUDA path, torch or numpy."""
    graph = import_graph(MODULES)
    assert graph["pytest_mmhash.cuda.constants"] <= {"pytest_mmhash.ints"}
    assert graph["pytest_mmhash.ints"] == set()
    for name in MODULES:
        if name.startswith("pytest_mmhash.schemes"):
            assert not {m for m in graph[name] if m.startswith("pytest_mmhash.cuda")}, name
            imported = {
                a.name if isinstance(n, ast.Import) else (n.module or "")
                for n in _runtime_imports(ast.parse(MODULES[name].read_text()))
                for a in n.names
            }
            assert not {m for m in imported if m.split(".")[0] in ("torch", "numpy")}, name


_STATE_PROBE = textwrap.dedent(
    """
    import importlib, json, os, sys, warnings
    import numpy, torch, torch.library
    for optional in ("numba", "pytest", "hypothesis", "hypothesis.extra.numpy", "packaging.version"):
        try:
            importlib.import_module(optional)
        except ImportError:
            pass

    def snapshot():
        return {
            "environ": dict(os.environ),
            "meta_path": [repr(f) for f in sys.meta_path],
            "path_hooks": [repr(h) for h in sys.path_hooks],
            "warnings": [repr(f) for f in warnings.filters],
            "excepthook": repr(sys.excepthook),
            "foreign modules": sorted(
                m for m in sys.modules
                if m.split(".")[0] in ("triton", "sglang", "sgl_kernel", "vllm", "decord")
            ),
            "torch.cuda.device": repr(torch.cuda.device),
            "torch.cuda.is_initialized": torch.cuda.is_initialized(),
            "torch._C._cpu": sorted(dir(torch._C._cpu)),
            "torch.library.Library._register_fake": repr(torch.library.Library._register_fake),
            "torch.Tensor": sorted(vars(torch.Tensor)),
            "torch default dtype": repr(torch.get_default_dtype()),
            "torch threads": torch.get_num_threads(),
        }

    before = snapshot()
    report = {"imported": [], "skipped": {}, "changed": {}}
    for name in json.loads(sys.argv[1]):
        try:
            importlib.import_module(name)
        except ImportError as e:
            if e.name in ("numba",):  # an optional extra that is not installed
                report["skipped"][name] = str(e)
                continue
            raise
        report["imported"].append(name)
        after = snapshot()
        diff = {k: [before[k], after[k]] for k in before if before[k] != after[k]}
        if diff:
            report["changed"][name] = diff
            before = after
    print(json.dumps(report))
    """
)


def test_importing_any_module_changes_no_global_state():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    out = subprocess.run(
        [sys.executable, "-c", _STATE_PROBE, json.dumps(sorted(MODULES))],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["changed"] == {}
    assert set(report["imported"]) | set(report["skipped"]) == set(MODULES)
    assert "pytest_mmhash.oracle.driver" in report["imported"]


def test_the_state_probe_sees_a_module_that_changes_state(tmp_path):
    """The probe above can fail: a module that sets an env var at import is reported."""
    (tmp_path / "bad_module.py").write_text("import os\nos.environ['TRITON_INTERPRET'] = '1'\n")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), *sys.path])
    out = subprocess.run(
        [sys.executable, "-c", _STATE_PROBE, json.dumps(["bad_module"])],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert list(json.loads(out.stdout)["changed"]["bad_module"]) == ["environ"]
