"""The Neo4j server the project starts itself (circuit_atlas.store.neo4j_server, scripts/neo4j.sh).

Every statement here goes straight through the official driver, around the store and any client-side
guard, so what is refused is refused by the server's own configuration.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import neo4j
import pytest

from circuit_atlas.store import neo4j_server as launcher

pytestmark = pytest.mark.neo4j


def _driver(uri: str, password: str | None = None):
    return neo4j.GraphDatabase.driver(uri, auth=("neo4j", password or os.environ["NEO4J_PASSWORD"]))


def _read(uri: str, cypher: str) -> list[dict]:
    """Run `cypher` in a READ session, as the store runs user queries."""
    with _driver(uri) as driver, driver.session(default_access_mode=neo4j.READ_ACCESS) as session:
        return session.run(cypher).data()


def test_server_answers_on_loopback_with_auth_on(neo4j_server):
    with _driver(neo4j_server) as driver:
        rows = driver.execute_query("CALL dbms.components() YIELD versions, edition RETURN versions, edition").records
        assert rows[0]["edition"] == "community"
        assert rows[0]["versions"] == [launcher.NEO4J_VERSION]
        config = {r["name"]: r["value"] for r in driver.execute_query(
            "CALL dbms.listConfig() YIELD name, value WHERE name IN $names RETURN name, value",
            names=["dbms.security.auth_enabled", "server.bolt.listen_address", "server.http.enabled"]).records}
    assert config["dbms.security.auth_enabled"] == "true"
    assert config["server.bolt.listen_address"].startswith("127.0.0.1:")
    assert config["server.http.enabled"] == "false"
    with pytest.raises(neo4j.exceptions.AuthError):
        with _driver(neo4j_server, "wrong-password") as driver:
            driver.verify_connectivity()


def test_load_csv_from_files_and_network_is_refused_by_the_server(neo4j_server, tmp_path):
    secret = tmp_path / "secret.csv"
    secret.write_text("a,b\n1,2\n")
    for url, reason in [(secret.as_uri(), "allow_csv_import_from_file_urls"),
                        ("file:///etc/passwd", "allow_csv_import_from_file_urls"),
                        ("http://127.0.0.1:9/x.csv", "blocked")]:
        with pytest.raises(neo4j.exceptions.ClientError, match=reason) as refused:
            _read(neo4j_server, f"LOAD CSV FROM '{url}' AS line RETURN line")
        assert refused.value.code == "Neo.ClientError.Statement.ExternalResourceFailed"


def test_apoc_is_loaded_but_its_file_and_code_procedures_are_not(neo4j_server):
    # APOC is there: an allowlisted function answers ...
    assert _read(neo4j_server, "RETURN apoc.coll.sum([1, 2, 3]) AS s") == [{"s": 6.0}]
    # ... but what reads or writes files, the network, or runs other Cypher is not registered at all
    for call in ["CALL apoc.load.json('file:///etc/passwd')",
                 "CALL apoc.load.csv('file:///etc/passwd')",
                 "CALL apoc.export.csv.all('/tmp/atlas-export.csv', {})",
                 "CALL apoc.export.json.all('/tmp/atlas-export.json', {})",
                 "CALL apoc.import.csv([{fileName: 'file:///etc/passwd', labels: ['X']}], [], {})",
                 "CALL apoc.cypher.run('CREATE (n:Pwned) RETURN n', {})",
                 "CALL apoc.periodic.iterate('RETURN 1', 'CREATE (:Pwned)', {})"]:
        with pytest.raises(neo4j.exceptions.ClientError) as refused:
            _read(neo4j_server, call)
        assert refused.value.code == "Neo.ClientError.Procedure.ProcedureNotFound", call
    assert not Path("/tmp/atlas-export.csv").exists()


def test_gds_streams_but_cannot_write_mutate_or_export(neo4j_server):
    assert _read(neo4j_server, "RETURN gds.version() AS v") == [{"v": launcher.GDS_VERSION}]
    # two triangles joined by one weak edge: Leiden, streamed in a READ session, finds the two
    rows = _read(neo4j_server, """
        UNWIND [[0, 1, 1.0], [1, 2, 1.0], [2, 0, 1.0], [3, 4, 1.0], [4, 5, 1.0], [5, 3, 1.0], [2, 3, 0.1]] AS e
        WITH gds.graph.project('atlas-test-triangles', e[0], e[1], {relationshipProperties: {w: e[2]}},
                               {undirectedRelationshipTypes: ['*']}) AS g
        CALL gds.leiden.stream('atlas-test-triangles', {relationshipWeightProperty: 'w', randomSeed: 7,
                                                        concurrency: 1})
        YIELD nodeId, communityId
        RETURN nodeId, communityId""")
    _read(neo4j_server, "CALL gds.graph.drop('atlas-test-triangles')")
    community = {r["nodeId"]: r["communityId"] for r in rows}
    assert community[0] == community[1] == community[2] != community[3] == community[4] == community[5]
    for call in ["CALL gds.leiden.write('g', {writeProperty: 'c'})",
                 "CALL gds.leiden.mutate('g', {mutateProperty: 'c'})",
                 "CALL gds.graph.export('g', {dbName: 'copy'})",
                 "CALL gds.graph.export.csv('g', {exportName: 'x'})",
                 "CALL gds.beta.graph.export.csv('g', {exportName: 'x'})",
                 "CALL gds.graph.nodeProperties.write('g', ['c'])"]:
        with pytest.raises(neo4j.exceptions.ClientError) as refused:
            _read(neo4j_server, call)
        assert refused.value.code == "Neo.ClientError.Procedure.ProcedureNotFound", call


def test_a_read_session_cannot_write(neo4j_server):
    with pytest.raises(neo4j.exceptions.ClientError) as refused:
        _read(neo4j_server, "CREATE (n:Graph {id: 'written-in-a-read-session'}) RETURN n")
    assert "AccessMode" in refused.value.code
    assert _read(neo4j_server, "MATCH (g:Graph {id: 'written-in-a-read-session'}) RETURN g") == []


@pytest.mark.parametrize("password,why", [
    ("", "refused the login of user 'neo4j' (.*); no password is set: set NEO4J_PASSWORD"),
    ("wrong-password", "refused the login of user 'neo4j' (.*); check NEO4J_USER / NEO4J_PASSWORD"),
    (None, "cannot connect to Neo4j at bolt://127.0.0.1:1: .*Connection refused.*; is the server running?"),
])
def test_a_store_that_cannot_be_reached_says_why_in_one_line(neo4j_server, tmp_path, password, why, cli_env):
    """A missing or wrong password, and a port nothing answers on, each get one line naming the fix."""
    uri = neo4j_server if password is not None else "bolt://127.0.0.1:1"
    env = {k: v for k, v in cli_env.items() if k not in ("NEO4J_PASSWORD", "CIRCUIT_ATLAS_NEO4J_PASSWORD")}
    env.update(CIRCUIT_ATLAS_CONFIG=str(tmp_path / "none.toml"), NEO4J_PASSWORD=password or "")
    done = subprocess.run([sys.executable, "-m", "circuit_atlas", "--store", uri, "cypher", "RETURN 1 AS one"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1 and done.stdout == "", done
    assert done.stderr.count("\n") == 1 and re.search(why, done.stderr), done.stderr


@pytest.mark.slow
def test_a_second_instance_runs_beside_the_first_and_stops_by_its_pid(neo4j_server, tmp_path):
    password = "-second-instance-pw"          # a leading dash must not read as an option of neo4j-admin
    second = launcher.start(tmp_path / "second", password, heap="256m", pagecache="32m", log=lambda m: None)
    try:
        assert second.uri != neo4j_server and second.alive()
        with _driver(second.uri, password) as driver:
            driver.execute_query("CREATE (:Graph {id: 'only-in-the-second'})")
        assert _read(neo4j_server, "MATCH (g:Graph {id: 'only-in-the-second'}) RETURN g") == []
        state = json.loads((tmp_path / "second" / "server.json").read_text())
        assert state["pid"] == second.pid and state["port"] == second.port
        cmdline = Path(f"/proc/{second.pid}/cmdline").read_bytes().split(b"\0")   # what the JVM was really given
        assert state["heap"] == "256m" and b"-Xmx256m" in cmdline
        config = (tmp_path / "second" / "conf" / "neo4j.conf").read_text()
        assert state["pagecache"] == "32m" and "server.memory.pagecache.size=32m" in config
        assert "heap 256m, page cache 32m" in launcher.status(tmp_path / "second")
        with pytest.raises(launcher.Neo4jServerError, match="already runs"):
            launcher.start(tmp_path / "second", password, log=lambda m: None)
    finally:
        assert launcher.stop(tmp_path / "second")
    assert not second.alive()
    assert not Path(f"/proc/{second.pid}").exists() or b"CommunityEntryPoint" not in Path(
        f"/proc/{second.pid}/cmdline").read_bytes()
    assert not (tmp_path / "second" / "server.json").exists()
    assert _read(neo4j_server, "RETURN 1 AS one") == [{"one": 1}]     # the first one still answers
    assert not launcher.stop(tmp_path / "second")         # nothing left to stop


def test_script_refuses_to_start_without_a_password(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("NEO4J_PASSWORD", "CIRCUIT_ATLAS_NEO4J_PASSWORD")}
    env["CIRCUIT_ATLAS_CONFIG"] = str(tmp_path / "none.toml")
    done = subprocess.run([sys.executable, "-m", "circuit_atlas.store.neo4j_server", "start", "--dir",
                           str(tmp_path / "n")], capture_output=True, text=True, env=env)
    assert done.returncode == 1
    assert "set NEO4J_PASSWORD" in done.stderr
    assert not (tmp_path / "n").exists()


@pytest.mark.slow
def test_concurrent_resolvers_leave_one_complete_distribution(tmp_path):
    """Two processes resolve into an empty cache at once: both get the same complete folder."""
    env = dict(os.environ, CIRCUIT_ATLAS_NEO4J_CACHE=str(tmp_path / "cache"))
    code = "from circuit_atlas.store import neo4j_server as n; print(n.resolve(log=lambda m: None))"
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    dist = tmp_path / "cache" / launcher.distribution_dir().name
    assert {Path(out.strip()) for out, _ in outs} == {dist}
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [dist.name]     # no temporary folder left
    assert (dist / "READY").is_file()
    assert (dist / "lib" / f"org.neo4j.neo4j-{launcher.NEO4J_VERSION}.jar").is_file()
    assert (dist / "plugins" / f"org.neo4j.procedure.apoc-core-{launcher.APOC_VERSION}.jar").is_file()


def test_compose_runs_the_tested_version_with_the_same_security_settings():
    import yaml

    compose = yaml.safe_load((Path(__file__).resolve().parents[1] / "compose.yaml").read_text())
    neo4j_service = compose["services"]["neo4j"]
    assert neo4j_service["image"] == f"neo4j:{launcher.NEO4J_VERSION}-community"
    env = neo4j_service["environment"]
    assert env["NEO4J_dbms_security_procedures_allowlist"].split(",") == list(launcher.SERVER_PROCEDURES)
    assert env["NEO4J_dbms_security_procedures_unrestricted"].split(",") == list(launcher.GDS_PROCEDURES)
    assert env["NEO4J_dbms_security_allow__csv__import__from__file__urls"] == "false"
    assert env["NEO4J_internal_dbms_cypher__ip__blocklist"] == "0.0.0.0/0,::/0"
    for key, value in launcher.APOC_SETTINGS.items():        # the image's naming: _ -> __, . -> _
        assert env["NEO4J_" + key.replace("_", "__").replace(".", "_")] == value, key
