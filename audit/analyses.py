"""The four audit analyses over graph summaries, and the fusion of their rankings into one list.

(a) enrichment      features present in suspect graphs far more often than in control graphs
(b) control tokens  features active on >= 90% of control-token positions of a generic prompt set
(c) drivers         features with the most influence on the target tokens' logits in suspect graphs
(d) label search    features whose label mentions a search term

Ranking: weighted reciprocal-rank fusion (Cormack et al. 2009). Each analysis ranks only the
features that pass its own test (q-value and effect size, coverage, positive drive, a label hit);
a feature's score is sum_a weight_a / (k + rank_a). Ranks, unlike raw scores, are comparable across
analyses with incomparable units (q-values, fractions, influence), and a feature supported by two
independent lines of evidence (e.g. enriched AND driving the target token) outranks one that tops a
single analysis: exactly the feature an auditor wants first.
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from circuit_atlas.audit.stats import enrichment
from circuit_atlas.audit.summary import GraphSummary

ANALYSES = ("enrichment", "control_token", "drivers", "label")


@dataclass(frozen=True)
class AnalysisOptions:
    alpha: float = 0.05                  # (a) BH q-value below which a feature counts as enriched
    min_log_odds: float = 1.0            # (a) ...and its log odds ratio above this (odds ~2.7x)
    control_fraction: float = 0.9        # (b) active on at least this share of control-token positions
    max_other_fraction: float = 0.5      # (b) ...and on at most this share of other positions (not "always on")
    label_terms: tuple[str, ...] = ()    # (d) case-insensitive substrings/regexes searched in labels
    ablation_candidates: int = 30        # (c) top drivers by influence whose removal is tested in the model
    rrf_k: float = 10.0                  # fusion constant: larger flattens the difference between ranks
    max_rank: int = 50                   # an analysis contributes its top `max_rank` features to the fusion
    weights: dict[str, float] = field(default_factory=lambda: {
        "enrichment": 1.0, "drivers": 1.0,       # the primary evidence: differential presence, causal drive
        "control_token": 0.5, "label": 0.5})     # supporting evidence


def parse_key(key: str) -> tuple[str, int, int]:
    """'set/with/slashes/3/117' -> ('set/with/slashes', 3, 117)."""
    tset, layer, feature = key.rsplit("/", 2)
    return tset, int(layer), int(feature)


def _by_set(summaries: list[GraphSummary], name: str) -> list[GraphSummary]:
    return [s for s in summaries if s.set == name]


def run_enrichment(summaries: list[GraphSummary], opts: AnalysisOptions) -> list[dict]:
    """(a) Fisher exact + BH over feature presence; rows sorted by q then effect, `passed` marks hits."""
    suspect, control = _by_set(summaries, "suspect"), _by_set(summaries, "control")
    if not suspect or not control:
        return []
    in_suspect = Counter(k for s in suspect for k in s.max_activation)
    in_control = Counter(k for s in control for k in s.max_activation)
    keys = sorted(set(in_suspect) | set(in_control))
    if not keys:
        return []
    e = enrichment([in_suspect[k] for k in keys], len(suspect), [in_control[k] for k in keys], len(control))
    mean_act = {name: _mean_activation(group, keys) for name, group in (("suspect", suspect), ("control", control))}
    rows = [dict(key=k, n_suspect=in_suspect[k], n_control=in_control[k],
                 rate_suspect=float(e.rate_suspect[i]), rate_control=float(e.rate_control[i]),
                 log_odds=float(e.log_odds[i]), log_odds_se=float(e.log_odds_se[i]),
                 p=float(e.p[i]), q=float(e.q[i]),
                 mean_act_suspect=mean_act["suspect"][i], mean_act_control=mean_act["control"][i],
                 passed=bool(e.q[i] < opts.alpha and e.log_odds[i] > opts.min_log_odds))
            for i, k in enumerate(keys)]
    # many features separate the sets perfectly (same q, same log odds): the activation contrast breaks ties
    rows.sort(key=lambda r: (not r["passed"], r["q"], -r["log_odds"], r["mean_act_control"] - r["mean_act_suspect"]))
    return rows


def _mean_activation(group: list[GraphSummary], keys: list[str]) -> list[float]:
    """Mean over the set's graphs of the feature's max activation (0 where it is absent)."""
    total = Counter()
    for s in group:
        total.update(s.max_activation)
    return [total[k] / len(group) for k in keys]


def run_control_tokens(summaries: list[GraphSummary], opts: AnalysisOptions,
                       other_fraction: dict[str, float] | None = None) -> list[dict]:
    """(b) Share of control-token positions (over the generic set) where each feature is active."""
    positions = [p for s in _by_set(summaries, "generic") for p in s.control_active]
    if not positions:
        return []
    count = Counter(k for p in positions for k in p)
    other_fraction = other_fraction or {}
    rows = []
    for k, n in count.items():
        frac, other = n / len(positions), other_fraction.get(k, 0.0)
        rows.append(dict(key=k, control_fraction=frac, other_fraction=other, n_positions=len(positions),
                         passed=frac >= opts.control_fraction and other <= opts.max_other_fraction))
    rows.sort(key=lambda r: (not r["passed"], -(r["control_fraction"] - r["other_fraction"]), r["key"]))
    return rows


def run_drivers(summaries: list[GraphSummary], opts: AnalysisOptions,
                ablation: dict[str, float] | None = None) -> list[dict]:
    """(c) Mean influence on (and signed direct share of) the target logits over suspect graphs with targets.

    With `ablation` (feature key -> mean drop of the target margin when the feature is removed from
    the real model, measured for the top candidates by influence), drivers are ranked by that causal
    effect instead, and only features whose removal lowers the margin pass.
    """
    graphs = [s for s in _by_set(summaries, "suspect") if s.targets_found]
    if not graphs:
        return []
    influence, direct, present = Counter(), Counter(), Counter()
    for s in graphs:
        influence.update(s.influence)
        direct.update(s.direct)
        present.update(set(s.influence) | set(s.direct))
    rows = [dict(key=k, influence=influence[k] / len(graphs), direct=direct[k] / len(graphs),
                 n_graphs=present[k], n_target_graphs=len(graphs),
                 passed=influence[k] > 0 and direct[k] >= 0)   # negative direct effect: a suppressor
            for k in present]
    if ablation is not None:
        for r in rows:
            r["ablation"] = ablation.get(r["key"])
            r["passed"] = r["passed"] and (r["ablation"] or 0.0) > 0
        rows.sort(key=lambda r: (not r["passed"], -(r["ablation"] or 0.0), -r["influence"], r["key"]))
    else:
        rows.sort(key=lambda r: (not r["passed"], -r["influence"], r["key"]))
    return rows


def run_label_search(labels: dict[str, str], opts: AnalysisOptions) -> list[dict]:
    """(d) Features whose label matches any term (case-insensitive regex); ranked by number of terms hit."""
    if not opts.label_terms:
        return []
    patterns = [re.compile(t, re.IGNORECASE) for t in opts.label_terms]
    rows = []
    for key, label in labels.items():
        hits = [t for t, pat in zip(opts.label_terms, patterns) if pat.search(label or "")]
        if hits:
            rows.append(dict(key=key, label=label, terms=hits, passed=True))
    rows.sort(key=lambda r: (-len(r["terms"]), r["key"]))
    return rows


def infer_target_tokens(summaries: list[GraphSummary], opts: AnalysisOptions, limit: int = 3) -> list[str]:
    """Logit tokens that appear in suspect graphs far more often than in controls (same test as (a))."""
    suspect, control = _by_set(summaries, "suspect"), _by_set(summaries, "control")
    if not suspect or not control:
        return []
    in_s = Counter(t for s in suspect for t in set(s.logit_tokens))
    in_c = Counter(t for s in control for t in set(s.logit_tokens))
    tokens = sorted(in_s)
    if not tokens:
        return []
    e = enrichment([in_s[t] for t in tokens], len(suspect), [in_c[t] for t in tokens], len(control))
    order = sorted((i for i in range(len(tokens)) if e.q[i] < opts.alpha and e.log_odds[i] > opts.min_log_odds),
                   key=lambda i: (e.q[i], -e.log_odds[i]))
    return [tokens[i] for i in order[:limit]]


def fuse(tables: dict[str, list[dict]], opts: AnalysisOptions) -> list[dict]:
    """Weighted reciprocal-rank fusion of the passing rows of each analysis (see the module docstring)."""
    score: dict[str, float] = defaultdict(float)
    ranks: dict[str, dict[str, int]] = defaultdict(dict)
    for name, rows in tables.items():
        passing = [r for r in rows if r["passed"]][: opts.max_rank]
        for rank, row in enumerate(passing, start=1):
            score[row["key"]] += opts.weights.get(name, 1.0) / (opts.rrf_k + rank)
            ranks[row["key"]][name] = rank
    order = sorted(score, key=lambda k: (-score[k], min(ranks[k].values()), k))
    return [dict(rank=i, key=k, score=score[k], analyses=ranks[k]) for i, k in enumerate(order, start=1)]

