"""The architecture the code enforces: pyproject's import contracts hold, and no module imports itself back.

scripts/lint_imports.py runs import-linter on the package as installed (the card's folders become
circuit_atlas subpackages); these tests run it as CI does, and check that it sees every module, since a
linter that saw only circuit_atlas/ would pass every contract without looking.
"""
from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import REPO

SCRIPT = REPO / "scripts/lint_imports.py"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=REPO, timeout=300)


def test_import_contracts_hold():
    out = run()
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout and " BROKEN" not in out.stdout


def test_no_import_cycles():
    out = run("--cycles")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines()[-1].startswith("0 import cycles among")


def test_the_linter_sees_every_module():
    out = run("--modules")
    assert out.returncode == 0, out.stderr
    seen = set(out.stdout.split())
    folders = {"circuit_atlas": REPO / "circuit_atlas"}
    folders |= {f"circuit_atlas.{d}": REPO / d for d in ("tracer", "ingest", "queries", "workers", "audit", "organisms")}
    expected = set()
    for package, folder in folders.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            expected.add(".".join((package, *parts[:-1])) if parts[-1] == "__init__" else ".".join((package, *parts)))
    assert {"circuit_atlas.tracer.attribution", "circuit_atlas.workers.tasks", "circuit_atlas.cli"} <= expected
    assert expected <= seen


def test_readme_layout_names_every_package_folder():
    import tomllib

    folders = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"].values()
    layout = (REPO / "README.md").read_text().split("## Layout\n", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `(\w+)/` \|", layout, re.MULTILINE))
    assert {"circuit_atlas", *folders} <= listed


def test_docs_layout_names_every_module_and_no_other():
    """docs/layout.md's module tables match the code: one row per module file of each folder."""
    text = (REPO / "docs/layout.md").read_text()
    sections = re.findall(r"^### `([\w/]+)/`\n(.*?)(?=^### |\Z)", text, re.MULTILINE | re.DOTALL)
    documented = {folder: set(re.findall(r"^\| `(\w+\.py)` \|", body, re.MULTILINE)) for folder, body in sections}
    folders = ["circuit_atlas", "circuit_atlas/store", "circuit_atlas/cli", "tracer", "ingest", "queries", "workers",
               "audit", "organisms"]
    assert sorted(documented) == sorted(folders)
    for folder in folders:
        assert documented[folder] == {p.name for p in (REPO / folder).glob("*.py")}, folder
