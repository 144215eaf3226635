"""The installed `circuit-atlas` works outside the repository, editable or not.

pytest runs from the repository root, where the source folders are importable by accident; a user's
shell is anywhere else. These tests run the installed entry point from a temporary directory, with no
PYTHONPATH: every command's --help, then real commands (ingest, a named query, `audit list`) on a
temporary store. The non-editable test builds the project with `pip install --no-deps .` into a fresh
virtual environment that borrows the dependencies already installed here (a .pth line), so it needs
no index and takes seconds.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from importlib.metadata import version
from pathlib import Path

import click
import pytest

from tests.conftest import REPO

FIXTURES = REPO / "tests/fixtures/formats/real"


def all_commands() -> list[list[str]]:
    """Every command and group of the CLI, as argument lists: [], ["audit"], ["audit", "run"], ..."""
    from circuit_atlas.cli import main

    def walk(cmd, path):
        yield path
        if isinstance(cmd, click.Group):
            for name, sub in sorted(cmd.commands.items()):
                yield from walk(sub, [*path, name])
    return list(walk(main, []))


def outside_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CIRCUIT_ATLAS_STORE")}
    env["CIRCUIT_ATLAS_CONFIG"] = os.devnull            # no user config file either
    return env


def run(exe: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(exe), *args], capture_output=True, text=True, cwd=cwd, env=outside_env(), timeout=300)


def check_installed_cli(exe: Path, workdir: Path) -> None:
    """Run `exe` (an installed circuit-atlas) from `workdir`, outside the repository."""
    assert REPO not in workdir.resolve().parents
    for cmd in all_commands():
        result = run(exe, *cmd, "--help", cwd=workdir)
        assert result.returncode == 0, f"circuit-atlas {' '.join(cmd)} --help:\n{result.stderr}"
        assert f"Usage: circuit-atlas {' '.join(cmd)}".rstrip() in result.stdout, result.stdout
    store = str(workdir / "s.db")
    files = sorted(map(str, FIXTURES.glob("*.json.gz")))
    result = run(exe, "--store", store, "ingest", "-q", *files, cwd=workdir)
    assert result.returncode == 0 and f"{len(files)} new graphs" in result.stdout, result.stderr
    result = run(exe, "--store", store, "query", "hubs-by-graphs", "-p", "limit=3", "--format", "json", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)) == 3                 # the .cypher files were installed
    result = run(exe, "query", "--list", cwd=workdir)
    assert result.returncode == 0 and "hubs-by-graphs" in result.stdout, result.stderr
    result = run(exe, "--store", store, "audit", "list", cwd=workdir)
    assert result.returncode == 0, result.stderr               # imports circuit_atlas.audit


def test_installed_cli_runs_outside_the_repo(tmp_path):
    exe = Path(sys.executable).parent / "circuit-atlas"
    if not exe.exists():
        pytest.skip(f"circuit-atlas is not installed beside {sys.executable} (run bash scripts/setup.sh)")
    check_installed_cli(exe, tmp_path)


def _copy_source(dest: Path) -> Path:
    """The project's files (as git tracks them, else all but build outputs) in `dest`, so that the build
    writes its build/ and *.egg-info there, not in the repository."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True)
    if listed.returncode == 0 and listed.stdout:
        for name in listed.stdout.decode().split("\0"):
            if name and (REPO / name).is_file():
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / name, dest / name)
    else:
        shutil.copytree(REPO, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns(
            ".git", ".venv", "__pycache__", "node_modules", "*.egg-info", "build", "dist", "atlas.db*", "tmp"))
    return dest


@pytest.mark.slow
def test_pip_install_non_editable_runs_outside_the_repo(tmp_path):
    src = _copy_source(tmp_path / "src")
    venv = tmp_path / "venv"
    subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", str(venv)],
                   check=True, timeout=120)
    py = venv / "bin/python"
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # The dependencies: this environment's site-packages, AFTER the new venv's own (a plain path line, so
    # this environment's editable-install hook in its .pth files does not run there).
    deps = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    Path(purelib, "_circuit_atlas_test_deps.pth").write_text("\n".join(deps) + "\n")
    isolation = [] if int(version("setuptools").split(".")[0]) < 77 else ["--no-build-isolation"]
    build = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", *isolation,
                            "--disable-pip-version-check", "-v", str(src)],
                           capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    warnings = [line for line in (build.stdout + build.stderr).splitlines() if re.search(r"\w+Warning\b", line)]
    assert warnings == [], "the build is not quiet:\n" + "\n".join(warnings)   # e.g. a deprecated license table

    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    where = subprocess.run([str(py), "-c", "import circuit_atlas.audit, circuit_atlas.queries as q; "
                            "print(circuit_atlas.audit.__file__); print(q.__file__)"],
                           capture_output=True, text=True, cwd=workdir, env=outside_env())
    assert where.returncode == 0, where.stderr
    assert all(Path(p).is_relative_to(venv) for p in where.stdout.split()), where.stdout   # the installed copy
    check_installed_cli(venv / "bin/circuit-atlas", workdir)
