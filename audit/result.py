"""The outcome of an audit: the per-analysis tables, the fused ranking and the top features' evidence.

It is plain JSON (audit.json in the audit's directory): `audit report ID` re-renders from it, and the
store keeps only the flagged features as (:Audit)-[:FLAGGED]->(:Feature) links.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from circuit_atlas.audit.analyses import (AnalysisOptions, fuse, infer_target_tokens, parse_key, run_control_tokens,
                            run_drivers, run_enrichment, run_label_search)
from circuit_atlas.audit.summary import SETS, GraphSummary


@dataclass
class AuditResult:
    id: str
    created: str                                     # ISO 8601, UTC
    model: str
    transcoder_set: str
    target_tokens: list[str]
    target_source: str                               # "given" | "inferred" | "none"
    n_graphs: dict[str, int]                         # per prompt set
    tables: dict[str, list[dict]]                    # per analysis, all rows (passed or not)
    ranked: list[dict]                               # the fused ranking, with each analysis' numbers
    options: dict = field(default_factory=dict)      # AnalysisOptions and run settings, for the record
    profiles: dict[str, dict] = field(default_factory=dict)        # feature key -> profile
    contexts: dict[str, list[dict]] = field(default_factory=dict)  # feature key -> top activating windows
    notes: list[str] = field(default_factory=list)   # what was skipped and why

    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "audit.json"
        path.write_text(json.dumps(asdict(self), indent=1, ensure_ascii=False))
        return path

    @classmethod
    def load(cls, path: Path) -> "AuditResult":
        return cls(**json.loads(Path(path).read_text()))


def analyse(summaries: list[GraphSummary], opts: AnalysisOptions, *, audit_id: str, created: str,
            model: str = "", transcoder_set: str = "", target_tokens: tuple[str, ...] = (),
            target_source: str = "given", labels: dict[str, str] | None = None,
            other_fraction: dict[str, float] | None = None,
            ablation: dict[str, float] | None = None) -> AuditResult:
    """Run (a)-(d) over the summaries and fuse them. `labels` adds store labels to those in the graphs."""
    all_labels = {k: v for s in summaries for k, v in s.labels.items()}
    all_labels.update({k: v for k, v in (labels or {}).items() if v})
    tables = {
        "enrichment": run_enrichment(summaries, opts),
        "control_token": run_control_tokens(summaries, opts, other_fraction),
        "drivers": run_drivers(summaries, opts, ablation),
        "label": run_label_search(all_labels, opts),
    }
    notes = []
    if tables["enrichment"] and not any(r["passed"] for r in tables["enrichment"]):
        notes.append("no feature is enriched in the suspect graphs: no sign of a mechanism specific to "
                     "the suspect prompts (the ranking rests on the other analyses)")
    if not tables["control_token"]:
        notes.append("control-token analysis skipped: no generic prompt set")
    if not tables["drivers"]:
        notes.append("drivers skipped: no target token among the suspect graphs' logit nodes"
                     if target_tokens else "drivers skipped: no target token given or inferred")
    if not tables["label"]:
        notes.append("label search: no label matched" if opts.label_terms else "label search: no terms given")
    ranked = fuse(tables, opts)
    _annotate(ranked, tables, summaries, all_labels)
    return AuditResult(
        id=audit_id, created=created, model=model, transcoder_set=transcoder_set,
        target_tokens=list(target_tokens), target_source=target_source if target_tokens else "none",
        n_graphs={name: sum(s.set == name for s in summaries) for name in SETS},
        tables=tables, ranked=ranked, options=_options_json(opts), notes=notes)


def choose_targets(summaries: list[GraphSummary], opts: AnalysisOptions,
                   given: tuple[str, ...]) -> tuple[tuple[str, ...], str]:
    """The target tokens and where they came from: given by the user, else inferred from the logits."""
    if given:
        return tuple(given), "given"
    inferred = tuple(infer_target_tokens(summaries, opts))
    return inferred, "inferred" if inferred else "none"


def _annotate(ranked: list[dict], tables: dict[str, list[dict]], summaries: list[GraphSummary],
              labels: dict[str, str]) -> None:
    """Copy each analysis' numbers and the mean activation per set onto the fused rows."""
    columns = {"enrichment": ("q", "log_odds", "rate_suspect", "rate_control"),
               "control_token": ("control_fraction",), "drivers": ("influence", "direct", "ablation")}
    lookup = {name: {r["key"]: r for r in rows} for name, rows in tables.items()}
    for name in SETS:
        group = [s for s in summaries if s.set == name]
        total = Counter()
        for s in group:
            total.update(s.max_activation)
        for row in ranked:
            row[f"mean_act_{name}"] = total[row["key"]] / len(group) if group else None
    for row in ranked:
        _, row["layer"], row["feature"] = parse_key(row["key"])
        row["label"] = labels.get(row["key"], "")
        for name, cols in columns.items():
            hit = lookup[name].get(row["key"], {})
            for c in cols:
                row[c] = hit.get(c)


def _options_json(opts: AnalysisOptions) -> dict:
    d = asdict(opts)
    d["label_terms"] = list(opts.label_terms)
    return d
