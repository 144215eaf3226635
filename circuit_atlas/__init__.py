"""circuit-atlas: attribution graphs as a database science.

Data flows tracer -> workers -> ingest -> store <- queries. This package is the shared home:
the graph model (`graph`), settings (`settings`), the store interface (`store`) and the CLI (`cli`).
"""
__version__ = "0.1.0"
