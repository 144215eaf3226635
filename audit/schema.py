"""The audit's labels in the store schema (declared once; the store spells them for each backend).

    (:Audit {id, created, model, transcoder_set, target_tokens, n_suspect, n_control, n_generic, report})
    (:Audit)-[:FLAGGED {rank, score, analysis}]->(:Feature)   rank 1 = the strongest finding
    (:Audit)-[:AUDITED {set}]->(:Graph)                        the graphs it analysed, by prompt set
"""
from circuit_atlas.store.schema import Label, Rel, add_label, add_rel

AUDIT = add_label(Label("Audit", "id", {
    "id": "STRING",               # "<UTC yyyymmdd-hhmmss>-<6 hex>"
    "created": "STRING",          # ISO-8601 UTC
    "model": "STRING", "transcoder_set": "STRING",
    "target_tokens": "STRING",    # " | "-joined target tokens ("" when none was given or inferred)
    "n_suspect": "INT64", "n_control": "INT64", "n_generic": "INT64",
    "report": "STRING",           # the audit's directory (audit.json, report.html, ...)
}, indexed=("created",)))
FLAGGED = add_rel(Rel("FLAGGED", "Audit", "Feature", {
    "rank": "INT64",              # position in the fused ranking, 1 = first
    "score": "DOUBLE",            # reciprocal-rank fusion score
    "analysis": "STRING",         # the analyses that support it, e.g. "enrichment+drivers"
}))
AUDITED = add_rel(Rel("AUDITED", "Audit", "Graph", {"set": "STRING"}))
