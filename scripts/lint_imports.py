"""Check the import contracts of pyproject.toml ([tool.importlinter]) and count import cycles.

    .venv/bin/python scripts/lint_imports.py            # lint-imports: layers, no cycles between siblings
    .venv/bin/python scripts/lint_imports.py --cycles   # module-level import cycles (0 expected), listed
    .venv/bin/python scripts/lint_imports.py --modules  # every module the linter sees, one a line

Why a wrapper: import-linter (grimp) finds a package's modules by walking its one directory, but the card's
folders (tracer/, ingest/, ...) install as subpackages of `circuit_atlas` from outside circuit_atlas/
([tool.setuptools.package-dir]), so in an editable install grimp would see only circuit_atlas/ and every
contract would pass vacuously. This script lays out the installed package in a temporary directory of
symlinks, exactly as a wheel installs it, and runs the linter there.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "circuit_atlas"


@contextmanager
def installed_layout():
    """A directory holding `circuit_atlas/` as installed: circuit_atlas/'s own files plus each mapped folder."""
    mapped = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    with tempfile.TemporaryDirectory(prefix="lint-imports-") as tmp:
        pkg = Path(tmp) / PACKAGE
        pkg.mkdir()
        for entry in (REPO / PACKAGE).iterdir():
            if entry.name != "__pycache__":
                (pkg / entry.name).symlink_to(entry)
        for name, folder in mapped.items():
            parent, _, child = name.rpartition(".")
            assert parent == PACKAGE, f"{name}: only direct subpackages of {PACKAGE} are mapped"
            (pkg / child).symlink_to(REPO / folder)
        yield Path(tmp)


def build_graph(root: Path):
    """grimp's graph of the package laid out under `root` (in a process that has not imported it yet:
    importlib would find the imported one)."""
    import grimp

    assert PACKAGE not in sys.modules, f"{PACKAGE} is imported already: build the graph in a fresh process"

    sys.path.insert(0, str(root))
    try:
        return grimp.build_graph(PACKAGE, cache_dir=None, exclude_type_checking_imports=True)
    finally:
        sys.path.remove(str(root))


def import_cycles(graph) -> list[list[str]]:
    """The strongly connected components of more than one module (each holds at least one cycle)."""
    edges = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:   # Tarjan's algorithm; the graph is small (recursion depth < modules)
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for m in sorted(edges):
        if m not in index:
            visit(m)
    return sorted(out)


def main(argv: list[str]) -> int:
    with installed_layout() as root:
        if "--modules" in argv:
            print("\n".join(sorted(build_graph(root).modules)))
            return 0
        if "--cycles" in argv:
            graph = build_graph(root)
            cycles = import_cycles(graph)
            for component in cycles:
                print("cycle among: " + ", ".join(component))
            print(f"{len(cycles)} import cycles among {len(graph.modules)} modules")
            return 1 if cycles else 0
        lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
        return subprocess.run([lint, str(REPO / "pyproject.toml"), "--no-cache", "--no-logo", *argv],
                              cwd=root, env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
