"""The statement guard: user Cypher must only read, checked before it reaches either database.

    from circuit_atlas.store.guard import check_read_query
    names = check_read_query("MATCH (g:Graph {id: $gid}) RETURN g.slug", "embedded")   # -> {"gid"}
    check_read_query("COPY (MATCH (g:Graph) RETURN g) TO '/tmp/x.csv'", "embedded")
    # ForbiddenQueryError: refused: COPY (line 1, column 1) is not allowed: user queries are read-only ...

The databases' own read-only modes are the second wall, not the first: on Kùzu `COPY ... TO`, `LOAD FROM`,
`LOAD EXTENSION`, `EXPORT`/`IMPORT DATABASE`, `ATTACH` and `CALL read_csv_serial(...)` run inside a
READ ONLY transaction, and on Neo4j `LOAD CSV` and many APOC procedures run in READ access mode.

How it decides. The text is tokenised as both databases read it: strings in either quote kind with
backslash escapes, `//` and `/* */` comments, backticked names (`` `a``b` ``), any letter case and
whitespace, Unicode letters. Then, on the tokens:
  - one statement only (a `;` may end it, nothing may follow);
  - it begins with MATCH, OPTIONAL MATCH, WITH, UNWIND, RETURN or CALL, and so does each UNION branch
    and each `{ ... }` subquery (EXISTS/COUNT may also hold a bare pattern);
  - no word of a clause that writes, reads or writes files, loads code, changes settings or reaches
    another database appears anywhere (WRITE_WORDS), except directly after `.` (a property, `n.set`)
    or `$` (a parameter): a name spelled like one of them must be backticked (`` AS `set` ``);
  - after a complete expression, the next word must be one of the reading keywords (CONTINUATIONS):
    an unknown clause is refused even if this list does not name it;
  - CALL names a procedure of the backend's allowlist (PROCEDURES), or opens a read subquery
    (Neo4j `CALL { ... }`; `IN TRANSACTIONS` is refused); a namespaced function (`apoc.x.y(...)`)
    must be in FUNCTIONS;
  - backslashes outside strings, control and invisible characters outside strings, and unterminated
    strings, comments and names are refused; a text with `\\u` escapes is also checked as a parser that
    decodes them before anything else reads it (Java-style: Neo4j 5.26 does) would read it.
Anything refused raises ForbiddenQueryError (a ReadOnlyQueryError) with one line naming the clause.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from circuit_atlas.store.errors import CypherError, ForbiddenQueryError

# Clauses a user query may start with (also: after UNION, and first in a subquery).
CLAUSE_STARTS = {"MATCH", "OPTIONAL", "WITH", "UNWIND", "RETURN", "CALL"}

# Every clause word of Kùzu 0.11 and Neo4j 5 that is not a read: writes, files, extensions, settings,
# transactions, other databases, administration, query prefixes. Refused wherever they appear unquoted.
WRITE_WORDS = {
    "CREATE", "MERGE", "SET", "DELETE", "DETACH", "NODETACH", "REMOVE", "FOREACH", "INSERT",   # writes
    "LOAD", "COPY", "EXPORT", "IMPORT", "INSTALL", "UNINSTALL", "UPDATE",            # files, code
    "ATTACH", "USE",                                                                 # other databases
    "BEGIN", "COMMIT", "ROLLBACK", "CHECKPOINT", "FORCE", "TRANSACTIONS",             # transactions
    "DROP", "ALTER", "RENAME", "COMMENT", "GRANT", "DENY", "REVOKE", "SHOW", "TERMINATE",  # admin
    "START", "STOP", "ENABLE", "DISABLE", "DEALLOCATE", "REALLOCATE", "DRYRUN", "FINISH", "USING", "PERIODIC",
    "EXPLAIN", "PROFILE", "CYPHER",                                                  # query prefixes
}

# Words that may follow a complete expression (an identifier, literal, `)`, `]`, `}`) in a read query.
CONTINUATIONS = CLAUSE_STARTS | {
    "AND", "OR", "XOR", "NOT", "IN", "IS", "STARTS", "ENDS", "CONTAINS", "AS", "WHEN", "THEN", "ELSE",
    "END", "ASC", "DESC", "ASCENDING", "DESCENDING", "ORDER", "SKIP", "OFFSET", "LIMIT", "WHERE", "YIELD",
    "UNION", "ALL", "SHORTEST", "WSHORTEST", "TRAIL", "ACYCLIC", "GROUP", "GROUPS", "PATH", "PATHS",
    "NULLS", "NORMALIZED", "ELEMENTS", "RELATIONSHIPS",
}

# Words after which an expression, pattern or name is expected (so they do not end an expression).
OPENERS = CLAUSE_STARTS | {
    "AND", "OR", "XOR", "NOT", "IN", "IS", "STARTS", "ENDS", "CONTAINS", "AS", "WHEN", "THEN", "ELSE",
    "CASE", "DISTINCT", "BY", "WHERE", "ORDER", "SKIP", "OFFSET", "LIMIT", "YIELD", "UNION", "ALL", "ANY",
    "NONE", "SINGLE", "SHORTEST", "WSHORTEST", "TRAIL", "ACYCLIC", "EXISTS", "COUNT", "COLLECT", "TYPED",
    "NULLS", "PATH", "PATHS", "GROUPS", "REPEATABLE", "DIFFERENT",
} | WRITE_WORDS

SUBQUERY_WORDS = {"CALL", "EXISTS", "COUNT", "COLLECT"}

# Read-only procedures a user may CALL, per backend (compared case-insensitively). Schema introspection
# only; nothing that reads files (Kùzu's read_csv_*/read_parquet/json_scan/read_npy), projects graphs
# or allocates without bound (Kùzu's algo extension, Neo4j's GDS: no .stream, since it needs a
# projected graph, which only a catalog write makes, and its memory is outside our caps), changes
# settings (Kùzu's `CALL threads=...`) or exports (APOC).
PROCEDURES = {
    "embedded": {"show_tables", "table_info", "show_connection", "show_indexes", "db_version", "show_functions"},
    "neo4j": {"db.labels", "db.relationshiptypes", "db.propertykeys", "db.schema.visualization",
              "db.schema.nodetypeproperties", "db.schema.reltypeproperties", "dbms.components"},
}

# Namespaced (dotted) functions a user may call, per backend; plain functions are built in and pure.
# A name ending in ".*" admits its namespace: the pure APOC function families the server loads
# (neo4j_server.SERVER_PROCEDURES), as functions only; no APOC procedure is callable (apoc.nodes.delete ...).
FUNCTIONS = {
    "embedded": set(),
    "neo4j": {"point.distance", "point.withinbbox", "vector.similarity.cosine", "vector.similarity.euclidean",
              "apoc.coll.*", "apoc.map.*", "apoc.text.*", "apoc.math.*", "apoc.number.*", "apoc.convert.*",
              "apoc.agg.*", "apoc.label.*", "apoc.node.*", "apoc.rel.*", "apoc.util.md5", "apoc.util.sha1",
              "apoc.util.sha256", "apoc.version"},
}

_ALLOWED_CONTROLS = {"\t", "\n", "\r"}
_JAVA_UNICODE_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u+([0-9a-fA-F]{4})")


@dataclass(frozen=True)
class Token:
    kind: str        # word | name (backticked) | string | number | param | symbol
    text: str        # as written (for a param: its name)
    start: int       # offset in the query
    glued: bool      # no whitespace or comment before it

    @property
    def key(self) -> str:
        """A word as a keyword: NFKC-normalised upper case (so fullwidth or ligature letters match too)."""
        return unicodedata.normalize("NFKC", self.text).upper() if self.kind == "word" else ""


class _Refused(Exception):
    def __init__(self, message: str, offset: int | None = None):
        super().__init__(message)
        self.message, self.offset = message, offset


def _where(query: str, offset: int | None) -> str:
    if offset is None:
        return ""
    line = query.count("\n", 0, offset) + 1
    column = offset - (query.rfind("\n", 0, offset) + 1) + 1
    return f" (line {line}, column {column})"


MAX_QUERY_CHARS = 1_000_000


def check_read_query(query: str, backend: str) -> set[str]:
    """Refuse (ForbiddenQueryError, one line) anything but one read-only statement; return the names
    of the parameters it uses. `backend` ("embedded" or "neo4j") chooses the procedure allowlist."""
    if backend not in PROCEDURES:
        raise ValueError(f"unknown backend {backend!r}")
    if not isinstance(query, str):
        raise ForbiddenQueryError(f"refused: a query is text, not {type(query).__name__}")
    if len(query) > MAX_QUERY_CHARS:
        raise ForbiddenQueryError(f"refused: the query is {len(query):,} characters long (at most "
                                  f"{MAX_QUERY_CHARS:,}); pass large values as parameters")
    try:
        params = _check(query, backend)
        decoded = _JAVA_UNICODE_ESCAPE.sub(lambda m: m.group(1) + chr(int(m.group(2), 16)), query)
        if decoded != query:           # as a parser that decodes \uXXXX before lexing would read it
            try:
                _check(decoded, backend)
            except _Refused as e:
                raise _Refused(f"a \\u escape changes how this query reads ({e.message}); write the "
                               "character itself") from None
    except _Refused as e:
        raise ForbiddenQueryError(f"refused: {e.message}{_where(query, e.offset)}") from None
    return params


def check_params(used: set[str], given: dict | None) -> dict:
    """The parameters exactly as the query uses them: each used one given, none given in vain, every
    value a plain JSON-like value (None, bool, 64-bit int, float, str, list, map with string keys)."""
    given = dict(given or {})
    missing, unused = sorted(used - set(given)), sorted(set(given) - used)
    if missing:
        raise CypherError(f"the query uses {', '.join('$' + m for m in missing)} but no value was given; "
                          f"pass it, e.g. --param {missing[0]}=VALUE")
    if unused:
        raise CypherError(f"parameter {', '.join('$' + u for u in unused)} given but not used by the query "
                          f"(it uses: {', '.join('$' + u for u in sorted(used)) or 'no parameters'})")
    for name, value in given.items():
        _check_value(name, value)
    return given


def _check_value(name: str, value, depth: int = 0) -> None:
    if depth > 32:
        raise CypherError(f"parameter ${name}: nested more than 32 levels deep")
    if value is None or isinstance(value, (bool, float, str)):
        return
    if isinstance(value, int):
        if not -2**63 <= value < 2**63:
            raise CypherError(f"parameter ${name}: integer {str(value)[:30]}{'...' * (len(str(value)) > 30)} "
                              "does not fit in 64 bits; pass it as a string or a float")
        return
    if isinstance(value, (list, tuple)):
        for v in value:
            _check_value(name, v, depth + 1)
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise CypherError(f"parameter ${name}: map keys must be strings, not {k!r}")
            _check_value(name, v, depth + 1)
        return
    raise CypherError(f"parameter ${name}: {type(value).__name__} values are not supported; use "
                      "null, true/false, numbers, strings, lists or maps")


# --- tokens -----------------------------------------------------------------------------------

def tokenize(query: str) -> list[Token]:
    """Cypher tokens (comments and whitespace dropped); _Refused on malformed or ambiguous text."""
    tokens: list[Token] = []
    i, n, glued = 0, len(query), True
    while i < n:
        ch = query[i]
        if ch == "\x00" or (unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp")
                            and ch not in _ALLOWED_CONTROLS):
            raise _Refused(f"unusual character U+{ord(ch):04X} outside a string", i)
        if ch.isspace():
            i, glued = i + 1, False
        elif query.startswith("//", i):
            end = min((j for j in (query.find("\n", i), query.find("\r", i)) if j >= 0), default=n)
            _check_comment(query, i, end)
            i, glued = end, False
        elif query.startswith("/*", i):
            end = query.find("*/", i + 2)
            if end < 0:
                raise _Refused("unterminated /* comment", i)
            _check_comment(query, i, end)
            i, glued = end + 2, False
        elif ch in "'\"":
            end = _string_end(query, i)
            tokens.append(Token("string", query[i:end], i, glued))
            i, glued = end, True
        elif ch == "`":
            end = _name_end(query, i)
            tokens.append(Token("name", query[i + 1:end - 1].replace("``", "`"), i, glued))
            i, glued = end, True
        elif ch == "$":
            if i + 1 < n and query[i + 1] == "`":
                end = _name_end(query, i + 1)
                tokens.append(Token("param", query[i + 2:end - 1].replace("``", "`"), i, glued))
            elif i + 1 < n and _word_char(query[i + 1]):
                end = _word_end(query, i + 1)
                tokens.append(Token("param", query[i + 1:end], i, glued))
            else:
                raise _Refused("'$' must be followed by a parameter name", i)
            i, glued = end, True
        elif ch.isdigit():
            end = _word_end(query, i)
            if end + 1 < n and query[end] == "." and query[end + 1].isdigit():
                end = _word_end(query, end + 1)
            tokens.append(Token("number", query[i:end], i, glued))
            i, glued = end, True
        elif _word_char(ch):
            end = _word_end(query, i)
            tokens.append(Token("word", query[i:end], i, glued))
            i, glued = end, True
        elif ch == "\\":
            raise _Refused("a backslash outside a string", i)
        else:
            tokens.append(Token("symbol", ch, i, glued))
            i, glued = i + 1, True
    return tokens


def _word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _word_end(query: str, i: int) -> int:
    while i < len(query) and _word_char(query[i]):
        i += 1
    return i


def _check_comment(query: str, start: int, end: int) -> None:
    for j in range(start, end):
        if unicodedata.category(query[j]) in ("Cc", "Cf", "Zl", "Zp") and query[j] not in _ALLOWED_CONTROLS:
            raise _Refused(f"unusual character U+{ord(query[j]):04X} in a comment", j)


def _string_end(query: str, start: int) -> int:
    quote, i = query[start], start + 1
    while i < len(query):
        ch = query[i]
        if ch == "\\":                  # escapes the next character, whatever it is: the engines differ on
            if i + 1 >= len(query) or query[i + 1] == "\x00":   # which escapes are valid, not on where
                break                                           # a string ends
            i += 2
        elif ch == quote:
            return i + 1
        elif ch == "\x00":
            raise _Refused("a NUL character in a string", i)
        else:
            i += 1
    raise _Refused("unterminated string", start)


def _name_end(query: str, start: int) -> int:
    i = start + 1
    while True:
        end = query.find("`", i)
        if end < 0:
            raise _Refused("unterminated `name`", start)
        if end + 1 < len(query) and query[end + 1] == "`":
            i = end + 2                  # `` inside a name is one backtick
            continue
        return end + 1


# --- clauses ----------------------------------------------------------------------------------

def _check(query: str, backend: str) -> set[str]:
    tokens = tokenize(query)
    while tokens and tokens[-1].text == ";" and tokens[-1].kind == "symbol":
        tokens.pop()                   # one trailing ';' (or several) is fine
    if not tokens:
        raise _Refused("empty query")
    _expect_clause(tokens, 0, "a query")
    for i, t in enumerate(tokens):
        prev = tokens[i - 1] if i else None
        if t.kind == "word":
            _check_word(tokens, i, prev, backend)
        elif t.kind == "symbol" and t.text == "{" and prev is not None and prev.key in SUBQUERY_WORDS:
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            bare_pattern = prev.key in ("EXISTS", "COUNT") and nxt is not None and nxt.text == "("
            if not bare_pattern:      # EXISTS { (a)-->(b) } holds a pattern; other subqueries, clauses
                _expect_clause(tokens, i + 1, f"the {prev.key} {{ }} subquery")
        if t.kind in ("word", "name") and (prev is None or prev.text != "." or prev.kind != "symbol"):
            _check_function(tokens, i, backend)
    for i, t in enumerate(tokens):     # after the clause checks, so that a refusal names the clause if any
        if t.kind == "symbol" and t.text == ";":
            raise _Refused(f"one statement at a time: ';' followed by another statement ({tokens[i + 1].text} ...)",
                           t.start)
    return {t.text for t in tokens if t.kind == "param"}


def _expect_clause(tokens: list[Token], i: int, what: str) -> None:
    t = tokens[i] if i < len(tokens) else None
    if t is not None and t.kind == "word" and t.key in WRITE_WORDS:
        _refuse_write_word(tokens, i)
    if t is None or t.kind != "word" or t.key not in CLAUSE_STARTS:
        found = "nothing" if t is None else repr(t.text)
        raise _Refused(f"{what} must begin with MATCH, OPTIONAL MATCH, WITH, UNWIND, RETURN or CALL, "
                       f"not {found}", None if t is None else t.start)


def _ends_expression(tokens: list[Token], i: int) -> bool:
    t = tokens[i]
    prev = tokens[i - 1] if i else None
    if t.kind in ("name", "string", "number", "param"):
        return True
    if t.kind == "symbol":
        if t.text in ")]}":
            return True
        return t.text == "*" and prev is not None and prev.key in ("RETURN", "WITH", "YIELD")
    # a word: a property, label or alias whatever its spelling; else an identifier unless it is a keyword
    if prev is not None and (prev.text in (".", ":") and prev.kind == "symbol" or prev.key == "AS"):
        return True
    return t.key not in OPENERS


def _check_word(tokens: list[Token], i: int, prev: Token | None, backend: str) -> None:
    t = tokens[i]
    key = t.key
    nxt = tokens[i + 1] if i + 1 < len(tokens) else None
    property_or_param = prev is not None and prev.kind == "symbol" and prev.text in (".", "$") and t.glued
    if key in WRITE_WORDS and not property_or_param:
        _refuse_write_word(tokens, i)
    if prev is not None and not property_or_param and _ends_expression(tokens, i - 1) \
            and key not in CONTINUATIONS:
        raise _Refused(f"{t.text!r} is not a clause or keyword a read-only query may use here", t.start)
    if key == "UNION":
        j = i + 1 + (nxt is not None and nxt.key == "ALL")
        _expect_clause(tokens, j, "each part of a UNION")
    if key == "CALL" and not property_or_param:
        _check_call(tokens, i, backend)


def _refuse_write_word(tokens: list[Token], i: int) -> None:
    t = tokens[i]
    prev = tokens[i - 1] if i else None
    nxt = tokens[i + 1] if i + 1 < len(tokens) else None
    clause = t.key
    if nxt is not None and nxt.kind == "word" and nxt.key in _SECOND_WORDS:
        clause += " " + nxt.key
    hint = ""
    if (prev is not None and (prev.key == "AS" or prev.text in ":{,")) or (nxt is not None and nxt.text == ":"):
        hint = f"; a name spelled like a keyword must be in backticks: `{t.text}`"
    raise _Refused(f"{clause} is not allowed: user queries are read-only (MATCH, OPTIONAL MATCH, WITH, UNWIND, "
                   f"WHERE, RETURN, ORDER BY, SKIP, LIMIT, UNION, read subqueries, CALL of read-only "
                   f"procedures){hint}", t.start)


_SECOND_WORDS = {"FROM", "CSV", "EXTENSION", "DATABASE", "DELETE", "TRANSACTION", "TRANSACTIONS", "CHECKPOINT",
                 "INDEX", "CONSTRAINT", "GRAPH", "TABLE", "MACRO", "SEQUENCE", "PERIODIC"}


def _dotted_name(tokens: list[Token], i: int) -> tuple[str, int]:
    """The name `a.b.c` starting at token i, and the index after it."""
    parts, j = [], i
    while j < len(tokens) and tokens[j].kind in ("word", "name"):
        parts.append(tokens[j].text)
        if j + 2 < len(tokens) and tokens[j + 1].kind == "symbol" and tokens[j + 1].text == "." \
                and tokens[j + 2].kind in ("word", "name"):
            j += 2
        else:
            j += 1
            break
    return ".".join(parts), j


def _check_call(tokens: list[Token], i: int, backend: str) -> None:
    nxt = tokens[i + 1] if i + 1 < len(tokens) else None
    if nxt is None:
        raise _Refused("CALL of nothing", tokens[i].start)
    if nxt.kind == "symbol" and nxt.text in "{(" and backend == "neo4j":
        return                          # a subquery: CALL { ... } or CALL (x) { ... }, checked as a whole
    if nxt.kind not in ("word", "name"):
        raise _Refused("CALL must name a read-only procedure", nxt.start)
    name, after = _dotted_name(tokens, i + 1)
    allowed = PROCEDURES[backend]
    following = tokens[after] if after < len(tokens) else None
    paren = following is not None and following.kind == "symbol" and following.text == "("
    if name.lower() not in allowed or (backend == "embedded" and not paren):
        raise _Refused(f"CALL {name} is not allowed: only read-only procedures may be called "
                       f"(on {backend}: {', '.join(sorted(allowed))})", nxt.start)


def _is_namespaced_call(tokens: list[Token], i: int) -> bool:
    name, after = _dotted_name(tokens, i)
    return "." in name and after < len(tokens) and tokens[after].kind == "symbol" and tokens[after].text == "("


def _check_function(tokens: list[Token], i: int, backend: str) -> None:
    """A namespaced function call (`apoc.cypher.run(...)`) must be in the backend's allowlist."""
    if i and tokens[i - 1].key == "CALL":
        return                          # a procedure: _check_call
    if not _is_namespaced_call(tokens, i):
        return
    name, _ = _dotted_name(tokens, i)
    allowed = FUNCTIONS[backend]
    if name.lower() not in allowed and name.lower().rsplit(".", 1)[0] + ".*" not in allowed:
        allowed = ", ".join(sorted(FUNCTIONS[backend])) or "none"
        raise _Refused(f"function {name}() is not allowed: only built-in functions and these namespaced "
                       f"ones may be called (on {backend}: {allowed})", tokens[i].start)
