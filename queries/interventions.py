"""Interventions and the store: targets read from it, evidence written to it, causal rankings over it.

    members = interventions.supernode_features(store, "tag/country=zot")     # feature keys
    nodes = interventions.graph_feature_nodes(store, gid)                    # (layer, pos, feature, activation)
    interventions.store_result(store, result, model=..., transcoder_set=..., supernodes={...})
    queries.run(store, "causal-supernodes")        # which supernodes have causal evidence, how strong

(:Intervention {prompt, kind, value, description, target_token, logit_change, prob_change, top_changed, ...})
    -[:INTERVENED_ON {op, value}]->(:Feature)    every feature it touched
    -[:ON_SUPERNODE {role}]->(:Supernode)         the supernodes it acted on (suppress, inject, ablate, ...)
    -[:ON_GRAPH]->(:Graph)                        the stored graphs of the same prompt, model and transcoders
The schema is in circuit_atlas/store/schema.py; the statements in queries/cypher/_intervention-*.cypher.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone

from circuit_atlas.graph import feature_key
from circuit_atlas.queries.registry import QueryError, run, statement


def parse_feature_key(key: str) -> tuple[str, int, int]:
    """'<transcoder set>/<layer>/<feature>' -> (set, layer, feature); the set's name may hold slashes."""
    tset, _, rest = key.rpartition("/")
    tset, _, layer = tset.rpartition("/")
    try:
        return tset, int(layer), int(rest)
    except ValueError:
        raise QueryError(f"{key!r} is not a feature key '<transcoder set>/<layer>/<feature>'") from None


def supernode_features(store, supernode_id: str) -> list[str]:
    """The member feature keys of a stored supernode; one clear error if there is no such supernode."""
    rows = run(store, "_supernode-members", id=supernode_id)
    if not rows:
        raise QueryError(f"no supernode {supernode_id!r} with members in {store.uri}; list them with "
                         "`circuit-atlas query supernodes`")
    return [r["key"] for r in rows]


def graph_feature_nodes(store, graph_id: str, node_ids: list[str] | None = None) -> tuple[str, list[dict]]:
    """(prompt, feature nodes {node_id, layer, pos, feature, activation}) of a stored graph, all or `node_ids`."""
    rows = run(store, "_graph-feature-nodes", gid=graph_id)
    if not rows:
        raise QueryError(f"no graph {graph_id!r} with feature nodes in {store.uri}")
    if node_ids is not None:
        missing = sorted(set(node_ids) - {r["node_id"] for r in rows})
        if missing:
            raise QueryError(f"graph {graph_id}: no feature node {', '.join(missing)}")
        rows = [r for r in rows if r["node_id"] in set(node_ids)]
    return rows[0]["prompt"], rows


def intervention_id(model: str, transcoder_set: str, result) -> str:
    """Content hash: the same intervention on the same prompt and model is stored once."""
    payload = [model, transcoder_set, result.prompt, [i.describe() for i in result.interventions],
               result.freeze_attention, list(result.constrained_layers or ()), [t.token_id for t in result.targets]]
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode()).hexdigest()[:32]


def record(result, *, model: str, transcoder_set: str, description: str = "", job: str = "") -> dict:
    """The (:Intervention) properties of one InterventionResult (plain JSON: a worker can ship it)."""
    ops = {i.op for i in result.interventions}
    values = {0.0 if i.op == "ablate" else i.value for i in result.interventions}
    kind = ops.pop() if len(ops) == 1 else "steer"
    target = result.targets[0]
    return {
        "id": intervention_id(model, transcoder_set, result),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "prompt": result.prompt, "model": model, "transcoder_set": transcoder_set, "kind": kind,
        "value": values.pop() if kind != "steer" and len(values) == 1 else None,
        "description": description or "; ".join(i.describe() for i in result.interventions),
        "freeze_attention": result.freeze_attention,
        "constrained_layers": ",".join(map(str, result.constrained_layers or ())),
        "target_token": target.token, "logit_before": target.logit_before, "logit_after": target.logit_after,
        "prob_before": target.prob_before, "prob_after": target.prob_after,
        "top_before": result.top(False, 1)[0][0], "top_after": result.top(True, 1)[0][0],
        "effects": json.dumps(result.to_dict(), ensure_ascii=False), "job": job,
        "features": [{"key": feature_key(transcoder_set, i.layer, i.feature), "transcoder_set": transcoder_set,
                      "layer": i.layer, "feature": i.feature, "op": i.op, "value": i.value}
                     for i in result.interventions],
    }


def store_record(store, rec: dict, supernodes: dict[str, str] | None = None) -> str:
    """Write one record and its links (features, supernodes {id: role}, the prompt's graphs); returns its id."""
    props = {k: v for k, v in rec.items() if k not in ("features", "supernodes")}
    store.execute(statement("_intervention-store"), props)
    features = list({f["key"]: f for f in rec["features"]}.values())
    if features:
        store.execute(statement("_intervention-features"), {"id": rec["id"], "rows": features})
    links = {**(rec.get("supernodes") or {}), **(supernodes or {})}
    if links:
        store.execute(statement("_intervention-supernodes"),
                      {"id": rec["id"], "rows": [{"supernode": s, "role": r} for s, r in links.items()]})
    store.execute(statement("_intervention-graph"), {"id": rec["id"]})
    return rec["id"]


def store_result(store, result, *, model: str, transcoder_set: str, supernodes: dict[str, str] | None = None,
                 description: str = "", job: str = "") -> str:
    """Store an InterventionResult as evidence; returns the intervention's id."""
    rec = record(result, model=model, transcoder_set=transcoder_set, description=description, job=job)
    return store_record(store, rec, supernodes)


# --- targets written as text (the CLI's --set/--scale/--add/--ablate/--inject, job files) ------------

SPEC_HELP = ("TARGET[@POSITIONS][=VALUE]: TARGET is L/F, a feature key <set>/L/F, supernode:ID, or "
             "graph:GID[:NODE,NODE] (feature nodes of a stored graph, at their positions); POSITIONS is "
             "3 / 3,5 / last / all / generated (default all)")


@dataclass(frozen=True)
class Spec:
    """One intervention as written: `--scale 'supernode:tag/country=zot@last=-1'`."""
    op: str                                  # set | scale | add | ablate | inject (from a donor prompt)
    target: str
    positions: tuple[int, ...] | str | None  # None: the default (all; a graph's nodes: their own)
    value: float = 0.0

    @classmethod
    def parse(cls, op: str, text: str) -> "Spec":
        body, value = text, 0.0
        if op != "ablate":
            body, sep, raw = text.rpartition("=")
            try:
                value = float(raw)
            except ValueError:
                sep = ""
            if not sep:
                raise QueryError(f"--{op} {text!r}: needs =VALUE ({SPEC_HELP})")
        target, at, where = body.rpartition("@")
        if not at:
            return cls(op, body, None, value)
        if where in ("all", "generated"):
            return cls(op, target, where, value)
        try:
            positions = tuple(-1 if p == "last" else int(p) for p in where.split(","))
        except ValueError:
            raise QueryError(f"--{op} {text!r}: bad positions {where!r} ({SPEC_HELP})") from None
        return cls(op, target, positions, value)


def resolve(spec: Spec, model, store=None, prompt: str | None = None, donor: str | None = None) -> tuple[list, dict]:
    """(tracer Interventions, {supernode id: role}) of one spec on a loaded model; `store` for stored targets."""
    from circuit_atlas.tracer.interventions import Intervention, transplant

    tset = model.transcoders.name
    supernodes: dict[str, str] = {}
    features: list[tuple[int, int, tuple | str | None]] = []     # (layer, feature, own positions)
    kind, _, ref = spec.target.partition(":")
    if kind in ("supernode", "graph") and ref:
        if store is None:
            raise QueryError(f"{spec.target}: a stored target needs the store (--store)")
        if kind == "supernode":
            for key in supernode_features(store, ref):
                features.append((*_own(key, tset, spec.target), None))
            supernodes[ref] = {"ablate": "ablate", "inject": "inject", "scale": "suppress" if spec.value < 1 else
                               "amplify"}.get(spec.op, spec.op)
        else:
            gid, _, nodes = ref.partition(":")
            graph_prompt, rows = graph_feature_nodes(store, gid, nodes.split(",") if nodes else None)
            if rows[0]["transcoder_set"] != tset:
                raise QueryError(f"{spec.target}: traced with transcoders {rows[0]['transcoder_set']!r}, "
                                 f"the model has {tset!r}")
            if prompt is not None and prompt != graph_prompt:
                raise QueryError(f"{spec.target}: the graph is of the prompt {graph_prompt!r}, not {prompt!r}")
            features += [(r["layer"], r["feature"], (r["pos"],)) for r in rows]
    else:
        parts = spec.target.split("/")
        if len(parts) == 2:
            key = feature_key(tset, *parts)
        else:
            key = spec.target
        features.append((*_own(key, tset, spec.target), None))
    if spec.op == "inject":
        if donor is None:
            raise QueryError(f"--inject {spec.target}: needs --donor PROMPT (whose activations are injected)")
        return transplant(model, donor, [(l, f) for l, f, _ in features], spec.value, into=prompt), supernodes
    out = []
    for layer, feature, own in features:
        positions = spec.positions if spec.positions is not None else (own or "all")
        out.append(Intervention(layer, feature, spec.op, spec.value, positions))
    return out, supernodes


def _own(key: str, tset: str, written: str) -> tuple[int, int]:
    try:
        key_set, layer, feature = parse_feature_key(key)
    except QueryError:
        raise QueryError(f"{written!r}: not a feature (L/F or <set>/L/F), supernode:ID or graph:GID") from None
    if key_set != tset:
        raise QueryError(f"{written}: feature {key} belongs to transcoder set {key_set!r}, the model's is {tset!r}")
    return layer, feature
