"""The query registry: every named query, its documented parameters, and how to run it.

A named query is either one Cypher statement in `queries/cypher/<name>.cypher`, or a Python analysis
(a function registered with `@analysis`) that runs named statements and post-processes their rows
(IoU, community detection, diffs). Both carry the same docstring format, parsed here:

    <one line: what it answers>
    <free text>
    Parameters:
      $name: type = default    what it means        (no "= default": required)
    Example row:
      {"column": value, ...}

Statements whose name starts with "_" are building blocks of analyses: linted and tested, not listed.
Values always travel as query parameters; nothing a user types is ever formatted into Cypher text.
"""
from __future__ import annotations

import contextvars
import difflib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from circuit_atlas.settings import DEFAULT_TIMEOUT_S
from circuit_atlas.store.rows import plain_value

CYPHER_DIR = Path(__file__).parent / "cypher"
REQUIRED = object()  # default of a parameter the caller must give
TYPES: dict[str, type] = {"str": str, "int": int, "float": float, "bool": bool, "list": list}
_PARAM_LINE = re.compile(r"^\s*\$(\w+):\s*(\w+)(?:\s*=\s*(\S+))?\s*(.*)$")
_TIMEOUT_S = contextvars.ContextVar("timeout_s", default=DEFAULT_TIMEOUT_S)  # of the run() an analysis is in


class QueryError(Exception):
    """A query was asked for by a wrong name or with wrong parameters."""


@dataclass(frozen=True)
class Param:
    name: str
    type: type
    default: Any      # REQUIRED when the caller must give it
    help: str

    def coerce(self, value: Any) -> Any:
        """Turn a CLI string (or a Python value) into this parameter's type; a value that is not one
        (limit=ten, limit=1.5, flag=maybe) is refused, naming the parameter and what it takes."""
        if value is None or (isinstance(value, str) and value.lower() in ("null", "none")):
            return None
        if self.type is list:
            return [v for v in value.split(",") if v] if isinstance(value, str) else list(value)
        if self.type is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in _BOOL_WORDS:
                return _BOOL_WORDS[value.lower()]
            raise self._wrong(value)
        if self.type is int and isinstance(value, float) and not value.is_integer():
            raise self._wrong(value)                  # int(1.5) would quietly make it 1
        try:
            value = self.type(value)
        except (TypeError, ValueError):
            raise self._wrong(value) from None
        if self.type is int and value < 0:           # every int parameter counts something (rows, hops, graphs)
            raise self._wrong(value, "is negative")
        return value

    def _wrong(self, value: Any, problem: str = "") -> "QueryError":
        what, sample = _TYPE_WORDS[self.type]
        if self.default is not REQUIRED and self.default is not None:
            sample = json.dumps(self.default)
        return QueryError(f"parameter {self.name}: {value!r} {problem or 'is not ' + what}; "
                          f"give e.g. --param {self.name}={sample}"
                          + (f" ({self.help})" if self.help else ""))


_BOOL_WORDS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
_TYPE_WORDS = {int: ("an integer", "10"), float: ("a number", "0.5"), str: ("text", "abc"),
               bool: ("true or false", "true"), list: ("a comma-separated list", "a,b")}


def _did_you_mean(name: str, names) -> str:
    close = difflib.get_close_matches(name, list(names), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


@dataclass(frozen=True)
class NamedQuery:
    name: str
    summary: str                       # the one line `circuit-atlas query --list` shows
    doc: str                           # the whole docstring
    params: tuple[Param, ...]
    example: dict                      # the documented example row
    cypher: str | None = None          # one Cypher statement, or ...
    function: Callable | None = None   # ... a Python analysis: function(store, **params) -> list[dict]
    writes: bool = False               # stores something (supernodes): needs a writable store
    set_columns: frozenset = frozenset()   # columns made by collect(): sets, returned sorted (see _plain)

    @property
    def listed(self) -> bool:
        return not self.name.startswith("_")

    def bind(self, given: dict | None) -> dict:
        """Defaults, type coercion, and one clear error for an unknown or missing parameter."""
        given = dict(given or {})
        known = {p.name for p in self.params}
        unknown = sorted(set(given) - known)
        if unknown:
            raise QueryError(f"query {self.name!r} has no parameter {', '.join('$' + u for u in unknown)}"
                             f"{_did_you_mean(unknown[0], known)} "
                             f"(it takes: {', '.join('$' + k for k in sorted(known)) or 'none'})")
        bound = {}
        for p in self.params:
            if p.name in given:
                try:
                    bound[p.name] = p.coerce(given[p.name])
                except QueryError as e:
                    raise QueryError(f"query {self.name!r}: {e}") from None
            elif p.default is REQUIRED:
                raise QueryError(f"query {self.name!r} needs --param {p.name}=<{p.type.__name__}>: {p.help}")
            else:
                bound[p.name] = p.default
        return bound


def parse_doc(name: str, doc: str) -> tuple[str, tuple[Param, ...], dict]:
    """(summary, parameters, example row) from a query docstring in the format above."""
    lines = [line.rstrip() for line in doc.strip().splitlines()]
    if not lines or not lines[0].strip():
        raise QueryError(f"query {name!r}: its docstring must start with a one-line summary")
    params, example, section = [], None, None
    for line in lines[1:]:
        head = line.strip()
        if head in ("Parameters:", "Example row:"):
            section = head
        elif section == "Parameters:" and head.startswith("$"):
            m = _PARAM_LINE.match(head)
            if not m or m.group(2) not in TYPES:
                raise QueryError(f"query {name!r}: bad parameter line {head!r} (want `$name: type = default  help`)")
            pname, ptype, default, help_ = m.groups()
            params.append(Param(pname, TYPES[ptype], REQUIRED if default is None else json.loads(default), help_))
        elif section == "Example row:" and head:
            example = json.loads(head)
            section = None
    if example is None:
        raise QueryError(f"query {name!r}: its docstring needs an 'Example row:' with one JSON row")
    return lines[0].strip(), tuple(params), example


def _cypher_query(path: Path) -> NamedQuery:
    text = path.read_text()
    doc = "\n".join(line[3:] if line.startswith("// ") else line[2:] for line in text.splitlines()
                    if line.startswith("//"))
    body = "\n".join(line for line in text.splitlines() if not line.startswith("//")).strip()
    summary, params, example = parse_doc(path.stem, doc)
    writes = re.search(r"\b(MERGE|CREATE|SET|DELETE)\b", body) is not None
    sets = frozenset(re.findall(r"\bcollect\s*\([^)]*\)\s+AS\s+(\w+)", body, flags=re.IGNORECASE))
    return NamedQuery(path.stem, summary, doc, params, example, cypher=body, writes=writes, set_columns=sets)


QUERIES: dict[str, NamedQuery] = {p.stem: _cypher_query(p) for p in sorted(CYPHER_DIR.glob("*.cypher"))}


def analysis(name: str, writes: bool = False):
    """Register a Python analysis under `name`; its docstring documents it like a .cypher header."""
    def register(function: Callable) -> Callable:
        summary, params, example = parse_doc(name, function.__doc__ or "")
        QUERIES[name] = NamedQuery(name, summary, function.__doc__, params, example,
                                   function=function, writes=writes)
        return function
    return register


def get(name: str) -> NamedQuery:
    try:
        return QUERIES[name]
    except KeyError:
        listed = sorted(n for n, q in QUERIES.items() if q.listed)
        holding = [n for n in listed if name and name in n]          # "hubs" -> the three hubs-by-* queries
        hint = (f"; did you mean {' or '.join(map(repr, holding))}?" if 0 < len(holding) <= 6 else
                _did_you_mean(name, listed) or f"; known queries: {', '.join(listed)}")
        raise QueryError(f"no query named {name!r}{hint} (see `circuit-atlas query --list`)") from None


def statement(name: str) -> str:
    """The Cypher text of a named statement (for analyses that compose statements)."""
    query = get(name)
    assert query.cypher is not None, f"{name} is an analysis, not a statement"
    return query.cypher


def run(store, name: str, params: dict | None = None, *, timeout_s: float | None = None,
        **kwargs) -> list[dict]:
    """Run a named query on an open store: `run(store, "hubs-by-graphs", limit=10)`. `timeout_s` limits
    each Cypher statement it runs, for corpora where one needs longer than the default; an analysis's
    own run() calls inherit it (None: the enclosing run()'s, else DEFAULT_TIMEOUT_S)."""
    query = get(name)
    bound = query.bind({**(params or {}), **kwargs})
    timeout_s = current_timeout() if timeout_s is None else timeout_s
    if query.function is not None:
        token = _TIMEOUT_S.set(timeout_s)
        try:
            return query.function(store, **bound)
        finally:
            _TIMEOUT_S.reset(token)
    return [{k: _plain(v, k in query.set_columns) for k, v in row.items()}
            for row in store.query(query.cypher, bound, max_rows=MAX_ROWS, max_memory=MAX_MEMORY,
                                    timeout_s=timeout_s)]


def current_timeout() -> float:
    """The timeout of the run() an analysis is in, for the statements it sends with store.query itself."""
    return _TIMEOUT_S.get()


def run_per_keys(store, name: str, keys: list, per_call: int = 100, **params) -> list[dict]:
    """run() of a statement over many feature keys ($keys), `per_call` keys at a time: one feature's rows
    (its graphs, its neighbours) reach 10,000 and more on a large corpus, so one call for thousands of
    features could pass MAX_ROWS. No call for no keys."""
    return [r for start in range(0, len(keys), per_call) for r in run(store, name, keys=keys[start:start + per_call], **params)]


MAX_ROWS = 2_000_000  # analyses read whole feature sets; user-facing statements all have a $limit
MAX_MEMORY = "4G"     # our own statements: the cap (store.query) is against runaway parameters; on
                      # 10M edges hubs-by-graphs needs 768M (the engine works in its buffer pool, half of it)


def _plain(value, is_set: bool = False):
    """Plain Python values (the store's `plain_value`). A list made by collect() (`is_set`) is returned
    sorted: it is a set, whose order the two backends do not agree on (ORDER BY before collect() keeps
    it in Neo4j, not in the embedded engine; docs/store.md), so the library fixes one; over no match it
    is [] (Neo4j's, as Cypher says; the embedded engine gives null). Other lists (stored properties such
    as prompt_tokens) keep their order."""
    value = plain_value(value)
    if is_set and value is None:
        return []
    return sorted(value, key=_order) if is_set and isinstance(value, list) else value


def _order(value):
    """A sort key for any JSON-like value (None first, then numbers, strings, lists, maps)."""
    if value is None:
        return (0,)
    if isinstance(value, (bool, int, float)):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    if isinstance(value, list):
        return (3, [_order(v) for v in value])
    return (4, sorted((k, _order(v)) for k, v in value.items()))


def all_statements() -> dict[str, str]:
    """Every Cypher statement of the library by name, for the Neo4j linter and the portability tests."""
    return {name: q.cypher for name, q in QUERIES.items() if q.cypher is not None}


def reference_markdown() -> str:
    """The "Reference" section of docs/queries.md, generated from the docstrings (a test keeps them equal)."""
    out = ["## Reference", ""]
    for name, q in sorted(QUERIES.items()):
        if not q.listed:
            continue
        lines = q.doc.strip().splitlines()
        body = []
        for line in lines[1:]:
            if line.strip() in ("Parameters:", "Example row:"):
                break
            body.append(line.strip())
        text = " ".join([lines[0].strip(), " ".join(body).strip()]).strip()
        if q.cypher is not None:
            source = f"Source: `queries/cypher/{name}.cypher`."
        else:
            source = f"Source: Python analysis in `queries/{q.function.__module__.rsplit('.', 1)[-1]}.py`."
        out += [f"### `{name}`", "", text, "", source + (" Writes to the store." if q.writes else ""), ""]
        if q.params:
            out += ["| parameter | type | default | meaning |", "|---|---|---|---|"]
            for p in q.params:
                default = "required" if p.default is REQUIRED else f"`{json.dumps(p.default)}`"
                out.append(f"| `{p.name}` | {p.type.__name__} | {default} | {p.help.replace('|', '/')} |")
            out.append("")
        out += ["Example row:", "", "```json", json.dumps(q.example, ensure_ascii=False), "```", ""]
    return "\n".join(out)


def to_dataframe(rows: list[dict]):
    """Query rows as a pandas DataFrame, one column per key in first-seen order (nested values stay as
    Python lists and dicts). pandas is optional: `pip install pandas`."""
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("to_dataframe needs pandas: pip install pandas") from None
    columns = list(dict.fromkeys(k for row in rows for k in row))
    return pd.DataFrame.from_records(rows, columns=columns)
