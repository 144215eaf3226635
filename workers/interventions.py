"""Intervention jobs: every prompt of a job file x every target, run on the workers like a tracing job.

    {"job": {"kind": "intervene", "model": "zoo/planted/model", "transcoders": "zoo/planted/transcoders/plt",
             "intervene": ["supernode:tag/country=zot", "supernode:tag/country=der", "3/152"],
             "options": {"op": "ablate", "freeze_attention": false}}}
    {"prompt": "the capital of the country containing narton is", "target": "bedton", "lang": "en"}

Each (prompt, target) pair is an item with its own key (model, transcoders, prompt, target's features,
options), so the job machinery gives what tracing jobs have: progress in `jobs status`, retries of
transient errors, `retry-failed`, and nothing run or stored twice. The trace queue's task runs the
intervention and writes its record (JSON, the (:Intervention) properties) as the item's artifact;
the ingest queue's task stores it with its links (queries/interventions.py). A row's "target" is the
token whose change is measured (default: the clean run's top token).

Options: op (set | scale | add | ablate, default ablate), value (its argument), positions ("all",
"generated", or a list of prompt positions), freeze_attention (default true, as circuit-tracer),
constrained_layers (a list of layers, or null), top_k (5).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from circuit_atlas.workers.jobfile import JobFileError, JobSpec

OPTIONS = {"op": "ablate", "value": 0.0, "positions": "all", "freeze_attention": True,
           "constrained_layers": None, "top_k": 5}


def prepare(spec: JobSpec, path, store: str | None) -> JobSpec:
    """Check the options and resolve every target to its features (supernodes: read from `store`, once)."""
    import dataclasses

    from circuit_atlas.queries import QueryError
    from circuit_atlas.queries.interventions import parse_feature_key, supernode_features

    unknown = sorted(set(spec.options) - set(OPTIONS))
    if unknown:
        raise JobFileError(f"{path}: unknown intervention options {unknown}; known: {', '.join(OPTIONS)}")
    options = {**OPTIONS, **spec.options}
    if options["op"] not in ("set", "scale", "add", "ablate"):
        raise JobFileError(f"{path}: option op={options['op']!r}; use set, scale, add or ablate")
    members: dict[str, list] = {}
    needs_store = [t for t in spec.intervene if t.startswith("supernode:")]
    opened = None
    if needs_store:
        if not store:
            raise JobFileError(f"{path}: supernode targets need the store (--store)")
        from circuit_atlas.store import connect
        opened = connect(store, read_only=True)
    try:
        for target in spec.intervene:
            if target.startswith("supernode:"):
                keys = supernode_features(opened, target.split(":", 1)[1])
            elif target.count("/") == 1:
                keys = [f"?/{target}"]          # L/F of whatever transcoders the model has
            else:
                keys = [target]
            members[target] = [list(parse_feature_key(k)[1:]) for k in keys]
    except QueryError as e:
        raise JobFileError(f"{path}: {e}") from None
    finally:
        if opened is not None:
            opened.close()
    return dataclasses.replace(spec, options=options, members=members)


def item_key(spec: JobSpec, prompt: str, target: str) -> str:
    """The identity of one intervention: same model, transcoders, prompt, target features and options."""
    payload = ["intervene", spec.model, spec.transcoders, prompt, sorted(map(tuple, spec.members[target])),
               sorted(spec.options.items(), key=lambda kv: kv[0])]
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False, default=str).encode()).hexdigest()[:32]


def run_item(spec: JobSpec, item, model, job_id: str) -> dict:
    """Run one (prompt, target) item; returns its (:Intervention) record, links included."""
    from circuit_atlas import tracer
    from circuit_atlas.queries import interventions as evidence

    o = spec.options
    positions = o["positions"] if isinstance(o["positions"], str) else tuple(o["positions"])
    ivs = [tracer.Intervention(layer, feature, o["op"], float(o["value"]), positions)
           for layer, feature in spec.members[item.target]]
    measured = [item.tags["target"]] if item.tags.get("target") else []
    result = tracer.intervene(model, item.prompt, ivs, targets=measured, top_k=o["top_k"],
                              freeze_attention=o["freeze_attention"], constrained_layers=o["constrained_layers"])
    rec = evidence.record(result, model=model.model_name, transcoder_set=model.transcoders.name, job=job_id,
                          description=f"{o['op']} {item.target}" + (f"={o['value']:g}" if o["op"] != "ablate" else ""))
    if item.target.startswith("supernode:"):
        role = {"ablate": "ablate", "scale": "suppress" if float(o["value"]) < 1 else "amplify"}.get(o["op"], o["op"])
        rec["supernodes"] = {item.target.split(":", 1)[1]: role}
    return rec


def artifact_path(artifacts: Path, key: str) -> Path:
    return Path(artifacts) / "interventions" / f"{key}.json"


def write_record(rec: dict, path: Path) -> None:
    """Write-then-rename, as graph artifacts: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(rec, ensure_ascii=False))
    os.replace(tmp, path)


def read_record(path: Path) -> dict:
    return json.loads(Path(path).read_text())
