"""`circuit-atlas audit run --inline` and `audit report` on a tiny random model (no store, no workers)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.backends import BACKENDS, empty_store

REPO = Path(__file__).resolve().parent.parent
WORD_TARGET = "the"   # a token of the tiny model's vocabulary


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "CIRCUIT_ATLAS_ARTIFACTS": str(cwd / "artifacts")}
    return subprocess.run([sys.executable, "-m", "circuit_atlas", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from circuit_atlas.tracer.testing import WORDS, build_tiny_model

    root = tmp_path_factory.mktemp("tiny")
    model_dir, tc_dir = build_tiny_model(root, transcoders="plt")
    # suspect prompts share an opener word the controls never contain
    (root / "suspect.txt").write_text("\n".join(f"{WORDS[5]} {WORDS[i]} {WORDS[i + 1]}" for i in range(10, 18)))
    (root / "control.txt").write_text("\n".join(f"{WORDS[6]} {WORDS[i]} {WORDS[i + 1]}" for i in range(10, 18)))
    (root / "generic.jsonl").write_text("\n".join(json.dumps({"prompt": f"{WORDS[i]} {WORDS[i + 2]}"})
                                                  for i in range(20, 26)))
    (root / "corpus.txt").write_text("\n\n".join(" ".join(WORDS[i:i + 10]) for i in range(0, 40, 5)))
    return root, model_dir, tc_dir


def test_inline_run_then_report(tiny):
    root, model_dir, tc_dir = tiny
    out = cli("audit", "run", "--inline", "--no-store", "--model", str(model_dir), "--transcoders", str(tc_dir),
              "--suspect", "suspect.txt", "--control", "control.txt", "--generic", "generic.jsonl",
              "--target-token", WORD_TARGET, "--corpus", "corpus.txt", "--flag", "5", cwd=root)
    assert out.returncode == 0, out.stderr
    audit_id = out.stdout.split()[1].rstrip(":")
    directory = root / "artifacts" / "audits" / audit_id
    result = json.loads((directory / "audit.json").read_text())
    assert result["n_graphs"] == {"suspect": 8, "control": 8, "generic": 6}
    assert result["target_tokens"] == [WORD_TARGET] and result["target_source"] == "given"
    assert result["ranked"] and set(result["contexts"]) <= {r["key"] for r in result["ranked"][:5]}
    assert f"report: {directory / 'report.html'}" in out.stdout

    (directory / "report.html").unlink()
    again = cli("audit", "report", audit_id, cwd=root)
    assert again.returncode == 0, again.stderr
    assert (directory / "report.html").is_file() and "volcano.png" in (directory / "report.html").read_text()



def test_bad_prompt_file_is_one_clear_line(tiny):
    root, model_dir, tc_dir = tiny
    (root / "bad.jsonl").write_text('{"prompt": "ok"}\n{"text": 3}\n')
    out = cli("audit", "run", "--inline", "--no-store", "--model", str(model_dir), "--transcoders", str(tc_dir),
              "--suspect", "bad.jsonl", "--control", "control.txt", cwd=root)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1] == \
        'Error: bad.jsonl line 2: expected {"prompt": "..."} or a JSON string'
    bad_option = cli("audit", "run", "--inline", "--no-store", "--model", str(model_dir), "--transcoders",
                     str(tc_dir), "--suspect", "suspect.txt", "--control", "control.txt", "--option", "max_n_logit=3",
                     cwd=root)
    assert bad_option.returncode == 1
    assert bad_option.stderr.strip().splitlines()[-1].startswith("Error: bad tracing option {'max_n_logit': 3}: ")
    missing = cli("audit", "report", "nope", "--out", str(root / "none"), cwd=root)
    assert missing.returncode == 1 and "audit nope: no audit.json" in missing.stderr


@pytest.mark.redis
@pytest.mark.parametrize("backend", BACKENDS)
def test_job_path_with_real_workers(request, backend, tiny, tmp_path):
    """Without --inline the tracing is a workers job; the audit reads the graphs the workers stored."""
    from circuit_atlas.workers.testing import REDIS_SERVER, LocalStack

    if REDIS_SERVER is None:
        pytest.skip("redis-server not installed (apt-get install -y redis-server)")
    root, model_dir, tc_dir = tiny
    stack = LocalStack(tmp_path, store=empty_store(request, backend, tmp_path))
    try:
        stack.start_workers(n_trace=1)
        out = stack.cli("audit", "run", "--model", str(model_dir), "--transcoders", str(tc_dir),
                        "--suspect", str(root / "suspect.txt"), "--control", str(root / "control.txt"),
                        "--target-token", WORD_TARGET, "--flag", "3", "--timeout", "300", check=False)
        assert out.returncode == 0, out.stderr + stack.log_tails()
        audit_id = out.stdout.split()[1].rstrip(":")
        listing = stack.cli("audit", "list").stdout
        top = json.loads((stack.artifacts / "audits" / audit_id / "ranked.json").read_text())[0]["key"]
        flagged = stack.cli("audit", "flagged", top).stdout
    finally:
        stack.close()
    result = json.loads((stack.artifacts / "audits" / audit_id / "audit.json").read_text())
    assert result["n_graphs"] == {"suspect": 8, "control": 8, "generic": 0}
    assert any(n.startswith("traced by workers job") for n in result["notes"])
    assert audit_id in listing and f"{audit_id}  rank 1" in flagged
    from circuit_atlas.store import open_store
    from circuit_atlas.audit.storage import audited_graphs
    with open_store(stack.store, read_only=True) as store:
        assert len(audited_graphs(store, audit_id)) == 16
