"""(:Audit)-[:FLAGGED]->(:Feature) in the embedded store: written by save_audit, read back by Cypher."""
from __future__ import annotations

import pytest

from circuit_atlas.audit.analyses import AnalysisOptions
from circuit_atlas.audit.result import analyse
from circuit_atlas.audit.storage import audited_graphs, audits_flagging, flagged_by, get_audit, list_audits, save_audit
from circuit_atlas.audit.summary import summarize
from circuit_atlas.store import open_store
from tests.statements import all_statements
from tests.test_audit_analyses import TSET, corpus


def test_save_and_query_audits(store_uri):
    graphs = corpus(4)
    summaries = [summarize(g, s, target_tokens=("X",)) for s, g in graphs]
    with open_store(store_uri) as store:
        store.add_graph(graphs[1][1])                       # one control graph stored (it lacks 0/5)
        for audit_id, created in (("a1", "2026-01-01T00:00:00+00:00"), ("a2", "2026-02-01T00:00:00+00:00")):
            result = analyse(summaries, AnalysisOptions(), audit_id=audit_id, created=created,
                             model="tiny", transcoder_set=TSET, target_tokens=("X",))
            n = save_audit(store, result, f"/reports/{audit_id}", n_flagged=1,
                           graph_sets={g.id: s for s, g in graphs})
            assert n == 1
        save_audit(store, result, "/reports/a2", n_flagged=2)              # re-saving updates, no duplicates

    with open_store(store_uri, read_only=True) as store:
        flagged = flagged_by(store, "a2")
        assert [(f["key"], f["rank"], f["analysis"]) for f in flagged] == [
            (f"{TSET}/0/5", 1, "enrichment+drivers"), (f"{TSET}/1/9", 2, "control_token+drivers")]
        assert flagged[0]["score"] == pytest.approx(result.ranked[0]["score"])
        assert [(r["audit"], r["rank"]) for r in audits_flagging(store, f"{TSET}/0/5")] == [("a2", 1), ("a1", 1)]
        assert audits_flagging(store, f"{TSET}/1/9")[0]["audit"] == "a2"
        assert get_audit(store, "a1")["report"] == "/reports/a1" and get_audit(store, "nope") is None
        assert [a["id"] for a in list_audits(store)] == ["a2", "a1"]
        assert [(g["gid"], g["set"]) for g in audited_graphs(store, "a1")] == [(graphs[1][1].id, "control")]
        # a flagged feature in no stored graph got a (:Feature) row with its layer and index
        rows = store.query("MATCH (f:Feature {key: $k}) RETURN f.layer AS layer, f.feature AS feature",
                           {"k": f"{TSET}/0/5"})
        assert rows == [{"layer": 0, "feature": 5}]


def test_statements_are_registered_with_the_store():
    names = {s.name for s in all_statements()}
    assert {"audit.create", "audit.flag_features", "audit.audits_flagging"} <= names
    assert any("Audit" in s.cypher and s.name.startswith("schema.neo4j") for s in all_statements())
