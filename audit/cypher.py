"""Named Cypher for audits (portable subset: the same text on the embedded store and Neo4j).

(:Audit {id, created, model, transcoder_set, target_tokens, n_suspect, n_control, n_generic, report})
(:Audit)-[:FLAGGED {rank, score, analysis}]->(:Feature)   rank 1 = the strongest finding
(:Audit)-[:AUDITED {set}]->(:Graph)                        the graphs the audit analysed, by prompt set

The schema is declared in circuit_atlas/store/schema.py. Every statement is in STATEMENTS, which
tests/statements.py gathers with the other packages' for the Neo4j linter and portability tests.
"""
from circuit_atlas.store.statements import StatementSet

STATEMENTS = StatementSet()
statement = STATEMENTS.add


CREATE_AUDIT = statement("audit.create", "Create (or update, on re-render) one audit node.", """
MERGE (a:Audit {id: $id})
SET a.created = $created, a.model = $model, a.transcoder_set = $transcoder_set,
    a.target_tokens = $target_tokens, a.n_suspect = $n_suspect, a.n_control = $n_control,
    a.n_generic = $n_generic, a.report = $report
""")

FLAG_FEATURES = statement(
    "audit.flag_features", "Link an audit to its flagged features; creates (:Feature) rows not stored yet.", """
UNWIND $rows AS r
MATCH (a:Audit {id: $id})
MERGE (f:Feature {key: r.key})
ON CREATE SET f.transcoder_set = r.transcoder_set, f.layer = r.layer, f.feature = r.feature, f.label = r.label
MERGE (a)-[x:FLAGGED]->(f)
SET x.rank = r.rank, x.score = r.score, x.analysis = r.analysis
""")

LINK_GRAPHS = statement(
    "audit.link_graphs", "Link an audit to the stored graphs it analysed (graphs not in the store are skipped).", """
MATCH (a:Audit {id: $id})
UNWIND $rows AS r
MATCH (g:Graph {id: r.gid})
MERGE (a)-[x:AUDITED]->(g)
SET x.set = r.set
""")

AUDITS_FLAGGING = statement(
    "audit.audits_flagging", "Which audits flagged this feature, at what rank and on which evidence (newest first).", """
MATCH (a:Audit)-[x:FLAGGED]->(f:Feature {key: $key})
RETURN a.id AS audit, a.created AS created, a.model AS model, x.rank AS rank, x.score AS score,
       x.analysis AS analysis
ORDER BY created DESC, audit
""")

FLAGGED_BY = statement("audit.flagged_by", "The features one audit flagged, best first.", """
MATCH (a:Audit {id: $id})-[x:FLAGGED]->(f:Feature)
RETURN f.key AS key, f.layer AS layer, f.feature AS feature, f.label AS label, x.rank AS rank,
       x.score AS score, x.analysis AS analysis
ORDER BY rank
""")

GET_AUDIT = statement("audit.get", "One audit's record (its report directory is `report`).", """
MATCH (a:Audit {id: $id})
RETURN a.id AS id, a.created AS created, a.model AS model, a.transcoder_set AS transcoder_set,
       a.target_tokens AS target_tokens, a.report AS report
""")

LIST_AUDITS = statement("audit.list", "All audits, newest first.", """
MATCH (a:Audit)
RETURN a.id AS id, a.created AS created, a.model AS model, a.target_tokens AS target_tokens,
       a.n_suspect AS n_suspect, a.n_control AS n_control, a.report AS report
ORDER BY created DESC, id
""")

AUDITED_GRAPHS = statement("audit.graphs", "The graphs one audit analysed, with their prompt set.", """
MATCH (a:Audit {id: $id})-[x:AUDITED]->(g:Graph)
RETURN g.id AS gid, x.set AS `set`, g.prompt AS prompt
ORDER BY `set`, gid
""")

FEATURE_LABELS = statement("audit.feature_labels", "Stored labels of the given feature keys (for the label search).", """
UNWIND $keys AS k
MATCH (f:Feature {key: k})
RETURN f.key AS key, f.label AS label
""")
