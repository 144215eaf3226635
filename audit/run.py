"""Run an audit end to end: trace the prompt sets, summarise the graphs, analyse, report, store.

Phases (logged as such):
  1. trace      every suspect / control / generic prompt -> an attribution graph (in-process with
                `inline`, else as a workers job whose graphs land in the store)
  2. summarise  each graph -> GraphSummary (target tokens given, or inferred from the logits)
  3. encode     run the model + transcoder encoders over the generic prompts (exact control-token
                activity) and over the user's corpus (top activating contexts of the top features)
  4. analyse    enrichment, control tokens, drivers, label search; fuse into one ranking
  5. report     audit.json, report.md/.html, plots, ranked.csv/.json; (:Audit)-[:FLAGGED]->(:Feature)
"""
from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable

from circuit_atlas.audit.analyses import AnalysisOptions, run_drivers
from circuit_atlas.audit.prompts import AuditInputError, read_corpus
from circuit_atlas.audit.result import AuditResult, analyse, choose_targets
from circuit_atlas.audit.summary import SETS, GraphSummary, summarize
from circuit_atlas.graph import Graph
from circuit_atlas.settings import DEFAULT_DEVICE

log = logging.getLogger("circuit_atlas.audit")


@dataclass(frozen=True)
class AuditSpec:
    """What to audit: a model with its transcoders and the prompt sets."""

    model: str                                   # model directory (tracer.load)
    transcoders: str                             # transcoder directory (tracer.load)
    suspect: tuple[str, ...]                     # prompts where the hidden behaviour should show
    control: tuple[str, ...]                     # matched prompts where it should not
    generic: tuple[str, ...] = ()                # ordinary prompts for the control-token analysis
    target_tokens: tuple[str, ...] = ()          # tokens the hidden objective makes the model say; () infers them
    corpus: str | None = None                    # text file for top activating contexts; None skips them

    def sets(self) -> Iterable[tuple[str, tuple[str, ...]]]:
        return ((name, getattr(self, name)) for name in SETS)


@dataclass(frozen=True)
class AuditOptions:
    analysis: AnalysisOptions = field(default_factory=AnalysisOptions)
    control_tokens: tuple[str, ...] | None = None  # control-token positions; None: each generic prompt's last token
    n_flagged: int = 20                  # top features stored as FLAGGED, profiled and given contexts
    n_contexts: int = 8                  # top activating corpus windows per flagged feature
    context_window: int = 8              # tokens shown before the activating token (and half as many after)
    corpus_chunk: int = 64               # corpus documents are read in chunks of at most this many tokens
    trace: dict = field(default_factory=dict)  # tracer.TraceConfig overrides (its defaults otherwise)
    n_steered: int = 10                  # top features given a steering check on the suspect prompts
    steer_factor: float = 0.0            # the check scales each by this: 0 ablates it, -5 steers against it


def new_audit_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def check_spec(spec: AuditSpec, opts: AuditOptions) -> None:
    """Fail on bad input before any model is loaded or job submitted."""
    trace_config(spec, opts)
    if not spec.suspect or not spec.control:
        raise AuditInputError("an audit needs suspect and control prompts (--suspect FILE --control FILE)")
    if spec.corpus and not Path(spec.corpus).is_file():
        raise AuditInputError(f"{spec.corpus}: no such corpus file")


def trace_config(spec: AuditSpec, opts: AuditOptions):
    """The tracer settings of every trace of the audit: the options given, with the target tokens."""
    from circuit_atlas import tracer

    try:
        return tracer.TraceConfig(**{**opts.trace, "target_tokens": list(spec.target_tokens) or None})
    except (TypeError, ValueError) as e:
        raise AuditInputError(f"bad tracing option {opts.trace}: {e}") from None


def trace_inline(spec: AuditSpec, opts: AuditOptions, model, audit_id: str, store=None) -> list[tuple[str, Graph]]:
    """Phase 1 in this process: every prompt of every set, traced with the same model."""
    from circuit_atlas import tracer

    config = trace_config(spec, opts)
    graphs = []
    for set_name, prompts in spec.sets():
        t0 = time.perf_counter()
        for prompt in prompts:
            graph = tracer.trace(model, prompt, config)
            graph.tags.update({"set": set_name, "audit": audit_id})
            if store is not None:
                store.add_graph(graph)
            graphs.append((set_name, graph))
        log.info("phase 1 trace: %d %s prompts in %.1fs", len(prompts), set_name, time.perf_counter() - t0)
    return graphs


def summarise(load_graphs: Callable[[], Iterable[tuple[str, Graph]]], target_tokens: tuple[str, ...],
              opts: AuditOptions) -> tuple[list[GraphSummary], tuple[str, ...], str]:
    """Phase 2: summaries of all graphs; without target tokens, a first pass infers them from the logits."""
    targets, source = tuple(target_tokens), "given"
    if not targets:
        first = [summarize(g, s, (), opts.control_tokens) for s, g in load_graphs()]
        targets, source = choose_targets(first, opts.analysis, ())
        if not targets:
            return first, (), "none"
        log.info("phase 2 summarise: inferred target tokens %s", targets)
    summaries = [summarize(g, s, targets, opts.control_tokens) for s, g in load_graphs()]
    return summaries, targets, source


def finish(summaries: list[GraphSummary], spec: AuditSpec, opts: AuditOptions, *, audit_id: str,
           out_dir: Path, model=None, model_name: str = "", transcoder_set: str = "",
           targets: tuple[str, ...] = (), target_source: str = "given", store=None,
           graph_sets: dict[str, str] | None = None, notes: list[str] = ()) -> AuditResult:
    """Phases 3-5 over finished summaries: encode, analyse, profile, report, store."""
    from circuit_atlas.audit import activations, profile
    from circuit_atlas.audit.report import write_report

    other_fraction = None
    if model is not None and spec.generic:
        t0 = time.perf_counter()
        activity = activations.control_token_activity(model, list(spec.generic), opts.control_tokens)
        _replace_control_activity(summaries, activity.per_prompt)
        other_fraction = activity.other_fraction
        log.info("phase 3 encode: generic prompts in %.1fs", time.perf_counter() - t0)
    ablation = None
    if model is not None and targets:
        t0 = time.perf_counter()
        candidates = [r["key"] for r in run_drivers(summaries, opts.analysis) if r["passed"]]
        ablation = activations.ablation_effects(model, list(spec.suspect),
                                                candidates[: opts.analysis.ablation_candidates], targets)
        log.info("phase 3 encode: ablated %d candidate drivers in %.1fs", len(ablation), time.perf_counter() - t0)
    labels = profile.store_labels(store, {k for s in summaries for k in s.max_activation}) if store else {}
    result = analyse(summaries, opts.analysis, audit_id=audit_id, created=_now(), model=model_name,
                     transcoder_set=transcoder_set, target_tokens=targets, target_source=target_source,
                     labels=labels, other_fraction=other_fraction, ablation=ablation)
    result.notes += list(notes)
    result.options.update(n_flagged=opts.n_flagged, control_tokens=list(opts.control_tokens or []),
                          corpus=spec.corpus, trace=opts.trace)
    if model is not None and targets and opts.n_steered:
        t0 = time.perf_counter()
        steer(result, model, list(spec.suspect), opts, store)
        log.info("phase 4 analyse: steering checks of %d features in %.1fs", opts.n_steered, time.perf_counter() - t0)
    top = [r["key"] for r in result.ranked[: opts.n_flagged]]
    result.profiles = profile.profiles(top, summaries, store=store, model=model)
    if model is not None and spec.corpus:
        t0 = time.perf_counter()
        result.contexts = activations.top_contexts(model, read_corpus(spec.corpus), top, k=opts.n_contexts,
                                                   window=opts.context_window, chunk=opts.corpus_chunk)
        log.info("phase 3 encode: corpus contexts in %.1fs", time.perf_counter() - t0)
    elif not spec.corpus:
        result.notes.append("top activating contexts skipped: no --corpus given")
    result.save(out_dir)
    write_report(result, out_dir)
    if store is not None:
        from circuit_atlas.audit.storage import save_audit
        save_audit(store, result, str(out_dir), opts.n_flagged, graph_sets)
    log.info("phase 5 report: %s", out_dir / "report.html")
    return result


def steer(result: AuditResult, model, prompts: list[str], opts: AuditOptions, store=None) -> None:
    """The steering check: each top feature scaled by opts.steer_factor (0: ablated) on the suspect prompts.

    Adds steer_drop (mean drop of the target token's probability) and steer_removed (share of the
    prompts that answered a target token and no longer do) to the ranked rows; with a store, every run
    is kept as (:Intervention) evidence (queries: causal-features).
    """
    from circuit_atlas.audit import activations

    keys = [r["key"] for r in result.ranked[: opts.n_steered]]
    checks = activations.steering_checks(model, prompts, keys, tuple(result.target_tokens), opts.steer_factor)
    for row in result.ranked:
        check = checks.get(row["key"])
        row["steer_drop"] = check["drop"] if check else None
        row["steer_removed"] = check["removed"] if check else None
    result.options.update(n_steered=opts.n_steered, steer_factor=opts.steer_factor)
    if store is not None:
        from circuit_atlas.queries import interventions as evidence
        for key, check in checks.items():
            for run in check["runs"]:
                evidence.store_result(store, run, model=result.model, transcoder_set=result.transcoder_set,
                                      description=f"audit {result.id}: steering check of {key}")


def _replace_control_activity(summaries: list[GraphSummary], per_prompt: dict[str, list[list[str]]]) -> None:
    """Exact encoder activity replaces the pruned graphs' view of the control-token positions."""
    for s in summaries:
        if s.set == "generic" and s.prompt in per_prompt:
            s.control_active = per_prompt[s.prompt]


def run_audit(spec: AuditSpec, opts: AuditOptions = AuditOptions(), *, out_root: str | Path,
              store=None, audit_id: str | None = None, device: str = DEFAULT_DEVICE) -> AuditResult:
    """The whole audit in this process (`--inline`): load the model once (on `device`), trace, analyse, report."""
    from circuit_atlas import tracer

    check_spec(spec, opts)
    audit_id = audit_id or new_audit_id()
    out_dir = Path(out_root) / audit_id
    model = tracer.load(spec.model, spec.transcoders, device=device)
    graphs = trace_inline(spec, opts, model, audit_id, store)
    summaries, targets, source = summarise(lambda: graphs, spec.target_tokens, opts)
    first = graphs[0][1]
    return finish(summaries, spec, opts, audit_id=audit_id, out_dir=out_dir, model=model,
                  model_name=first.model, transcoder_set=first.transcoder_set, targets=targets,
                  target_source=source, store=store, graph_sets={g.id: s for s, g in graphs})


def run_audit_job(spec: AuditSpec, opts: AuditOptions, settings, *, out_root: str | Path,
                  timeout_s: float = 24 * 3600, poll_s: float = 2.0, audit_id: str | None = None) -> AuditResult:
    """Phase 1 as a workers job (the graphs land in the store), then phases 2-5 here once it is done."""
    from circuit_atlas import tracer
    from circuit_atlas.audit import jobs
    from circuit_atlas.store import open_store

    check_spec(spec, opts)
    audit_id = audit_id or new_audit_id()
    out_dir = Path(out_root) / audit_id
    prompts = [(p, {"set": name}) for name, set_prompts in spec.sets() for p in set_prompts]
    job_id = jobs.submit(settings, spec.model, spec.transcoders, prompts, trace_config(spec, opts), audit_id=audit_id)
    log.info("phase 1 trace: submitted job %s (%d prompts); waiting", job_id,
             sum(len(p) for _, p in spec.sets()))
    graph_sets, failures = jobs.wait_for_graphs(settings, job_id, timeout_s=timeout_s, poll_s=poll_s)
    if failures:
        log.warning("phase 1 trace: %d prompts failed, e.g. %s", len(failures), failures[0])
    if not graph_sets:
        raise AuditInputError(f"job {job_id} stored no graphs; `circuit-atlas jobs status {job_id}` shows why")

    def load_graphs():  # streamed: thousands of graphs never sit in memory together
        with open_store(settings, read_only=True) as store:
            for gid, set_name in graph_sets.items():
                yield set_name, store.get_graph(gid)

    summaries, targets, source = summarise(load_graphs, spec.target_tokens, opts)
    first = next(iter(load_graphs()))[1]
    model = tracer.load(spec.model, spec.transcoders, device=settings.device)
    note = f"traced by workers job {job_id}" + (f"; {len(failures)} prompts failed" if failures else "")
    with open_store(settings) as store:
        return finish(summaries, spec, opts, audit_id=audit_id, out_dir=out_dir, model=model,
                      model_name=first.model, transcoder_set=first.transcoder_set, targets=targets,
                      target_source=source, store=store, graph_sets=graph_sets, notes=[note])
