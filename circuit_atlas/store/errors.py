"""The store's exceptions. Every message names the problem and, where there is one, the fix."""


class StoreError(Exception):
    """Anything the graph store refuses or fails to do."""


class StoreLockedError(StoreError):
    """The embedded database is held by another process (an ingest, a worker or a query)."""


class StoreIOError(StoreError):
    """The database could not read or write its files (a full disk, a failing disk, permissions).

    What was being written is not stored; the message gives the operating system's reason once."""


class ReadOnlyQueryError(StoreError):
    """A read-only query or store tried to write; the database refused it."""


class ForbiddenQueryError(ReadOnlyQueryError):
    """The statement guard refused a user query before it reached the database (store/guard.py)."""


class QueryLimitError(StoreError):
    """A user query ran past one of its limits (store/limits.py) and was stopped."""


class QueryTimeoutError(QueryLimitError):
    """A query ran past its time limit."""


class TooManyRowsError(QueryLimitError):
    """A query returned more rows than allowed."""


class ResultTooLargeError(QueryLimitError):
    """A query's rows came to more bytes than allowed."""


class QueryMemoryError(QueryLimitError):
    """A query needed more memory than allowed."""


class CypherError(StoreError):
    """The database rejected the Cypher (syntax, unknown label or property, wrong parameter ...)."""


class GraphNotFoundError(StoreError, KeyError):
    """No graph with that id in the store."""

    def __str__(self) -> str:  # KeyError would print the repr
        return str(self.args[0]) if self.args else ""


class UnknownLabelError(CypherError):
    """The query names a label or relationship type the store has no table for (the embedded engine
    refuses it, where Neo4j answers no rows): e.g. (:Audit) in a store made before audits existed."""
