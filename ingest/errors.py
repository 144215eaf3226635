"""What goes wrong reading a graph file: `GraphFileError` for callers, `_Problem` inside the readers."""
from __future__ import annotations


class GraphFileError(ValueError):
    """A graph file that cannot be read; the message is '<file>: <problem>'."""


class _Problem(ValueError):
    """What is wrong with a file's content; `read_graph_file` prefixes the file name."""


def _more(n: int, what: str) -> str:
    return f" (and {n} more {what}{'s' * (n > 1)})" if n > 0 else ""
