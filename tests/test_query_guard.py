"""User Cypher is read-only in fact: every door issue 10 found, in every spelling, is refused with one
line naming the clause, and nothing is written, read or changed.

Each door is first shown to be real (test_the_door_is_open_without_the_guard: the same text, sent by
the engine directly in a READ ONLY transaction as before, writes the file, returns the secret, runs
the library's constructor, empties the store); then refused through Store.query on a store opened
read-only (queries run in the child process) and read-write (in-process), and through the CLI.
HOME is a temporary directory in every test, so `INSTALL` could not touch the real `~/.kuzu`.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from circuit_atlas.cli import main
from circuit_atlas.store import CypherError, ForbiddenQueryError, open_store
from circuit_atlas.store.guard import check_read_query
from circuit_atlas.synthetic import synthetic_graph

SECRET = "TOPSECRET-1234"
EVIL_C = r"""
#include <stdio.h>
#include <stdlib.h>
__attribute__((constructor)) static void ran(void) {
    FILE *f = fopen(getenv("CA_MARKER"), "w");
    if (f) { fputs("constructor ran\n", f); fclose(f); }
}
"""


@dataclass(frozen=True)
class Door:
    name: str
    query: str              # {d} is the test's scratch directory
    clause: str             # what the refusal must name
    params: tuple = ()      # (name, value) pairs; values may use {d}


DOORS = [
    Door("copy-to-csv", "COPY (MATCH (g:Graph) RETURN g.id) TO '{d}/out.csv'", "COPY"),
    Door("copy-to-parquet", "COPY (MATCH (g:Graph) RETURN g.id) TO '{d}/out.parquet'", "COPY"),
    Door("copy-overwrites", "COPY (MATCH (g:Graph) RETURN g.id) TO '{d}/victim.csv'", "COPY"),
    Door("load-from", "LOAD FROM '{d}/secret.csv' (header=false) RETURN *", "LOAD FROM"),
    Door("load-from-after-match", "MATCH (g:Graph) WITH count(*) AS n LOAD FROM '{d}/secret.csv' (header=false) "
                                  "RETURN *", "LOAD FROM"),
    Door("load-extension", "LOAD EXTENSION '{d}/evil.so'", "LOAD EXTENSION"),
    Door("export-database", "EXPORT DATABASE '{d}/dump'", "EXPORT DATABASE"),
    Door("import-database", "IMPORT DATABASE '{d}/import'", "IMPORT DATABASE"),
    Door("attach", "ATTACH '{d}/other.db' AS other (dbtype kuzu)", "ATTACH"),
    Door("install", "INSTALL postgres", "INSTALL"),
    Door("setting", "CALL threads=1", "CALL threads"),
    Door("read-csv-procedure", "CALL read_csv_serial('{d}/secret.csv') RETURN *", "CALL read_csv_serial"),
    Door("create", "CREATE (:Tag {id: 'x=y', key: 'x', value: 'y'})", "CREATE"),
    Door("merge", "MERGE (:Tag {id: 'x=y'})", "MERGE"),
    Door("set", "MATCH (g:Graph) SET g.slug = 'x'", "SET"),
    Door("delete", "MATCH (g:Graph) DETACH DELETE g", "DETACH DELETE"),
    Door("path-in-parameter", "LOAD FROM $path (header=false) RETURN *", "LOAD FROM", (("path", "{d}/secret.csv"),)),
    Door("copy-to-parameter", "COPY (MATCH (g:Graph) RETURN g.id) TO $path", "COPY", (("path", "{d}/out.csv"),)),
    Door("procedure-parameter", "CALL read_csv_serial($path) RETURN *", "CALL read_csv_serial",
         (("path", "{d}/secret.csv"),)),
]


def _lower(q: str) -> str:
    """Lower case outside quoted paths (the path stays as it is)."""
    head, quote, rest = q.partition("'")
    return head.lower() + quote + rest


VARIANTS = {
    "as-is": lambda q: q,
    "lower-case": _lower,
    "mixed-case": lambda q: "".join(c.upper() if i % 2 else c.lower() for i, c in enumerate(q.partition("'")[0]))
                            + "".join(q.partition("'")[1:]),
    "block-comment": lambda q: "/* a read, honest */ " + q.replace(" ", " /* x */ ", 1),
    "line-comment": lambda q: "// just a read\n" + q + " // the end",
    "whitespace": lambda q: "\n\t  " + q.replace(" ", "\n\t ", 2) + " \n",
    "trailing-semicolon": lambda q: q + " ;",
    "after-a-statement": lambda q: "MATCH (g:Graph) RETURN count(*) AS n; " + q,
    "in-a-union": lambda q: "MATCH (g:Graph) RETURN g.id AS id UNION " + q,
    "in-a-subquery": lambda q: "MATCH (g:Graph) WHERE EXISTS { " + q + " } RETURN g.id AS id",
}


def store_digest(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(path.parent.glob(path.name + "*")):
        if f.is_file():
            h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def built_store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("guard") / "atlas.db"
    with open_store(str(path)) as store:
        store.add_graphs([synthetic_graph(i, n_nodes=60, n_edges=300, tags={"lang": "en"}) for i in range(3)])
    return path


@pytest.fixture(scope="module")
def evil_library(tmp_path_factory) -> Path | None:
    """A shared library whose constructor writes the file $CA_MARKER (None without a C compiler)."""
    if not shutil.which("cc"):
        return None
    d = tmp_path_factory.mktemp("evil")
    (d / "evil.c").write_text(EVIL_C)
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(d / "evil.so"), str(d / "evil.c")], check=True)
    return d / "evil.so"


@pytest.fixture
def scene(built_store, evil_library, tmp_path, monkeypatch):
    """A copy of the store, a scratch directory with a secret, a victim file, a library whose constructor
    writes a marker, an export whose schema.cypher deletes everything, another store; HOME = scratch."""
    d = tmp_path / "scratch"
    d.mkdir()
    store = tmp_path / "atlas.db"
    for f in built_store.parent.glob(built_store.name + "*"):
        shutil.copy(f, tmp_path / f.name)
    (d / "secret.csv").write_text(SECRET + "\n")
    (d / "victim.csv").write_text("keep me\n")
    (d / "import").mkdir()
    (d / "import" / "schema.cypher").write_text("MATCH (n) DETACH DELETE n;\n")
    (d / "import" / "copy.cypher").write_text("")
    (d / "import" / "macro.cypher").write_text("")
    shutil.copy(store, d / "other.db")
    if evil_library is not None:
        shutil.copy(evil_library, d / "evil.so")
    monkeypatch.setenv("HOME", str(d))
    monkeypatch.setenv("CA_MARKER", str(d / "marker"))
    return store, d


def effects(d: Path, output: str) -> list[str]:
    """What any door would have left behind (empty: nothing)."""
    found = [p.name for p in (d / "out.csv", d / "out.parquet", d / "dump", d / "marker", d / ".kuzu") if p.exists()]
    if (d / "victim.csv").read_text() != "keep me\n":
        found.append("victim.csv overwritten")
    if SECRET in output:
        found.append("the secret was returned")
    return found


def fill(door: Door, d: Path, variant: str = "as-is") -> tuple[str, dict]:
    return VARIANTS[variant](door.query.replace("{d}", str(d))), {k: v.replace("{d}", str(d)) for k, v in door.params}


def graph_state(store) -> list:
    return [store.query("MATCH (g:Graph) RETURN g.id AS id ORDER BY id"),
            store.query("MATCH (n:Node) RETURN count(*) AS n"), store.query("MATCH (t:Tag) RETURN count(*) AS n")]


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("door", DOORS, ids=lambda d: d.name)
def test_refused_on_a_read_only_store(scene, door, variant):
    store_path, d = scene
    before = store_digest(store_path)
    query, params = fill(door, d, variant)
    with open_store(str(store_path), read_only=True) as store:
        with pytest.raises(ForbiddenQueryError) as refused:
            store.query(query, params)
    message = str(refused.value)
    assert "\n" not in message and message.startswith("refused: ")
    assert door.clause.split()[0].lower() in message.lower(), message
    if variant != "after-a-statement":
        assert door.clause.lower() in message.lower(), message
    assert effects(d, message) == []
    assert store_digest(store_path) == before


@pytest.mark.parametrize("variant", ["as-is", "lower-case", "block-comment", "in-a-subquery"])
@pytest.mark.parametrize("door", DOORS, ids=lambda d: d.name)
def test_refused_on_a_store_open_read_write(scene, door, variant):
    """The README's `open_store(path)`: queries run in-process, where only the guard stands before
    IMPORT DATABASE (it runs outside the read-only transaction)."""
    store_path, d = scene
    query, params = fill(door, d, variant)
    with open_store(str(store_path)) as store:
        state = graph_state(store)
        with pytest.raises(ForbiddenQueryError, match="^refused: "):
            store.query(query, params)
        assert graph_state(store) == state
    assert effects(d, "") == []


@pytest.mark.parametrize("door", DOORS, ids=lambda d: d.name)
def test_refused_by_the_cli_in_one_line(scene, door):
    store_path, d = scene
    before = store_digest(store_path)
    query, params = fill(door, d)
    args = ["--store", str(store_path), "cypher", query] + [f"--param-str={k}={v}" for k, v in params.items()]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and result.output.startswith("Error: refused: ")
    assert door.clause in result.output
    assert effects(d, result.output) == []
    assert store_digest(store_path) == before


RUN_RAW = """
import sys, kuzu
db = kuzu.Database(sys.argv[1], read_only=sys.argv[3] == "ro")
conn = kuzu.Connection(db)
if sys.argv[3] == "rw":
    conn.execute("BEGIN TRANSACTION READ ONLY")      # what Store.query did before the guard
try:
    print(conn.execute(sys.argv[2]).get_all())
except RuntimeError as e:
    print("error:", e)
"""


@pytest.mark.parametrize("name, mode", [("copy-to-csv", "rw"), ("copy-overwrites", "ro"), ("load-from", "rw"),
                                        ("load-from-after-match", "ro"), ("load-extension", "ro"),
                                        ("export-database", "rw"), ("import-database", "rw"), ("install", "ro")])
def test_the_door_is_open_without_the_guard(scene, name, mode, cli_env):
    """The same text sent to the engine directly does what the guard prevents: so the checks above
    can see a door that opens (install: it tries a download, and creates ~/.kuzu on the way)."""
    store_path, d = scene
    door = next(x for x in DOORS if x.name == name)
    if name == "load-extension" and not (d / "evil.so").exists():
        pytest.skip("no C compiler to build the test library")
    query, _ = fill(door, d)
    out = subprocess.run([sys.executable, "-c", RUN_RAW, str(store_path), query, mode], capture_output=True,
                         text=True, timeout=120, env={**cli_env, "HOME": str(d), "CA_MARKER": str(d / "marker")})
    if name == "import-database":
        with open_store(str(store_path), read_only=True) as store:
            assert store.query("MATCH (g:Graph) RETURN count(*) AS n") == [{"n": 0}]   # every graph gone
    else:
        assert effects(d, out.stdout), out.stdout + out.stderr


# --- what still passes ----------------------------------------------------------------------------

STRINGS_AND_COMMENTS = [
    "RETURN 'COPY (x) TO y; LOAD FROM z' AS s",
    'RETURN "a\\"; CREATE (n)" AS s',
    "RETURN 'it\\'s; DELETE' AS s // DETACH DELETE everything",
    "/* INSTALL httpfs; EXPORT DATABASE 'x' */ MATCH (g:Graph) RETURN count(*) AS n",
    "MATCH (g:Graph) RETURN g.id AS `set`, g.slug AS `load` ORDER BY `set`",
    "MATCH (g:Graph)-[:TAGGED]->(t:Tag) WHERE t.key = 'lang' RETURN t.value AS `copy`, count(*) AS n",
]


@pytest.mark.parametrize("query", STRINGS_AND_COMMENTS)
def test_keywords_in_strings_comments_and_backticks_still_pass(scene, query):
    store_path, _ = scene
    with open_store(str(store_path), read_only=True) as store:
        store.query(query)


def test_a_read_with_subqueries_and_union_passes(scene):
    """Checked against the graphs themselves: every graph with a lang tag, by slug, plus the tag values."""
    store_path, _ = scene
    graphs = [synthetic_graph(i, n_nodes=60, n_edges=300, tags={"lang": "en"}) for i in range(3)]
    query = """
    // graphs that carry a language tag, and the languages
    MATCH (g:Graph)
    WHERE EXISTS { MATCH (g)-[:TAGGED]->(t:Tag) WHERE t.key = $key }
      AND COUNT { MATCH (g)-[:HAS_NODE]->(n:Node) WHERE n.kind = 'logit' } > 0
    RETURN g.slug AS name
    UNION
    MATCH (t:Tag {key: $key}) RETURN t.value AS name
    """
    with open_store(str(store_path), read_only=True) as store:
        rows = store.query(query, {"key": "lang"})
    expected = {g.slug for g in graphs if any(n.kind == "logit" for n in g.nodes)} | {"en"}
    assert sorted(r["name"] for r in rows) == sorted(expected)


def test_every_library_statement_meets_the_guard():
    """Every read the library sends passes the guard on its backends; every write is refused by it
    (so the guard knows the write clauses the project itself uses)."""
    from circuit_atlas.queries import registry
    from tests.statements import all_statements   # the store's, the audit's and the query library's

    # LOAD FROM: the embedded write path's own read of an Arrow table it passes in; refused to users
    write_clause = re.compile(r"(?<![.\w`])(CREATE|MERGE|SET|DELETE|COPY|LOAD)(?![\w`])")
    # GDS (Leiden for supernodes): a projection outlives its query, outside the caps; the library's own
    write_clause = re.compile(write_clause.pattern + r"|(?<![.\w`])GDS\.")
    verdicts = {"read": 0, "write": 0}
    for st in all_statements():
        body = "\n".join(line for line in st.cypher.splitlines() if not line.lstrip().startswith("//"))
        kind = "write" if write_clause.search(body.upper()) else "read"
        for backend in st.backends:
            if kind == "write":
                with pytest.raises(ForbiddenQueryError):
                    check_read_query(st.cypher, backend)
            else:
                check_read_query(st.cypher, backend)
            verdicts[kind] += 1
    reads = [q for q in registry.QUERIES.values() if q.cypher and not write_clause.search(q.cypher.upper())]
    assert verdicts["read"] >= len(reads) > 10 and verdicts["write"] > 10, verdicts


# --- parameters -----------------------------------------------------------------------------------

def test_parameters_missing_unused_and_out_of_range(scene):
    store_path, _ = scene
    with open_store(str(store_path), read_only=True) as store:
        with pytest.raises(CypherError, match=r"uses \$gid but no value was given"):
            store.query("MATCH (g:Graph {id: $gid}) RETURN g.slug")
        with pytest.raises(CypherError, match=r"\$extra given but not used"):
            store.query("MATCH (g:Graph) RETURN count(*) AS n", {"extra": 1})
        with pytest.raises(CypherError, match="does not fit in 64 bits"):
            store.query("RETURN $x AS x", {"x": 2 ** 64})
        with pytest.raises(CypherError, match="not supported"):
            store.query("RETURN $x AS x", {"x": object()})
        # a parameter named in a string or a comment is not a parameter
        assert store.query("RETURN '$gid' AS s // $other") == [{"s": "$gid"}]
        assert store.query("RETURN $nested AS x", {"nested": [[1], [2, 3]]}) == [{"x": [[1], [2, 3]]}]


MIXED_LISTS = [([{"a": 1}, {"b": 2}], "maps with different keys (a and b)"),   # bound as [{b: 1}, {b: 2}]
               ([1, "a"], "a number and a string"), ([True, 1], "a boolean and a number"),
               ([[1], ["a"]], "a number and a string"), ([{"a": 1}, {"a": "x"}], "a number and a string"),
               ([[1], 2], "a list and a number")]


@pytest.mark.parametrize("read_only", [True, False])
def test_embedded_list_parameters_must_be_of_one_kind(scene, read_only):
    """The embedded engine types a list by its items: a list of maps with other keys came back with the
    wrong keys and values, other mixtures failed obscurely. Refused in one line naming the parameter;
    lists it binds faithfully pass and come back as given."""
    store_path, _ = scene
    with open_store(str(store_path), read_only=read_only) as store:
        for value, problem in MIXED_LISTS:
            with pytest.raises(CypherError) as refused:
                store.query("RETURN $t AS t", {"t": value})
            assert str(refused.value).startswith(f"parameter $t: a list holds {problem}; ") \
                and "\n" not in str(refused.value), str(refused.value)
        for value in ([1, None, 2], [[], [1]], {"a": 1, "b": "x"}, [{"a": [1, None]}, {"a": [2]}], ["x", None]):
            assert store.query("RETURN $t AS t", {"t": value}) == [{"t": value}]


def cli(store_path, *args):
    return CliRunner().invoke(main, ["--store", str(store_path), "cypher", *args])


def test_cli_parameter_rules(scene):
    store_path, _ = scene
    echo = lambda *p: json.loads(cli(store_path, "RETURN $t AS t", *p, "--format", "json").output)[0]["t"]
    assert echo("-p", "t=1984") == 1984
    assert echo("-p", "t= 1984") == " 1984"                     # spaces around: the text itself
    assert echo("--param-str", "t=1984") == "1984"
    assert echo("-p", 't="1984"') == "1984"
    assert echo("-p", "t=00123") == "00123"                     # not JSON: text
    assert echo("-p", "t=NaN") == "NaN"
    assert echo("-p", "t=[1, 2, 3]") == [1, 2, 3]
    assert echo("-p", 't={"a": [1, 2], "b": "c"}') == {"a": [1, 2], "b": "c"}
    assert echo("-p", "t=null") is None
    for args, message in [(["-p", "t=123456789012345678901234567890"], "does not fit in 64 bits"),
                          (["-p", "t=" + "9" * 5000], "t: "),
                          (["-p", "t=1", "--param-str", "t=2"], "given twice"),
                          ([], "uses $t but no value was given"),
                          (["-p", "t=1", "-p", "u=2"], "$u given but not used")]:
        result = cli(store_path, "RETURN $t AS t", *args)
        assert result.exit_code != 0 and message in result.output and "Traceback" not in result.output, result.output


# --- limits ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--timeout", "0"], "timeout must be a number of seconds greater than 0"),
    (["--timeout", "-1"], "timeout must be a number of seconds greater than 0"),
    (["--timeout", "0.0000001"], None),
    (["--timeout", "inf"], "timeout must be a number of seconds greater than 0"),
    (["--timeout", "nan"], "timeout must be a number of seconds greater than 0"),
    (["--max-rows", "0"], "max_rows must be a whole number of at least 1"),
    (["--max-memory", "10M"], "max_memory must be at least 256 MiB"),
    (["--max-memory", "lots"], "is not a size"),
])
def test_limits_are_checked(scene, args, message):
    store_path, _ = scene
    result = cli(store_path, "MATCH (g:Graph) RETURN count(*) AS n", *args)
    assert result.exit_code == 1 and "Traceback" not in result.output and result.output.count("\n") == 1
    if message:
        assert message in result.output, result.output
    else:                                     # a tiny timeout is a timeout, not "no timeout"
        assert "timed out" in result.output, result.output


# --- Neo4j ----------------------------------------------------------------------------------------
# The same promise on a real Neo4j 5.26 server (conftest's neo4j_server). The server has its own wall
# (no LOAD CSV from files, APOC file procedures not loaded, READ transactions): test_neo4j_server_wall
# shows it refuses these doors too; the guard refuses them before the server sees them.

NEO4J_DOORS = [
    Door("load-csv", "LOAD CSV FROM 'file://{d}/secret.csv' AS row RETURN row", "LOAD CSV"),
    Door("load-csv-headers", "LOAD CSV WITH HEADERS FROM 'file://{d}/secret.csv' AS row RETURN row", "LOAD CSV"),
    Door("load-csv-after-match", "MATCH (g:Graph) WITH count(g) AS n LOAD CSV FROM 'file://{d}/secret.csv' AS row "
                                 "RETURN row", "LOAD CSV"),
    Door("load-csv-url-parameter", "LOAD CSV FROM $url AS row RETURN row", "LOAD CSV",
         (("url", "file://{d}/secret.csv"),)),
    Door("apoc-load", "CALL apoc.load.json('file://{d}/secret.csv')", "CALL apoc.load.json"),
    Door("apoc-export", "CALL apoc.export.csv.all('{d}/out.csv', {})", "CALL apoc.export.csv.all"),
    Door("apoc-export-cypher", "CALL apoc.export.cypher.all('{d}/out.cypher', {})", "CALL apoc.export.cypher.all"),
    Door("apoc-cypher-function", "RETURN apoc.cypher.runFirstColumnSingle('LOAD CSV FROM \"file://{d}/secret.csv\" "
                                 "AS r RETURN r', {}) AS x", "apoc.cypher.runFirstColumnSingle"),
    Door("apoc-periodic", "CALL apoc.periodic.iterate('MATCH (n) RETURN n', 'DETACH DELETE n', {})",
         "CALL apoc.periodic.iterate"),
    Door("apoc-create", "CALL apoc.create.node(['Evil'], {}) YIELD node RETURN node", "CALL apoc.create.node"),
    Door("gds-project", "CALL gds.graph.project('g', 'Node', 'EFFECT')", "CALL gds.graph.project"),
    Door("gds-write", "CALL gds.pageRank.write('g', {writeProperty: 'pr'})", "CALL gds.pageRank.write"),
    Door("gds-mutate", "CALL gds.pageRank.mutate('g', {mutateProperty: 'pr'})", "CALL gds.pageRank.mutate"),
    Door("db-create-label", "CALL db.createLabel('Evil')", "CALL db.createLabel"),
    Door("db-create-property", "CALL db.createProperty('evil')", "CALL db.createProperty"),
    Door("db-clear-caches", "CALL db.clearQueryCaches()", "CALL db.clearQueryCaches"),
    Door("dbms-set-config", "CALL dbms.setConfigValue('db.logs.query.enabled', 'INFO')", "CALL dbms.setConfigValue"),
    Door("create", "CREATE (:Tag {id: 'x=y', key: 'x', value: 'y'})", "CREATE"),
    Door("merge", "MERGE (:Tag {id: 'x=y'})", "MERGE"),
    Door("set", "MATCH (g:Graph) SET g.slug = 'x'", "SET"),
    Door("remove", "MATCH (g:Graph) REMOVE g.slug", "REMOVE"),
    Door("delete", "MATCH (g:Graph) DETACH DELETE g", "DETACH DELETE"),
    Door("foreach", "FOREACH (x IN [1] | CREATE (:Tag {id: 'x=y'}))", "FOREACH"),
    Door("in-transactions", "MATCH (g:Graph) CALL { WITH g DETACH DELETE g } IN TRANSACTIONS RETURN 1",
         "DETACH DELETE"),
    Door("use-system", "USE system SHOW USERS", "USE"),
    Door("show", "SHOW DATABASES", "SHOW"),
    Door("create-database", "CREATE DATABASE evil", "CREATE DATABASE"),
]

NEO4J_VARIANTS = {
    **{k: VARIANTS[k] for k in ("as-is", "lower-case", "block-comment", "line-comment", "whitespace",
                                "after-a-statement", "in-a-union", "in-a-subquery")},
    "in-a-call-subquery": lambda q: "MATCH (g:Graph) CALL { " + q + " } RETURN count(*) AS n",
    # Neo4j decodes \uXXXX before it reads the query (Java-style): \u0027 ends this string, and `//'`
    # comments out the rest, so the server would read: WITH 'x' AS a <door>
    "unicode-escape": lambda q: "WITH 'x\\u0027 AS a " + q.replace("'", '"') + " //' AS b RETURN b",
}


def neo4j_state(uri: str) -> list:
    """Node count, labels, relationship types and property keys, read around the code under test."""
    import neo4j

    from circuit_atlas.settings import Settings

    s = Settings.load(store=uri)
    with neo4j.GraphDatabase.driver(uri, auth=(s.neo4j_user, s.neo4j_password)) as driver:
        with driver.session(database=s.neo4j_database) as session:
            return [session.run(q).value() for q in ("MATCH (n) RETURN count(n)", "CALL db.labels()",
                                                      "CALL db.relationshipTypes()", "CALL db.propertyKeys()")]


ON_NEO4J = pytest.mark.parametrize("store_uri", ["neo4j"], indirect=True)   # conftest's store_uri, Neo4j only


@pytest.fixture
def neo4j_scene(store_uri, tmp_path):
    uri = store_uri
    with open_store(uri) as store:
        store.add_graphs([synthetic_graph(i, n_nodes=60, n_edges=200, tags={"lang": "en"}) for i in range(2)])
    d = tmp_path / "scratch"
    d.mkdir()
    (d / "secret.csv").write_text(SECRET + "\n")
    (d / "victim.csv").write_text("keep me\n")
    return uri, d


@pytest.mark.neo4j
@ON_NEO4J
@pytest.mark.parametrize("variant", list(NEO4J_VARIANTS))
@pytest.mark.parametrize("door", NEO4J_DOORS, ids=lambda d: d.name)
def test_refused_on_neo4j(neo4j_scene, door, variant):
    uri, d = neo4j_scene
    query = NEO4J_VARIANTS[variant](door.query.replace("{d}", str(d)))
    params = {k: v.replace("{d}", str(d)) for k, v in door.params}
    before = neo4j_state(uri)
    with open_store(uri) as store:                  # read-write: what a library user holds
        with pytest.raises(ForbiddenQueryError) as refused:
            store.query(query, params)
    message = str(refused.value)
    assert "\n" not in message and message.startswith("refused: ")
    if variant not in ("after-a-statement", "unicode-escape"):
        assert door.clause.lower() in message.lower(), message
    assert effects(d, message) == []
    assert neo4j_state(uri) == before


@pytest.mark.neo4j
@ON_NEO4J
@pytest.mark.parametrize("door", DOORS, ids=lambda d: d.name)
def test_the_embedded_doors_are_refused_on_neo4j_too(neo4j_scene, door):
    """Issue 10's embedded doors (COPY TO, LOAD FROM, LOAD EXTENSION, EXPORT/IMPORT DATABASE, ATTACH,
    INSTALL, CALL setting, writes, paths in parameters) sent to a Neo4j store: the same guard refuses
    them, naming the clause, and nothing is written, read or changed."""
    uri, d = neo4j_scene
    query, params = fill(door, d)
    before = neo4j_state(uri)
    with open_store(uri) as store:
        with pytest.raises(ForbiddenQueryError) as refused:
            store.query(query, params)
    message = str(refused.value)
    assert "\n" not in message and message.startswith("refused: ") and door.clause.lower() in message.lower(), message
    assert effects(d, message) == [] and neo4j_state(uri) == before


@pytest.mark.neo4j
@ON_NEO4J
@pytest.mark.parametrize("door", NEO4J_DOORS, ids=lambda d: d.name)
def test_refused_on_neo4j_by_the_cli(neo4j_scene, door):
    uri, d = neo4j_scene
    before = neo4j_state(uri)
    args = ["--store", uri, "cypher", door.query.replace("{d}", str(d))]
    args += [f"--param-str={k}={v.replace('{d}', str(d))}" for k, v in door.params]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and result.output.count("\n") == 1 and result.output.startswith("Error: refused: ")
    assert door.clause.lower() in result.output.lower()
    assert effects(d, result.output) == [] and neo4j_state(uri) == before


@pytest.mark.neo4j
@ON_NEO4J
@pytest.mark.parametrize("name", ["load-csv", "load-csv-url-parameter", "apoc-load", "apoc-export",
                                  "apoc-cypher-function", "gds-write", "gds-mutate", "db-create-label", "create",
                                  "delete", "in-transactions"])
def test_neo4j_server_wall(neo4j_scene, name):
    """The second wall: sent straight to the server in a READ transaction (as Store.query did before
    the guard), each door is refused by the server too (server config, READ access mode). Not all: the
    server admits gds.graph.project (its catalog graph outlives the query), which the guard refuses."""
    import neo4j

    from circuit_atlas.settings import Settings

    uri, d = neo4j_scene
    door = next(x for x in NEO4J_DOORS if x.name == name)
    params = {k: v.replace("{d}", str(d)) for k, v in door.params}
    before = neo4j_state(uri)
    s = Settings.load(store=uri)
    with neo4j.GraphDatabase.driver(uri, auth=(s.neo4j_user, s.neo4j_password)) as driver:
        with driver.session(database=s.neo4j_database, default_access_mode=neo4j.READ_ACCESS) as session:
            with pytest.raises(neo4j.exceptions.Neo4jError) as refused:
                session.execute_read(lambda tx: tx.run(door.query.replace("{d}", str(d)), params).data())
    assert effects(d, str(refused.value)) == [] and neo4j_state(uri) == before


@pytest.mark.neo4j
@ON_NEO4J
def test_neo4j_reads_unicode_escapes_before_the_query(neo4j_scene):
    """Why the guard also reads a query with its \\u escapes decoded: on Neo4j 5.26 this one text,
    a single string literal to any tokenizer, creates a node in a write transaction."""
    import neo4j

    from circuit_atlas.settings import Settings

    uri, _ = neo4j_scene
    text = NEO4J_VARIANTS["unicode-escape"]("CREATE (:Tag {id: 'x=y', key: 'x', value: 'y'})")
    s = Settings.load(store=uri)
    with neo4j.GraphDatabase.driver(uri, auth=(s.neo4j_user, s.neo4j_password)) as driver:
        with driver.session(database=s.neo4j_database) as session:
            before = session.run("MATCH (t:Tag) RETURN count(t)").single()[0]
            session.run(text).consume()
            assert session.run("MATCH (t:Tag) RETURN count(t)").single()[0] == before + 1
    with pytest.raises(ForbiddenQueryError, match=r"\\u escape changes how this query reads"):
        check_read_query(text, "neo4j")


@pytest.mark.neo4j
@ON_NEO4J
def test_neo4j_reads_still_pass(neo4j_scene):
    uri, _ = neo4j_scene
    graphs = [synthetic_graph(i, n_nodes=60, n_edges=200, tags={"lang": "en"}) for i in range(2)]
    with open_store(uri, read_only=True) as store:
        rows = store.query("""
            MATCH (g:Graph)
            WHERE EXISTS { MATCH (g)-[:TAGGED]->(t:Tag) WHERE t.key = $key }
            CALL (g) { MATCH (g)-[:HAS_NODE]->(n:Node) RETURN count(n) AS nodes }
            RETURN g.slug AS name, nodes
            UNION
            MATCH (t:Tag {key: $key}) RETURN t.value AS name, 0 AS nodes""", {"key": "lang"})
        assert sorted((r["name"], r["nodes"]) for r in rows) == sorted([(g.slug, len(g.nodes)) for g in graphs]
                                                                        + [("en", 0)])
        assert "Graph" in [r["label"] for r in store.query("CALL db.labels() YIELD label RETURN label")]
        assert store.query("RETURN apoc.coll.sum([1, 2, 3]) AS s") == [{"s": 6.0}]
        for q in STRINGS_AND_COMMENTS:
            store.query(q)


@pytest.mark.neo4j
@ON_NEO4J
def test_neo4j_parameters_and_limits(neo4j_scene):
    """The parameter rules and the limits hold on Neo4j too (Store.query and the CLI): a missing or
    unused parameter and a too-large integer are errors naming them, `--timeout 0` / negative / NaN are
    refused before the server sees the query, and rows and bytes are capped as they stream in."""
    from circuit_atlas.store import ResultTooLargeError, StoreError, TooManyRowsError

    uri, _ = neo4j_scene
    with open_store(uri, read_only=True) as store:
        with pytest.raises(CypherError, match=r"uses \$gid but no value was given"):
            store.query("MATCH (g:Graph {id: $gid}) RETURN g.slug")      # not NULL: "no rows"
        with pytest.raises(CypherError, match=r"\$extra given but not used"):
            store.query("MATCH (g:Graph) RETURN count(*) AS n", {"extra": 1})
        with pytest.raises(CypherError, match="does not fit in 64 bits"):
            store.query("RETURN $x AS x", {"x": 2 ** 64})
        assert store.query("RETURN '$gid' AS s // $other") == [{"s": "$gid"}]
        assert store.query("RETURN $m AS m", {"m": {"a": [1, 2], "b": None}}) == [{"m": {"a": [1, 2], "b": None}}]
        for value, _ in MIXED_LISTS:                # Neo4j binds mixed lists as given: no refusal here
            assert store.query("RETURN $t AS t", {"t": value}) == [{"t": value}]
        for timeout in (0, -1, float("nan")):
            with pytest.raises(StoreError, match="greater than 0"):
                store.query("RETURN 1 AS x", timeout_s=timeout)
        rows = "UNWIND range(1, 40) AS x RETURN x, reduce(s = '', i IN range(1, 1000) | s + '0123456789') AS s"
        assert len(store.query(rows, max_bytes=5_000_000)) == 40       # 40 rows of 10 kB
        with pytest.raises(ResultTooLargeError):
            store.query(rows, max_bytes=200_000)
        with pytest.raises(TooManyRowsError, match="more than 39 rows"):
            store.query(rows, max_rows=39)
    for args, message in [(["--timeout", "0"], "greater than 0"), (["--timeout", "-2"], "greater than 0"),
                          (["-p", "t=1", "-p", "u=2"], "$u given but not used"),
                          ([], "uses $t but no value was given"),
                          (["-p", "t=123456789012345678901234567890"], "does not fit in 64 bits")]:
        result = CliRunner().invoke(main, ["--store", uri, "cypher", "RETURN $t AS t", *args])
        assert result.exit_code == 1 and result.output.count("\n") == 1 and message in result.output, result.output
    result = CliRunner().invoke(main, ["--store", uri, "cypher", "RETURN $t AS t", "-p", "t= 1984", "--format", "json"])
    assert json.loads(result.output) == [{"t": " 1984"}]
