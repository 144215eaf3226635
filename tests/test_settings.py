"""Settings: one source for every default (README's table is checked against it), and only
CIRCUIT_ATLAS_* / NEO4J_* environment names are read."""
from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from circuit_atlas.settings import Settings
from circuit_atlas.workers.config import WorkerConfig
from tests.conftest import REPO


def readme_settings() -> dict[str, str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Settings\n", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| `(\w+)` \| ([^|]+?) \|", section, re.MULTILINE))


def test_readme_lists_every_setting_with_its_default():
    code = {("lock_timeout" if f.name == "lock_timeout_s" else f.name): f.default for f in dataclasses.fields(Settings)}
    code |= {f.name: f.default for f in dataclasses.fields(WorkerConfig)}
    shown = readme_settings()
    assert set(shown) == set(code)
    for name, default in code.items():
        if default in ("", None):
            assert shown[name].startswith("("), name
        else:
            assert shown[name] == f"`{default}`", f"{name}: README says {shown[name]}, the code {default!r}"


def load_in(env: dict, config: str = "") -> dict:
    """Settings and WorkerConfig as a fresh process loads them with only `env` (and a config file)."""
    code = ("import dataclasses, json; from circuit_atlas.settings import Settings; "
            "from circuit_atlas.workers.config import WorkerConfig; "
            "print(json.dumps({**dataclasses.asdict(Settings.load()), **dataclasses.asdict(WorkerConfig.load())}, default=str))")
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("CIRCUIT_ATLAS_", "NEO4J_"))}
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "config.toml"
        cfg.write_text(config)
        out = subprocess.run([sys.executable, "-c", code], env={**keep, "CIRCUIT_ATLAS_CONFIG": str(cfg), **env},
                             capture_output=True, text=True, timeout=120, check=True, cwd=tmp)
    return json.loads(out.stdout)


def test_only_prefixed_environment_names_are_read():
    bare = load_in({"STORE": "/elsewhere.db", "DEVICE": "cuda", "MAX_RETRIES": "99", "REDIS_URL": "redis://x:1/0"})
    assert bare["store"] == "./atlas.db" and bare["device"] == "cpu" and bare["max_retries"] == 10
    assert bare["redis_url"] == "redis://127.0.0.1:6379/0"
    named = load_in({"CIRCUIT_ATLAS_STORE": "/s.db", "CIRCUIT_ATLAS_DEVICE": "cuda", "CIRCUIT_ATLAS_MAX_RETRIES": "99",
                     "NEO4J_USER": "alice", "CIRCUIT_ATLAS_NEO4J_PASSWORD": "pw"})
    assert (named["store"], named["device"], named["max_retries"]) == ("/s.db", "cuda", 99)
    assert (named["neo4j_user"], named["neo4j_password"]) == ("alice", "pw")


def test_the_config_file_fills_in_below_the_environment():
    got = load_in({"CIRCUIT_ATLAS_DEVICE": "cuda:1"}, 'store = "/from-config.db"\ndevice = "cuda:0"\nheartbeat = 2.5\n')
    assert (got["store"], got["device"], got["heartbeat"]) == ("/from-config.db", "cuda:1", 2.5)


def test_the_workers_guide_agrees_with_the_defaults():
    """docs/workers.md repeats the workers' settings for their readers: its defaults are the code's."""
    code = {f.name: f.default for f in dataclasses.fields(Settings)} | {f.name: f.default for f in dataclasses.fields(WorkerConfig)}
    rows = re.findall(r"^\| `CIRCUIT_ATLAS_(\w+)` \| `([^`]*)` \|", (REPO / "docs/workers.md").read_text(), re.MULTILINE)
    assert len(rows) >= 10
    for name, shown in rows:
        default = code[name.lower()]
        if isinstance(default, (int, float)):
            assert float(shown) == default, name
        elif isinstance(default, Path):
            assert Path(shown) == default, name
        else:
            assert shown == default, name


def _run_in(env: dict, code: str, cwd) -> subprocess.CompletedProcess:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("CIRCUIT_ATLAS_", "NEO4J_"))}
    return subprocess.run([sys.executable, "-c", code], env={**keep, "CIRCUIT_ATLAS_CONFIG": "/nonexistent", **env},
                          capture_output=True, text=True, timeout=300, cwd=cwd)


def test_settings_are_passed_down_not_read_again(tmp_path):
    """The store opens with the Settings it is given: an environment that changed since they were read
    (here: an unknown engine, an unreadable lock timeout) is not read again by the backend. A bare URI
    still reads the settings, once, at the open."""
    code = ("import sys; from circuit_atlas.settings import Settings; from circuit_atlas.store import open_store\n"
            f"s = Settings(store={str(tmp_path / 'atlas.db')!r})\n"
            "with open_store(s) as store: print('passed down:', store.backend)\n"
            "try:\n    open_store(s.store).__enter__()\nexcept Exception as e: print('bare URI:', type(e).__name__, e)\n")
    out = _run_in({"CIRCUIT_ATLAS_EMBEDDED_ENGINE": "no_such_engine"}, code, tmp_path)
    assert out.returncode == 0, out.stderr
    assert "passed down: embedded" in out.stdout
    assert "bare URI: StoreError unknown embedded engine 'no_such_engine'" in out.stdout


def test_the_celery_app_reads_no_settings_at_import(tmp_path):
    """Importing the app and its tasks reads nothing (a worker reads its settings when it starts): a
    malformed setting does not break `import`, and the first read of the configuration names it."""
    code = ("from circuit_atlas.workers import app, tasks\nprint('imported')\n"
            "try:\n    app.app.conf.broker_url\nexcept ValueError as e: print('on first use:', e)\n")
    out = _run_in({"CIRCUIT_ATLAS_LOCK_TIMEOUT": "soon"}, code, tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == "imported"
    assert "on first use: CIRCUIT_ATLAS_LOCK_TIMEOUT" in out.stdout
