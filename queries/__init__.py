"""Named, parameterised, documented Cypher queries across the graph corpus.

    from circuit_atlas import queries
    queries.run(store, "hubs-by-graphs", limit=10)   # -> list of row dicts
    queries.QUERIES                                  # name -> NamedQuery (summary, doc, params, cypher)
    queries.all_statements()                         # name -> Cypher, for linting
    queries.to_dataframe(rows)                       # a pandas DataFrame of the rows
    queries.explain_empty(store, name, params)       # why an answer is empty: the filter that matched nothing
    queries.unlabelled(store, rows)                  # why its label columns are blank (no labels stored yet)

Statements live in `queries/cypher/*.cypher`; analyses that need Python around them (IoU,
community detection, diffs) in the modules imported below. See docs/queries.md.
"""
from circuit_atlas.queries.registry import (QUERIES, NamedQuery, Param, QueryError, all_statements, get, run,  # noqa: F401
                                            to_dataframe)
from circuit_atlas.queries import analyses, labels, multilingual, supernodes  # noqa: F401,E402  (register the analyses)
from circuit_atlas.queries.explain import blank_labels, explain_empty, unlabelled  # noqa: F401,E402
from circuit_atlas.queries import interventions  # noqa: F401,E402
