"""The store's exceptions. Every message names the problem and, where there is one, the fix."""

import re


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


def refused_query(message: str, cypher: str | None, hint: str = "") -> str:
    """One line for a query the database refused: its message, then the query, then any hint.

    Both engines draw the offending line with a caret under it; that picture is dropped, since the
    message already gives the line and column, and line breaks become spaces, so a terminal or a log
    shows the whole error as one line."""
    lines = message.splitlines()
    kept = [line for i, line in enumerate(lines)
            if not _is_caret(line) and not (i + 1 < len(lines) and _is_caret(lines[i + 1]))]
    text = _one_line("\n".join(kept))
    if cypher:
        shown = _one_line(cypher)
        text += f"; in query: {shown[:300]}" + (" …" if len(shown) > 300 else "")
    return text + (f"; hint: {hint}" if hint else "")


def _is_caret(line: str) -> bool:
    return bool(line.strip()) and set(line.strip()) == {"^"}


def _one_line(text: str) -> str:
    return re.sub(r"\s*[\r\n]+\s*", " ", text).strip()   # spaces inside a line kept: " Austin" stays " Austin"
