"""bench/trace.py's memory column: each process's own peak, not its parent's.

Linux keeps getrusage's ru_maxrss across fork and exec, so a benchmark child used to report at least its
parent's peak. Here a parent touches 400 MB and then starts a lean child: the child's reported peak
(bench/trace.py and bench/ct_runner.py read VmHWM) must be its own few tens of MB, while ru_maxrss in
the same child shows the inherited 400 MB.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"

CHILD = """
import importlib.util, json, resource, sys
peaks = {}
for name in ("trace", "ct_runner"):
    spec = importlib.util.spec_from_file_location("bench_" + name, sys.argv[1] + "/" + name + ".py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    peaks[name] = module.peak_rss_mb()
print(json.dumps({"peaks": peaks, "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

PARENT = """
import subprocess, sys
ballast = b"x" * (400 * 2**20)          # 400 MB, written, hence resident
done = subprocess.run([sys.executable, "-c", sys.argv[1], sys.argv[2]], capture_output=True, text=True, check=True)
print(done.stdout)
"""


def test_child_reports_its_own_peak_not_the_parents():
    out = subprocess.run([sys.executable, "-c", PARENT, CHILD, str(BENCH)], capture_output=True, text=True,
                         check=True).stdout
    child = json.loads(out.strip().splitlines()[-1])
    assert child["ru_maxrss_mb"] >= 400            # the inherited figure the benchmark used to print
    for name, peak in child["peaks"].items():
        assert 1 < peak < 150, (name, peak)          # the child itself: an interpreter and a few imports


def _load_bench_trace():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_trace", BENCH / "trace.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_cell_records_the_commit_and_whether_the_tree_was_dirty(tmp_path):
    bench = _load_bench_trace()
    git = lambda *args: subprocess.run(["git", "-C", str(tmp_path), *args], capture_output=True,  # noqa: E731
                                       text=True, check=True).stdout.strip()
    git("init", "-q")
    (tmp_path / "tracer.py").write_text("x = 1\n")
    git("add", "tracer.py")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "first")
    head = git("rev-parse", "HEAD")

    clean = bench.code_version(tmp_path)
    assert clean == {"commit": head, "dirty": False}
    assert bench.describe_version(clean) == head[:7]

    (tmp_path / "tracer.py").write_text("x = 2\n")          # an uncommitted change to a tracked file
    assert bench.code_version(tmp_path) == {"commit": head, "dirty": True}
    git("checkout", "-q", "tracer.py")
    (tmp_path / "new.py").write_text("y = 1\n")             # an untracked file can change what runs too
    dirty = bench.code_version(tmp_path)
    assert dirty == {"commit": head, "dirty": True}
    assert bench.describe_version(dirty) == head[:7] + "+dirty"
    assert bench.describe_version({"batch_size": 64}) == "unknown"   # cells saved before this was recorded
