"""Mutation testing of the core modules: do their own fast tests fail when the code is wrong?

Each mutant is one small, realistic change to one module, made on its syntax tree: a comparison
flipped or loosened (< <=, == !=), an arithmetic sign or operator swapped (+ -, * /), an integer
constant moved by one, a float constant changed, `and`/`or` swapped, a `not` or an `if` condition
dropped (the branch always taken). The module is rewritten with the mutant (ast.unparse), its
tests run with a per-mutant timeout, and the file is restored byte for byte. A mutant is killed
when the tests fail (or time out), and survives when they pass.

It works on a temporary copy of the repository (git's tracked and untracked, not ignored, files),
imported through PYTHONPATH ahead of the editable install, so the working tree is never touched and
you can keep working (and committing) while it runs.

    .venv/bin/python bench/mutate.py                        # every module below, 30 sampled mutants each (all where fewer)
    .venv/bin/python bench/mutate.py --module audit/stats.py --max 40 --timeout 120
    .venv/bin/python bench/mutate.py --list                 # the modules and their test commands
    .venv/bin/python bench/mutate.py --rerun report.json    # only the survivors of an earlier report, again

Prints one line per mutant and a table of kill rates per module, and writes --out (JSON) with every
surviving mutant (line and change), so each can be judged: equivalent (no input can tell it apart)
or a missing test. Not run in CI: it takes minutes per module.
"""
from __future__ import annotations

import argparse
import ast
import copy
import json
import os
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTEST = ["nice", "-n", "10", sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-m", "not neo4j and not slow"]
MODULES = {   # module -> its own fast tests
    "tracer/attribution.py": ["tests/test_tracer_oracle.py", "tests/test_tracer_errors.py", "-k",
                              "plt-nns-p0-dlp0.2 or clt-nns-p0-max32 or target or vocabulary or progress"],
    "tracer/prune.py": ["tests/test_tracer_oracle.py", "tests/test_prune_reference.py", "-k",
                        "plt-nns-p0-dlp0.2 or clt-nns-p0-max32 or reference"],
    "ingest/formats.py": ["tests/test_formats.py", "-k",      # less the two 30 s ones (--tests runs them too)
                          "not full_shared_corpus and not clt-tl-p0-max32"],
    "circuit_atlas/store/rows.py": ["tests/test_store.py", "-k",
                                    "round_trip or exactly or label or statement_path or plain"],
    "queries/registry.py": ["tests/test_queries_cli.py", "tests/test_output.py", "-k",
                            "documented or declared or cover or defaults or bad_parameters or reference or dataframe or registry"],
    "queries/multilingual.py": ["tests/test_queries.py", "-k", "multilingual or iou"],
    "queries/supernodes.py": ["tests/test_supernode_clustering.py", "tests/test_queries.py", "tests/test_queries_cli.py",
                              "-k", "(supernode or clustering or similarity or opposite) and not cli_plot"],
    "workers/jobfile.py": ["tests/test_workers.py", "-k", "job_file or csv or trace_key"],
    "audit/analyses.py": ["tests/test_audit_analyses.py"],
    "audit/stats.py": ["tests/test_audit_analyses.py"],
}

CMP_SWAP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
            ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In}
BIN_SWAP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Mult,
            ast.Mod: ast.FloorDiv}


def make_copy() -> Path:
    """The repository's files in a temporary directory, importable as `circuit_atlas` from there."""
    tmp = Path(tempfile.mkdtemp(prefix="circuit-atlas-mutate-"))
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout.split("\0")
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, tmp / name)
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    for package, folder in mapping.items():     # circuit_atlas.tracer = tracer/ -> circuit_atlas/tracer link
        if package.count(".") == 1:
            (tmp / "circuit_atlas" / package.split(".")[1]).symlink_to(tmp / folder, target_is_directory=True)
    env = {**os.environ, "PYTHONPATH": str(tmp)}
    where = subprocess.run([sys.executable, "-c", "import circuit_atlas.tracer as t; print(t.__file__)"],
                           cwd=tmp, env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(str(tmp)), f"the copy is not what gets imported: {where}"
    return tmp


def candidates(tree: ast.AST) -> list[tuple[int, str, object]]:
    """(index in ast.walk order, kind, detail) of every place a mutant can be made."""
    out = []
    for i, node in enumerate(ast.walk(tree)):
        if isinstance(node, ast.Compare):
            for j, op in enumerate(node.ops):
                if type(op) in CMP_SWAP:
                    out.append((i, "compare", j))
        elif isinstance(node, ast.BinOp) and type(node.op) in BIN_SWAP:
            out.append((i, "binop", None))
        elif isinstance(node, ast.BoolOp):
            out.append((i, "boolop", None))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub)):
            out.append((i, "unary", None))
        elif isinstance(node, ast.Constant) and type(node.value) in (int, float) and not isinstance(node.value, bool):
            out.append((i, "constant", None))
        elif isinstance(node, ast.If):
            out.append((i, "if-always", None))
    return out


def mutate(tree: ast.AST, index: int, kind: str, detail) -> tuple[ast.AST, str]:
    """A copy of `tree` with one mutant applied, and a description of it."""
    tree = copy.deepcopy(tree)
    node = list(ast.walk(tree))[index]
    line = getattr(node, "lineno", "?")
    if kind == "compare":
        old = node.ops[detail]
        node.ops[detail] = CMP_SWAP[type(old)]()
        return tree, f"line {line}: {type(old).__name__} -> {type(node.ops[detail]).__name__}"
    if kind == "binop":
        old = node.op
        node.op = BIN_SWAP[type(old)]()
        return tree, f"line {line}: {type(old).__name__} -> {type(node.op).__name__}"
    if kind == "boolop":
        old = node.op
        node.op = ast.Or() if isinstance(old, ast.And) else ast.And()
        return tree, f"line {line}: {type(old).__name__} -> {type(node.op).__name__}"
    if kind == "unary":
        parent = next(p for p in ast.walk(tree) for f, v in ast.iter_fields(p)
                      if v is node or (isinstance(v, list) and any(x is node for x in v)))
        for f, v in ast.iter_fields(parent):
            if v is node:
                setattr(parent, f, node.operand)
            elif isinstance(v, list):
                for k, x in enumerate(v):
                    if x is node:
                        v[k] = node.operand
        return tree, f"line {line}: {type(node.op).__name__} removed"
    if kind == "constant":
        old = node.value
        node.value = old + 1 if isinstance(old, int) else (old * 2 if old else 1.0)
        return tree, f"line {line}: constant {old!r} -> {node.value!r}"
    if kind == "if-always":
        old = ast.unparse(node.test)
        node.test = ast.Constant(True)
        return tree, f"line {line}: if {old[:60]} -> if True"
    raise ValueError(kind)


def run_module(root: Path, module: str, n_max: int, timeout: float, seed: int, tests: list[str] | None = None,
               only: list | None = None) -> dict:
    path = root / module
    env = {**os.environ, "PYTHONPATH": str(root), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}   # 2 s less a run
    original = path.read_bytes()
    tree = ast.parse(original)
    lines = original.decode().splitlines()
    unchanged = ast.unparse(tree)
    sites = candidates(tree)
    picked = sorted(random.Random(seed).sample(sites, min(n_max, len(sites))))
    if only is not None:                      # --rerun: just these sites (a report's survivors)
        picked = [s for s in sites if list(s) in only or mutate(tree, *s)[1] in only]   # by site, or description
    tests = tests or MODULES[module]
    results = []
    try:
        baseline = subprocess.run(PYTEST + tests, cwd=root, env=env, capture_output=True, text=True,
                                  timeout=timeout * 3)
        if baseline.returncode != 0:
            raise SystemExit(f"{module}: its tests fail before any mutation:\n{baseline.stdout[-2000:]}")
        for index, kind, detail in picked:
            mutant, what = mutate(tree, index, kind, detail)
            try:
                source = ast.unparse(ast.fix_missing_locations(mutant))
            except Exception as e:  # noqa: BLE001  (an operator that cannot be written back: skip it)
                print(f"  skip {what}: {e}")
                continue
            if source == unchanged:         # e.g. a constant that prints the same: not a mutant
                continue
            path.write_text(source)
            start = time.time()
            try:
                rc = subprocess.run(PYTEST + tests, cwd=root, env=env, capture_output=True, timeout=timeout).returncode
                status = "survived" if rc == 0 else "killed"
            except subprocess.TimeoutExpired:
                status = "killed (timeout)"
            finally:
                path.write_bytes(original)
            line = lines[int(what.split()[1].rstrip(":")) - 1].strip() if what.split()[1][:-1].isdigit() else ""
            results.append({"mutant": what, "status": status, "seconds": round(time.time() - start, 1), "line": line,
                            "site": [index, kind, detail]})
            print(f"  {module} {what:<60} {status}", flush=True)
    finally:
        path.write_bytes(original)
    killed = sum(r["status"].startswith("killed") for r in results)
    return {"module": module, "tests": " ".join(tests), "sites": len(sites), "mutants": len(results),
            "killed": killed, "results": results}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--module", action="append", help="a module of the list (repeatable); default: all")
    p.add_argument("--max", type=int, default=30, help="mutants sampled per module")
    p.add_argument("--timeout", type=float, default=180, help="seconds per mutant's test run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="mutation-report.json")
    p.add_argument("--list", action="store_true")
    p.add_argument("--rerun", help="a report (--out) of earlier runs: run only its surviving mutants again")
    p.add_argument("--tests", help="the tests to run instead of the module's own (one string, as for pytest)")
    a = p.parse_args()
    if a.list:
        for m, t in MODULES.items():
            print(f"{m:<32} pytest {' '.join(t)}")
        return
    report = []
    out = Path(a.out).resolve()
    survivors = {}
    if a.rerun:
        for r in json.loads(Path(a.rerun).read_text()):
            survivors[r["module"]] = [m.get("site") or m["mutant"] for m in r["results"] if m["status"] == "survived"]
    tests = shlex.split(a.tests) if a.tests else None
    root = make_copy()
    try:
        for module in a.module or (list(survivors) if a.rerun else list(MODULES)):
            if module not in MODULES:
                raise SystemExit(f"unknown module {module!r}; --list shows them")
            report.append(run_module(root, module, a.max, a.timeout, a.seed, tests,
                                     survivors.get(module, []) if a.rerun else None))
            out.write_text(json.dumps(report, indent=1))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"\n{'module':<32} {'sites':>5} {'mutants':>7} {'killed':>6} {'rate':>6}")
    for r in report:
        rate = r["killed"] / r["mutants"] if r["mutants"] else float("nan")
        print(f"{r['module']:<32} {r['sites']:>5} {r['mutants']:>7} {r['killed']:>6} {rate:>6.0%}")
    for r in report:
        for m in r["results"]:
            if m["status"] == "survived":
                print(f"survived: {r['module']} {m['mutant']}  | {m['line']}")


if __name__ == "__main__":
    main()
