"""Audits: find the features behind a model's hidden objective, over thousands of attribution graphs.

Modules, in the order data flows: `prompts` (input files), `run` (the phases), `summary` (graph ->
summary), `stats` + `analyses` (the four analyses and their fusion), `activations` (exact encoder
activations), `profile`, `result`, `report`, `schema` + `cypher` + `storage` (the store side),
`jobs` (tracing through the workers). See docs/audit.md.
"""
