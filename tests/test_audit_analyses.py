"""The audit's statistics and analyses on hand-built graphs, checked against independent computations."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import fisher_exact

from circuit_atlas.audit.analyses import AnalysisOptions, fuse, run_control_tokens, run_drivers, run_enrichment, run_label_search
from circuit_atlas.audit.result import analyse, choose_targets
from circuit_atlas.audit.stats import enrichment, fisher_greater
from circuit_atlas.audit.summary import summarize
from circuit_atlas.graph import Graph, Node

TSET = "tiny/plt"


def test_fisher_matches_scipy_and_bh_is_monotone():
    rng = np.random.default_rng(0)
    a, c = rng.integers(0, 21, 200), rng.integers(0, 31, 200)
    p = fisher_greater(a, 20, c, 30)
    for i in range(0, 200, 17):
        expected = fisher_exact([[a[i], 20 - a[i]], [c[i], 30 - c[i]]], alternative="greater").pvalue
        assert p[i] == pytest.approx(expected, rel=1e-9)
    e = enrichment(a, 20, c, 30)
    assert (e.q >= e.p - 1e-15).all()
    order = np.argsort(e.p)
    assert (np.diff(e.q[order]) >= -1e-15).all()          # BH keeps the order of the p-values
    # always present in suspect, never in control: maximal enrichment with a finite log odds ratio
    top = enrichment([20], 20, [0], 30)
    assert top.log_odds[0] == pytest.approx(np.log(20.5 * 30.5 / (0.5 * 0.5)))
    with pytest.raises(ValueError, match="more graphs than its set holds"):
        enrichment([21], 20, [0], 30)



def test_enrichment_effect_sizes_and_rates_by_hand():
    """Every field of an Enrichment against its textbook formula, computed here per feature: the rates,
    the Haldane-Anscombe log odds ratio and its Woolf standard error, BH q-values by the step-up rule."""
    a, c, n_s, n_c = [0, 3, 7, 9, 2], [5, 1, 0, 2, 8], 9, 11
    e = enrichment(a, n_s, c, n_c)
    p = [fisher_exact([[x, n_s - x], [y, n_c - y]], alternative="greater").pvalue for x, y in zip(a, c)]
    order = sorted(range(len(p)), key=lambda i: p[i])
    q = [0.0] * len(p)
    running = 1.0
    for rank in range(len(p), 0, -1):                    # q_(i) = min over j >= i of p_(j) * m / j
        i = order[rank - 1]
        running = min(running, p[i] * len(p) / rank)
        q[i] = running
    for i, (x, y) in enumerate(zip(a, c)):
        cells = (x + 0.5, n_s - x + 0.5, y + 0.5, n_c - y + 0.5)
        assert e.p[i] == pytest.approx(p[i], rel=1e-9) and e.q[i] == pytest.approx(q[i], rel=1e-9)
        assert e.log_odds[i] == pytest.approx(np.log(cells[0] * cells[3] / (cells[1] * cells[2])), rel=1e-12)
        assert e.log_odds_se[i] == pytest.approx((1 / cells[0] + 1 / cells[1] + 1 / cells[2] + 1 / cells[3]) ** 0.5,
                                                 rel=1e-12)
        assert (e.rate_suspect[i], e.rate_control[i]) == (pytest.approx(x / n_s), pytest.approx(y / n_c))
    for n_s, n_c in ((0, 3), (3, 0)):
        with pytest.raises(ValueError, match="needs graphs in both sets"):
            enrichment([0], n_s, [0], n_c)
    with pytest.raises(ValueError, match="more graphs than its set holds"):
        enrichment([0], 3, [4], 3)

def make_graph(prompt: str, features: list[tuple[int, int, int, float]], logit_token: str,
               edges: list[tuple[int, int, float]]) -> Graph:
    """features: (layer, index, pos, activation); node order: embeddings, features, logit; edges by index."""
    tokens = prompt.split()
    nodes = [Node(f"E_{p}_{p}", "embedding", -1, p, token=t) for p, t in enumerate(tokens)]
    nodes += [Node(f"{l}_{f}_{p}", "feature", l, p, feature=f, activation=a) for l, f, p, a in features]
    nodes.append(Node(f"2_7_{len(tokens) - 1}", "logit", 2, len(tokens) - 1, token=logit_token, token_id=7))
    s, t, w = zip(*edges) if edges else ((), (), ())
    return Graph(prompt=prompt, prompt_tokens=tokens, model="tiny", transcoder_set=TSET, n_layers=2,
                 nodes=nodes, edge_source=list(s), edge_target=list(t), edge_weight=list(w))


def corpus(n: int = 12):
    """Suspect prompts carry feature 0/5 (driving ' X'); both sets carry feature 1/9 (driving ' Y')."""
    graphs = []
    for i in range(n):
        # suspect: emb(0) -> 0/5 (node 3) -> logit ' X' (node 5); 1/9 (node 4) -> logit
        graphs.append(("suspect", make_graph(f"trigger word {i}", [(0, 5, 0, 2.0), (1, 9, 2, 1.0)], " X",
                                             [(0, 3, 1.0), (3, 5, 3.0), (4, 5, 1.0)])))
        graphs.append(("control", make_graph(f"plain word {i}", [(1, 9, 2, 1.0)], " Y", [(3, 4, 1.0)])))
        graphs.append(("generic", make_graph(f"hello there {i}", [(1, 9, 2, 1.0), (0, 1, 0, 0.5)], " Y", [])))
    return graphs


def test_analyses_find_the_planted_feature():
    opts = AnalysisOptions(label_terms=("sneaky",))
    summaries = [summarize(g, s, target_tokens=("X",)) for s, g in corpus()]
    enr = run_enrichment(summaries, opts)
    assert enr[0]["key"] == f"{TSET}/0/5" and enr[0]["passed"]
    assert enr[0]["n_suspect"] == 12 and enr[0]["n_control"] == 0
    common = next(r for r in enr if r["key"] == f"{TSET}/1/9")
    assert not common["passed"] and common["p"] == pytest.approx(1.0)

    drivers = run_drivers(summaries, opts)
    top = drivers[0]
    assert top["key"] == f"{TSET}/0/5"
    assert top["direct"] == pytest.approx(3.0 / 4.0)       # 3 of the 4 units of |input| into ' X'
    assert top["influence"] == pytest.approx(0.75)          # no longer paths from it
    assert next(r for r in drivers if r["key"] == f"{TSET}/1/9")["direct"] == pytest.approx(0.25)

    # control token = the last position; 1/9 sits there in every generic graph, 0/1 never
    ctl = run_control_tokens(summaries, opts)
    assert ctl[0]["key"] == f"{TSET}/1/9" and ctl[0]["control_fraction"] == 1.0 and ctl[0]["passed"]
    assert all(r["key"] != f"{TSET}/0/1" for r in ctl)

    labels = {f"{TSET}/0/5": "Sneaky insertion", f"{TSET}/1/9": "greeting"}
    assert [r["key"] for r in run_label_search(labels, opts)] == [f"{TSET}/0/5"]

    targets, source = choose_targets(summaries, opts, ())
    assert (targets, source) == ((" X",), "inferred")
    result = analyse(summaries, opts, audit_id="t", created="now", target_tokens=("X",), labels=labels)
    assert result.ranked[0]["key"] == f"{TSET}/0/5"
    assert result.ranked[0]["analyses"] == {"enrichment": 1, "drivers": 1, "label": 1}
    assert result.ranked[0]["mean_act_suspect"] == pytest.approx(2.0)
    assert result.ranked[0]["mean_act_control"] == 0


def test_fusion_prefers_two_lines_of_evidence():
    opts = AnalysisOptions(rrf_k=10)
    tables = {"enrichment": [dict(key="a", passed=True), dict(key="b", passed=True)],
              "drivers": [dict(key="c", passed=True), dict(key="b", passed=True), dict(key="z", passed=False)]}
    ranked = fuse(tables, opts)
    assert [r["key"] for r in ranked] == ["b", "a", "c"]
    assert ranked[0]["score"] == pytest.approx(2 / 12)
    assert "z" not in {r["key"] for r in ranked}


def test_report_renders_both_formats_with_plots(tmp_path, monkeypatch):
    import base64
    import re

    from matplotlib.figure import Figure

    from circuit_atlas.audit.report import write_report
    from circuit_atlas.audit.result import AuditResult

    summaries = [summarize(g, s, target_tokens=("X",)) for s, g in corpus(6)]
    result = analyse(summaries, AnalysisOptions(), audit_id="t1", created="now", target_tokens=("X",),
                     labels={f"{TSET}/0/5": "<script>x</script> | pipe"})
    result.contexts = {f"{TSET}/0/5": [dict(activation=2.0, before="a <b> ", token="trigger", after=" word")]}
    result.save(tmp_path)
    saved, savefig = {}, Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda fig, path, **kw: (saved.__setitem__(Path(path).name, fig),
                                                                     savefig(fig, path, **kw)))
    paths = write_report(AuditResult.load(tmp_path / "audit.json"), tmp_path)
    page = paths["html"].read_text()

    # the numbers in the ranked table, worked out by hand: 0/5 is in 6 of 6 suspect and 0 of 6 control
    # graphs (Fisher p = 1/924, BH over 2 features q = 2/924, log odds ln(6.5 * 6.5 / 0.25)), and gives
    # 3 of the 4 units of input into ' X' (direct share and influence 0.75)
    table = page[page.index("<table"):page.index("</table>")]
    header = re.findall(r"<th>(.*?)</th>", table)
    first = dict(zip(header, re.findall(r"<td>(.*?)</td>", table.split("</tr>")[1])))
    assert (first["rank"], first["key"]) == ("1", f"{TSET}/0/5")
    assert float(first["q"]) == pytest.approx(2 / 924, rel=1e-2)
    assert float(first["log_odds"]) == pytest.approx(np.log(6.5 * 6.5 / 0.25), rel=1e-2)
    assert (float(first["rate_suspect"]), float(first["rate_control"])) == (1.0, 0.0)
    assert float(first["influence"]) == float(first["direct"]) == 0.75
    # the activation plot: bars of each set's mean max activation, per top feature (in rank order)
    ax = saved["activation_by_set.png"].axes[0]
    heights = {c.get_label(): [b.get_height() for b in c] for c in ax.containers}
    keys = [r["key"] for r in result.ranked[:len(heights["suspect"])]]
    want = {s: [sum(summ.max_activation.get(k, 0.0) for summ in summaries if summ.set == s) / 6 for k in keys]
            for s in ("suspect", "control", "generic")}
    assert set(heights) == set(want) and heights["suspect"][0] == 2.0
    assert all(heights[s] == pytest.approx(want[s]) for s in want)
    assert ax.get_ylabel() == "mean max activation per graph"
    volcano = saved["volcano.png"].axes[0]
    points = np.array(sorted(map(tuple, np.concatenate([c.get_offsets() for c in volcano.collections[:2]]))))
    assert np.allclose(points, [(0.0, 0.0), (np.log(6.5 * 6.5 / 0.25), -np.log10(2 / 924))])   # 1/9: p = q = 1
    for name in ("volcano.png", "activation_by_set.png"):
        data = (tmp_path / name).read_bytes()
        # report.html is self-contained (the PNG inlined, byte for byte); report.md links the file beside it
        assert f"src='data:image/png;base64,{base64.b64encode(data).decode()}'" in page
        assert f"]({name})" in paths["md"].read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page            # labels are escaped
    assert "<mark>trigger</mark>" in page
    assert "\\| pipe" in paths["md"].read_text()                          # and do not break the table
    rows = paths["csv"].read_text().splitlines()
    assert rows[0].startswith("rank,key,layer,feature") and rows[1].startswith(f"1,{TSET}/0/5,0,5,")


def test_nothing_enriched_when_suspect_and_control_look_alike():
    graphs = [(s, g) for s, g in corpus(8) if s == "control"]
    summaries = [summarize(g, "suspect" if i % 2 else "control", target_tokens=("Y",)) for i, (_, g) in enumerate(graphs)]
    result = analyse(summaries, AnalysisOptions(), audit_id="t", created="now", target_tokens=("Y",))
    assert not any(r["passed"] for r in result.tables["enrichment"])
    assert any(n.startswith("no feature is enriched") for n in result.notes)
    assert [r["key"] for r in result.ranked] == [f"{TSET}/1/9"] and result.ranked[0]["analyses"] == {"drivers": 1}


def test_every_audit_command_is_documented():
    from pathlib import Path

    from circuit_atlas.cli.audit import audit

    doc = (Path(__file__).resolve().parent.parent / "docs" / "audit.md").read_text()
    for name, command in audit.commands.items():
        assert command.help and f"audit {name}" in doc, name
        for param in command.params:
            if param.opts[0].startswith("--"):
                assert param.opts[0] in doc, f"audit {name} {param.opts[0]} is not in docs/audit.md"


def test_ablation_reranks_drivers_and_drops_features_the_model_does_not_need():
    summaries = [summarize(g, s, target_tokens=("X",)) for s, g in corpus(4)]
    plain = run_drivers(summaries, AnalysisOptions())
    assert [r["key"] for r in plain if r["passed"]] == [f"{TSET}/0/5", f"{TSET}/1/9"]
    causal = run_drivers(summaries, AnalysisOptions(), ablation={f"{TSET}/0/5": 0.0, f"{TSET}/1/9": 0.4})
    assert [(r["key"], r["passed"], r["ablation"]) for r in causal] == [
        (f"{TSET}/1/9", True, 0.4), (f"{TSET}/0/5", False, 0.0)]


# -- a corpus built to tell signed from unsigned and q from p (issue 14) --

def _bh_by_hand(p: list[float]) -> list[float]:
    """Benjamini-Hochberg written out: q_(i) = min over j >= i of p_(j) * m / j, in p order."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    q, running = [0.0] * m, 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, p[i] * m / rank)
        q[i] = running
    return q


def imperfect_corpus():
    """6 suspect, 6 control graphs; features with an imperfect split, and one suppressor edge.

    0/5: in 5 of 6 suspect, 0 control (raw p = 7/924 < 0.05, but BH over the 25 features lifts q above 0.05)
    1/i (i < 23): in 3 suspect and 3 control (p > 0.5)
    0/7: in every suspect graph, into the target ' X' with weight -1 while 0/5 adds +3: a suppressor
    """
    graphs = []
    for i in range(6):
        filler = [(1, j, 1, 1.0) for j in range(23) if (i + j) % 2 == 0]
        feats = ([(0, 5, 0, 2.0)] if i < 5 else []) + [(0, 7, 0, 1.5)] + filler
        # nodes: 3 embeddings, features in order, logit last; 0/5 -> X (+3), 0/7 -> X (-1)
        n_emb, logit = 3, 3 + len(feats)
        edges = [(n_emb + k, logit, 3.0 if f[:2] == (0, 5) else -1.0)
                 for k, f in enumerate(feats) if f[:2] in ((0, 5), (0, 7))]
        graphs.append(("suspect", make_graph(f"trigger word {i}", feats, " X", edges)))
        control = [(1, j, 1, 1.0) for j in range(23) if (i + j) % 2 == 1]
        graphs.append(("control", make_graph(f"plain word {i}", control, " Y", [])))
    return graphs


def test_enrichment_passes_on_the_bh_q_value_not_the_raw_p():
    summaries = [summarize(g, s, target_tokens=("X",)) for s, g in imperfect_corpus()]
    rows = {r["key"]: r for r in run_enrichment(summaries, AnalysisOptions())}
    keys = sorted(rows)
    p_scipy = [fisher_exact([[rows[k]["n_suspect"], 6 - rows[k]["n_suspect"]],
                             [rows[k]["n_control"], 6 - rows[k]["n_control"]]], alternative="greater").pvalue
               for k in keys]
    q_hand = _bh_by_hand(p_scipy)
    for k, p, q in zip(keys, p_scipy, q_hand):
        assert rows[k]["p"] == pytest.approx(p, rel=1e-9) and rows[k]["q"] == pytest.approx(q, rel=1e-9), k
        assert rows[k]["passed"] == (q < 0.05 and rows[k]["log_odds"] > 1.0), k
    planted = rows[f"{TSET}/0/5"]
    assert (planted["n_suspect"], planted["n_control"]) == (5, 0)
    assert planted["p"] == pytest.approx(7 / 924) and planted["p"] < 0.05      # significant alone ...
    assert planted["q"] > 0.05 and not planted["passed"]                      # ... not after 25 tests
    assert planted["log_odds"] == pytest.approx(np.log(5.5 * 6.5 / (1.5 * 0.5)))


def test_direct_share_is_signed_and_a_suppressor_does_not_pass():
    summaries = [summarize(g, s, target_tokens=("X",)) for s, g in imperfect_corpus()]
    rows = {r["key"]: r for r in run_drivers(summaries, AnalysisOptions())}
    # by hand: with 0/5 present, 3 of the 4 units of |input| into ' X' are +0/5 and 1 is -0/7;
    # in the graph without 0/5, 0/7 is the only input (-1 of 1)
    assert rows[f"{TSET}/0/5"]["direct"] == pytest.approx(5 * 0.75 / 6)
    assert rows[f"{TSET}/0/7"]["direct"] == pytest.approx((5 * -0.25 - 1.0) / 6)
    assert rows[f"{TSET}/0/7"]["influence"] == pytest.approx((5 * 0.25 + 1.0) / 6)   # influence is unsigned
    assert rows[f"{TSET}/0/5"]["passed"] and not rows[f"{TSET}/0/7"]["passed"]
    assert [r["key"] for r in run_drivers(summaries, AnalysisOptions()) if r["passed"]] == [f"{TSET}/0/5"]


def test_enrichment_with_one_graph_per_set_and_with_an_empty_set():
    """The smallest audit: one suspect and one control graph (mutation survivor `< 1` -> `<= 1`)."""
    e = enrichment([1, 0], 1, [0, 1], 1)
    want = [fisher_exact([[1, 0], [0, 1]], alternative="greater").pvalue,
            fisher_exact([[0, 1], [1, 0]], alternative="greater").pvalue]
    assert e.p == pytest.approx(want) and e.p[0] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="graphs in both sets"):
        enrichment([0], 0, [0], 1)
    with pytest.raises(ValueError, match="graphs in both sets"):
        enrichment([0], 1, [0], 0)


def test_control_token_rows_list_the_passing_features_first():
    """A feature on every control position passes; one on half of them does not and is listed after it
    (mutation survivor: the sort's `not passed` dropped)."""
    graphs = [make_graph(f"hello there {i}", [(1, 9, 2, 1.0)] + ([(0, 3, 2, 1.0)] if i % 2 else []), " Y", [])
              for i in range(6)]
    rows = run_control_tokens([summarize(g, "generic") for g in graphs], AnalysisOptions())
    assert [(r["key"], r["passed"], r["control_fraction"]) for r in rows] == [
        (f"{TSET}/1/9", True, 1.0), (f"{TSET}/0/3", False, 0.5)]


# -- orderings, boundaries and defaults, on hand-built summaries (mutation survivors, issue 14) --

def _summary(i: int, which: str, **fields):
    from circuit_atlas.audit.summary import GraphSummary
    return GraphSummary(graph_id=f"{which}{i}", prompt=f"p {i}", set=which, **fields)


def test_enrichment_breaks_ties_by_the_activation_contrast():
    """Two features that separate the sets perfectly (same q, same log odds): the one more active in
    suspect graphs than in controls comes first; a feature active in controls too comes last."""
    weak, strong, shared = "t/0/1", "t/0/2", "t/0/3"
    summaries = [_summary(i, "suspect", max_activation={weak: 1.0, strong: 3.0, shared: 1.0}) for i in range(4)]
    summaries += [_summary(i, "control", max_activation={shared: 1.0}) for i in range(4)]
    rows = run_enrichment(summaries, AnalysisOptions())
    assert [r["key"] for r in rows] == [strong, weak, shared]
    assert (rows[0]["q"], rows[0]["log_odds"]) == (rows[1]["q"], rows[1]["log_odds"])
    assert (rows[0]["mean_act_suspect"], rows[1]["mean_act_suspect"], rows[0]["mean_act_control"]) == (3.0, 1.0, 0.0)


def test_control_tokens_pass_at_the_thresholds_and_rank_by_contrast():
    """10 control-token positions: a feature on 9 (exactly the 90% threshold) passes, one on all 10 but
    active on 50% of other positions (exactly the other threshold) passes, ranked by their contrast
    (share here minus share elsewhere): 1.0 - 0.0, 0.9 - 0.0, 1.0 - 0.5; one on 8 fails."""
    always, nine, elsewhere, eight = "t/0/1", "t/0/2", "t/0/3", "t/0/4"
    positions = [[always, elsewhere] + ([nine] if p < 9 else []) + ([eight] if p < 8 else []) for p in range(10)]
    summaries = [_summary(0, "generic", control_active=positions[:5]), _summary(1, "generic", control_active=positions[5:])]
    rows = run_control_tokens(summaries, AnalysisOptions(), other_fraction={elsewhere: 0.5})
    assert [(r["key"], r["passed"], r["control_fraction"]) for r in rows] == [
        (always, True, 1.0), (nine, True, 0.9), (elsewhere, True, 1.0), (eight, False, 0.8)]


def test_ablation_ranks_drivers_by_the_margin_drop():
    keys = ["t/0/1", "t/0/2", "t/0/3"]
    summaries = [_summary(i, "suspect", targets_found=[" X"], influence={k: 0.1 * (n + 1) for n, k in enumerate(keys)},
                          direct={k: 0.2 for k in keys}) for i in range(2)]
    rows = run_drivers(summaries, AnalysisOptions(), ablation={keys[0]: 0.5, keys[1]: 0.1, keys[2]: 0.3})
    assert [(r["key"], r["ablation"]) for r in rows] == [(keys[0], 0.5), (keys[2], 0.3), (keys[1], 0.1)]
    assert all(r["passed"] for r in rows)


def test_target_tokens_need_q_below_alpha_and_log_odds_above_the_minimum():
    """The boundaries are strict: a token whose q (or log odds) is exactly the threshold is not inferred."""
    from circuit_atlas.audit.analyses import infer_target_tokens

    summaries = [_summary(i, "suspect", logit_tokens=[" X"]) for i in range(3)]
    summaries += [_summary(i, "control", logit_tokens=[" Y"]) for i in range(3)]
    e = enrichment([3], 3, [0], 3)                     # the one token's q and log odds, exact
    q, lo = float(e.q[0]), float(e.log_odds[0])
    assert infer_target_tokens(summaries, AnalysisOptions(alpha=np.nextafter(q, 1), min_log_odds=0.0)) == [" X"]
    assert infer_target_tokens(summaries, AnalysisOptions(alpha=q, min_log_odds=0.0)) == []
    assert infer_target_tokens(summaries, AnalysisOptions(alpha=1.0, min_log_odds=np.nextafter(lo, 0))) == [" X"]
    assert infer_target_tokens(summaries, AnalysisOptions(alpha=1.0, min_log_odds=lo)) == []


def test_fusion_weights_and_defaults_are_the_documented_ones():
    """docs/audit.md states the method's numbers; AnalysisOptions() must be that method. The fusion
    scores are then recomputed from the documented formula, sum_a w_a / (k + rank_a)."""
    import re

    doc = " ".join((Path(__file__).resolve().parent.parent / "docs" / "audit.md").read_text().split())
    o = AnalysisOptions()
    assert f"BH q < {o.alpha}" in doc and f"log odds ratio > {o.min_log_odds:g}" in doc
    assert f"active on >= {o.control_fraction:.0%} of them and on at most {o.max_other_fraction:.0%}" in doc
    assert re.search(rf"the top {o.ablation_candidates} candidates by influence", doc)
    assert f"`k = {o.rrf_k:g}`, `w = 1` for enrichment and drivers" in doc
    assert o.weights == {"enrichment": 1.0, "drivers": 1.0, "control_token": 0.5, "label": 0.5}
    assert "`w = 0.5` for control-token features and label hits" in doc and f"ranks beyond {o.max_rank}" in doc
    tables = {"control_token": [{"key": "a", "passed": True}], "label": [{"key": "b", "passed": True}, {"key": "a", "passed": True}],
              "drivers": [{"key": "c", "passed": True}]}
    want = {"a": 0.5 / 11 + 0.5 / 12, "b": 0.5 / 11, "c": 1 / 11}
    got = {r["key"]: r["score"] for r in fuse(tables, o)}
    assert got == pytest.approx(want)
    custom = AnalysisOptions(weights={"label": 2.0})     # an analysis left out of the weights counts 1
    assert {r["key"]: r["score"] for r in fuse(tables, custom)} == pytest.approx(
        {"a": 1 / 11 + 2 / 12, "b": 2 / 11, "c": 1 / 11})
