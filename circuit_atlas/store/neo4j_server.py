"""A real Neo4j server on loopback, without Docker: resolved from Maven Central, started by PID.

    python -m circuit_atlas.store.neo4j_server start [--dir .neo4j] [--port N]   # or scripts/neo4j.sh
    python -m circuit_atlas.store.neo4j_server status | stop | resolve

`resolve()` fetches the pinned Neo4j Community distribution (and the APOC core plugin) with Maven
into a cache folder shared by every checkout (~/.cache/circuit-atlas/neo4j-<version>), atomically:
it is built in a temporary folder and renamed into place, so concurrent resolvers never see half of it.
`start()` runs Neo4j's own server entry point (org.neo4j.server.CommunityEntryPoint) on that class
path with an instance folder of its own (config, data, logs), Bolt on 127.0.0.1 at a free port, auth
on with the password given (NEO4J_PASSWORD), and waits until the server answers a query. Several
instances can run at once; each is stopped by the PID recorded in its folder.

Security (the server's own wall; the client-side statement guard is separate): no LOAD CSV from file
URLs and no import folder, LOAD CSV from the network blocked, APOC file import/export off, and only
the allowlisted procedures (SERVER_PROCEDURES) loaded. HTTP is off: Bolt only.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

NEO4J_VERSION = "5.26.19"        # the 5.26 LTS line runs on Java 17; compose.yaml pins the same version
APOC_VERSION = "5.26.19"         # APOC core, released with the Neo4j version of the same number
# apoc.conf: no file import or export, file URLs as neo4j.conf allows them (not at all), no triggers
APOC_SETTINGS = {"apoc.import.file.enabled": "false", "apoc.export.file.enabled": "false",
                 "apoc.import.file.use_neo4j_config": "true", "apoc.trigger.enabled": "false"}
GDS_VERSION = "2.13.9"           # Graph Data Science (OpenGDS), the line for Neo4j 5.26 on Java 17
PLUGINS = (                      # Maven artifacts of the plugins (their own dependencies come along)
    ("org.neo4j.procedure", "apoc-core", APOC_VERSION), ("org.neo4j.procedure", "apoc-common", APOC_VERSION),
    ("org.neo4j.gds", "proc", GDS_VERSION), ("org.neo4j.gds", "opengds-extension", GDS_VERSION),
    ("org.neo4j.gds", "proc-sysinfo", GDS_VERSION),
)
ENTRY_POINT = "org.neo4j.server.CommunityEntryPoint"
ADMIN_TOOL = "org.neo4j.cli.AdminTool"      # neo4j-admin: dbms set-initial-password, database import, ...

DEFAULT_HEAP = "1g"              # several test servers fit on a 2-core, 24 GiB machine
DEFAULT_PAGECACHE = "256m"

# GDS procedures the server loads: what supernode proposal uses (an in-memory projection, Leiden
# streamed back, the projection dropped) and a few read-only streams; no write, mutate or export.
GDS_PROCEDURES = ("gds.version", "gds.graph.project", "gds.graph.drop", "gds.graph.exists", "gds.graph.list",
                  "gds.leiden.stream", "gds.louvain.stream", "gds.wcc.stream", "gds.pageRank.stream")

# Procedures the server loads (dbms.security.procedures.allowlist). Built-in db.* / dbms.* procedures
# are always there; of the plugins only side-effect-free helpers are listed: no apoc.load.*,
# apoc.export.*, apoc.import.*, apoc.cypher.*, apoc.periodic.*, apoc.trigger.*, no GDS write/mutate/export.
SERVER_PROCEDURES = GDS_PROCEDURES + (
    "apoc.coll.*", "apoc.map.*", "apoc.text.*", "apoc.math.*", "apoc.number.*", "apoc.agg.*",
    "apoc.convert.*", "apoc.label.*", "apoc.meta.*", "apoc.node.*", "apoc.nodes.*", "apoc.rel.*",
    "apoc.path.*", "apoc.algo.*", "apoc.scoring.*", "apoc.util.md5", "apoc.util.sha1", "apoc.util.sha256",
    "apoc.version", "apoc.help",
)

JVM_OPTIONS = (                   # what Neo4j's own launcher passes on Java 17
    "-XX:+UseG1GC", "-XX:-OmitStackTraceInFastThrow", "-XX:+DisableExplicitGC",
    "-XX:+UnlockExperimentalVMOptions", "-XX:+TrustFinalNonStaticFields",
    "-Djdk.nio.maxCachedBufferSize=1024", "-Dio.netty.tryReflectionSetAccessible=true",
    "-Dlog4j2.disable.jmx=true", "-Dfile.encoding=UTF-8", "-Djdk.tls.ephemeralDHKeySize=2048",
    "--add-opens=java.base/java.nio=ALL-UNNAMED", "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED", "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--enable-native-access=ALL-UNNAMED",
)

STATE_FILE = "server.json"


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Neo4jServerError(RuntimeError):
    """The server could not be resolved, started or stopped; the message says why and what to do."""


# --- resolving the distribution ---------------------------------------------------------------------

def cache_root() -> Path:
    return Path(os.environ.get("CIRCUIT_ATLAS_NEO4J_CACHE", Path.home() / ".cache" / "circuit-atlas"))


def distribution_dir() -> Path:
    """Named after everything pinned, so a change of any version resolves a new folder beside the old."""
    return cache_root() / f"neo4j-{NEO4J_VERSION}-apoc-{APOC_VERSION}-gds-{GDS_VERSION}"


def _artifact(jar: Path) -> str:
    """'com.fasterxml.jackson.core.jackson-core-2.18.6.jar' -> 'com.fasterxml.jackson.core.jackson-core':
    group and artifact without the version (jars are copied with their group id: GDS and Neo4j both
    have an artifact named 'annotations', 'logging', ...)."""
    return re.sub(r"-\d[^-]*(-[A-Za-z][\w.-]*)?\.jar$", "", jar.name)


def _pom(artifact_id: str, dependencies: list[tuple[str, str, str]]) -> str:
    deps = "".join(f"<dependency><groupId>{g}</groupId><artifactId>{a}</artifactId><version>{v}</version>"
                   "</dependency>" for g, a, v in dependencies)
    return ('<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
            f"<groupId>circuit-atlas</groupId><artifactId>{artifact_id}</artifactId><version>1</version>"
            f"<packaging>pom</packaging><dependencies>{deps}</dependencies></project>")


def _maven_copy(pom: str, workdir: Path, out: Path) -> None:
    """`mvn dependency:copy-dependencies`: every runtime jar of the pom's dependencies into `out`."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise Neo4jServerError("Maven is not installed: it fetches Neo4j from Maven Central "
                               "(apt-get install -y maven, or https://maven.apache.org)")
    workdir.mkdir(parents=True)
    (workdir / "pom.xml").write_text(pom)
    cmd = [mvn, "-q", "-B", "-f", str(workdir / "pom.xml"), "dependency:copy-dependencies",
           "-DincludeScope=runtime", "-Dmdep.prependGroupId=true", f"-DoutputDirectory={out}"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise Neo4jServerError(f"Maven could not resolve Neo4j {NEO4J_VERSION} from Maven Central:\n{tail}")


def resolve(log=_say) -> Path:
    """The Neo4j distribution folder (lib/: the server's jars, plugins/: APOC core and GDS), fetched once.

    Built in a temporary folder beside its final place and renamed into it, so a concurrent
    resolver either finds the complete folder or builds its own copy and drops it.
    """
    dist = distribution_dir()
    if (dist / "READY").is_file():
        return dist
    dist.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dist.name}.", dir=dist.parent))
    try:
        log(f"[neo4j] resolving Neo4j {NEO4J_VERSION} Community, APOC core {APOC_VERSION} and GDS {GDS_VERSION} "
            f"with Maven into {dist} (first time only)")
        _maven_copy(_pom("neo4j-server", [("org.neo4j", "neo4j", NEO4J_VERSION)]), tmp / "pom-server", tmp / "lib")
        _maven_copy(_pom("neo4j-plugins", list(PLUGINS)), tmp / "pom-plugins", tmp / "plugins")
        on_class_path = {_artifact(p) for p in (tmp / "lib").glob("*.jar")}
        for jar in (tmp / "plugins").glob("*.jar"):      # the server has these (its own version wins)
            if _artifact(jar) in on_class_path:
                jar.unlink()
        (tmp / "READY").write_text(json.dumps({"neo4j": NEO4J_VERSION, "apoc": APOC_VERSION,
                                               "gds": GDS_VERSION}) + "\n")
        try:
            tmp.rename(dist)
        except OSError:                                   # another resolver finished first
            if not (dist / "READY").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dist


def class_path(dist: Path) -> str:
    """plugins/ then lib/, as Neo4j's own launcher does: plugins register extensions (APOC's
    injectable components) through the class path, and their procedures from the plugins folder."""
    return f"{dist / 'plugins' / '*'}{os.pathsep}{dist / 'lib' / '*'}"


def java_command() -> str:
    java = Path(os.environ["JAVA_HOME"]) / "bin" / "java" if os.environ.get("JAVA_HOME") else shutil.which("java")
    if not java or not Path(java).exists():
        raise Neo4jServerError("Java is not installed: Neo4j 5.26 needs Java 17 or 21 "
                               "(apt-get install -y openjdk-17-jre-headless)")
    out = subprocess.run([str(java), "-version"], capture_output=True, text=True).stderr
    try:
        major = int(out.split('"')[1].split(".")[0])
    except (IndexError, ValueError):
        major = 0
    if major not in (17, 21):
        raise Neo4jServerError(f"Neo4j {NEO4J_VERSION} runs on Java 17 or 21, found: {out.splitlines()[:1]}; "
                               "set JAVA_HOME to a Java 17 or 21 installation")
    return str(java)


# --- one server instance ----------------------------------------------------------------------------

@dataclass
class Server:
    """A started instance: its folder, PID, Bolt address and the memory it was started with (so a
    restart, e.g. around neo4j-admin import, can give it the same; None in older state files)."""
    home: str
    pid: int
    port: int
    user: str = "neo4j"
    heap: str | None = None
    pagecache: str | None = None

    @property
    def uri(self) -> str:
        return f"bolt://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return _is_our_process(self.pid, Path(self.home))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _is_our_process(pid: int, home: Path) -> bool:
    """True if `pid` runs and is the Neo4j server of `home` (a recycled PID is someone else's)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True                                       # no /proc: trust the PID
    return ENTRY_POINT in cmdline and f"--home-dir={home}" in cmdline


def write_config(home: Path, dist: Path, port: int, pagecache: str) -> Path:
    """conf/neo4j.conf and conf/apoc.conf of one instance (regenerated at every start)."""
    conf = home / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    for sub in ("data", "logs", "run", "no-import"):
        (home / sub).mkdir(exist_ok=True)
    settings = {
        "server.default_listen_address": "127.0.0.1",
        "server.default_advertised_address": "127.0.0.1",
        "server.bolt.enabled": "true",
        "server.bolt.listen_address": f"127.0.0.1:{port}",
        "server.bolt.advertised_address": f"127.0.0.1:{port}",
        "server.http.enabled": "false",
        "server.https.enabled": "false",
        "server.directories.data": str(home / "data"),
        "server.directories.logs": str(home / "logs"),
        "server.directories.run": str(home / "run"),
        "server.directories.plugins": str(dist / "plugins"),
        # LOAD CSV: no file URLs at all, and the import folder (the only place they could read) empty
        "server.directories.import": str(home / "no-import"),
        "dbms.security.allow_csv_import_from_file_urls": "false",
        # ... and no network URLs either (LOAD CSV, apoc.load.*): every address is blocked
        "internal.dbms.cypher_ip_blocklist": "0.0.0.0/0,::/0",
        "dbms.security.auth_enabled": "true",
        "dbms.security.procedures.allowlist": ",".join(SERVER_PROCEDURES),
        "dbms.security.procedures.unrestricted": ",".join(GDS_PROCEDURES),   # GDS reads the store's internals
        "server.memory.pagecache.size": pagecache,
        "dbms.usage_report.enabled": "false",
        "db.logs.query.enabled": "OFF",
        # A loopback server for one user keeps no transaction log history (no backups or cluster read it):
        # the default keeps two days of them, gigabytes for a test session that wipes the store per test
        "db.tx_log.rotation.retention_policy": "keep_none",
        "db.tx_log.rotation.size": "64M",
        "db.tx_log.preallocate": "false",
        "db.checkpoint.interval.time": "60s",        # logs are pruned at a checkpoint (default: 15 min)
    }
    (conf / "neo4j.conf").write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    # APOC reads its own settings from apoc.conf beside neo4j.conf: no file import or export
    (conf / "apoc.conf").write_text("".join(f"{k}={v}\n" for k, v in APOC_SETTINGS.items()))
    return conf


def _admin_env(home: Path) -> dict:
    return dict(os.environ, NEO4J_HOME=str(home), NEO4J_CONF=str(home / "conf"))


def set_initial_password(java: str, dist: Path, home: Path, password: str) -> None:
    """`neo4j-admin dbms set-initial-password` (only before the first start; later it is a no-op)."""
    if (home / "data" / "dbms" / "auth.ini").exists():
        return
    done = subprocess.run([java, "-cp", class_path(dist), ADMIN_TOOL, "dbms", "set-initial-password", "--", password],
                          env=_admin_env(home), capture_output=True, text=True)
    if done.returncode != 0:
        raise Neo4jServerError(f"neo4j-admin set-initial-password failed: {(done.stdout + done.stderr).strip()}")


def read_state(home: Path) -> Server | None:
    path = Path(home) / STATE_FILE
    if not path.is_file():
        return None
    return Server(**json.loads(path.read_text()))


def _log_tail(home: Path, lines: int = 25) -> str:
    out = []
    for name in ("console.log", "neo4j.log"):
        path = home / "logs" / name
        if path.is_file():
            out += path.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join(out)


def _answers(uri: str, user: str, password: str) -> bool:
    import neo4j

    try:
        with neo4j.GraphDatabase.driver(uri, auth=(user, password), connection_timeout=2) as driver:
            driver.verify_connectivity()
            with driver.session() as session:
                session.run("RETURN 1").consume()
        return True
    except (neo4j.exceptions.ServiceUnavailable, neo4j.exceptions.SessionExpired, OSError):
        return False
    except neo4j.exceptions.DatabaseUnavailable:
        return False


def start(home: str | Path, password: str, *, port: int | None = None, heap: str | None = None,
          pagecache: str | None = None, wait_s: float = 180.0, log=_say) -> Server:
    """Start a server with its data in `home` (created if new) and wait until it answers a query.

    Bolt on 127.0.0.1:`port` (default: a free one), user neo4j with `password` (set at the first
    start; 8 characters at least). Raises Neo4jServerError with the log's tail if it does not come up.
    """
    home = Path(home).resolve()
    if len(password) < 8:
        raise Neo4jServerError("the Neo4j password must have at least 8 characters (set NEO4J_PASSWORD)")
    running = read_state(home)
    if running and running.alive():
        raise Neo4jServerError(f"a Neo4j server already runs from {home} (pid {running.pid}, {running.uri}); "
                               "stop it first")
    heap = heap or os.environ.get("CIRCUIT_ATLAS_NEO4J_HEAP", DEFAULT_HEAP)
    pagecache = pagecache or os.environ.get("CIRCUIT_ATLAS_NEO4J_PAGECACHE", DEFAULT_PAGECACHE)
    dist = resolve(log)
    java = java_command()
    last_error = ""
    for attempt in range(3):                    # a free port can be taken by someone else before Neo4j binds it
        chosen = port or free_port()
        write_config(home, dist, chosen, pagecache)
        set_initial_password(java, dist, home, password)
        console = (home / "logs" / "console.log").open("w")
        cmd = [java, f"-Xmx{heap}", *JVM_OPTIONS, "-cp", class_path(dist), ENTRY_POINT,
               f"--home-dir={home}", f"--config-dir={home / 'conf'}"]
        proc = subprocess.Popen(cmd, stdout=console, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=_admin_env(home))
        console.close()
        server = Server(home=str(home), pid=proc.pid, port=chosen, heap=heap, pagecache=pagecache)
        (home / STATE_FILE).write_text(json.dumps(asdict(server)) + "\n")
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            if _answers(server.uri, server.user, password):
                log(f"[neo4j] Neo4j {NEO4J_VERSION} answers at {server.uri} (pid {server.pid}, data in {home})")
                return server
            time.sleep(0.5)
        else:
            _terminate(proc.pid, home, grace_s=10)
            raise Neo4jServerError(f"Neo4j did not answer at {server.uri} within {wait_s:.0f} s; "
                                   f"log tail:\n{_log_tail(home)}")
        last_error = _log_tail(home)
        (home / STATE_FILE).unlink(missing_ok=True)
        port_taken = "already in use" in last_error.lower() or "bind" in last_error.lower()
        if port is not None or not port_taken:
            break
    raise Neo4jServerError(f"Neo4j exited while starting (see {home / 'logs'}); log tail:\n{last_error}")


def _terminate(pid: int, home: Path, grace_s: float) -> None:
    if not _is_our_process(pid, home):
        return
    os.kill(pid, signal.SIGTERM)              # Neo4j checkpoints and closes its store on SIGTERM
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:                                  # reap it if it is our child, so it does not linger as a zombie
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            pass
        if not _is_our_process(pid, home):
            return
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def stop(home: str | Path, grace_s: float = 60.0) -> bool:
    """Stop the server started from `home` by its recorded PID; False if none was running."""
    home = Path(home).resolve()
    server = read_state(home)
    if server is None or not server.alive():
        (home / STATE_FILE).unlink(missing_ok=True)
        return False
    _terminate(server.pid, home, grace_s)
    (home / STATE_FILE).unlink(missing_ok=True)
    return True


def status(home: str | Path, password: str | None = None) -> str:
    home = Path(home).resolve()
    server = read_state(home)
    if server is None or not server.alive():
        return f"not running (no server started from {home})"
    answers = "" if password is None else ("; answers" if _answers(server.uri, server.user, password)
                                           else "; does not answer (yet)")
    memory = f", heap {server.heap}, page cache {server.pagecache}" if server.heap else ""
    return f"running: pid {server.pid}, {server.uri}{memory}, data in {home}{answers}"


# --- command line -----------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/neo4j.sh", description=f"A Neo4j {NEO4J_VERSION} Community server on 127.0.0.1, no Docker.",
        epilog="example: NEO4J_PASSWORD=changeme123 scripts/neo4j.sh start --port 7687, then "
               "export NEO4J_URI=bolt://127.0.0.1:7687 and circuit-atlas ingest graphs/ --store $NEO4J_URI")
    parser.add_argument("command", choices=["start", "stop", "status", "resolve"])
    parser.add_argument("--dir", default=os.environ.get("CIRCUIT_ATLAS_NEO4J_DIR", ".neo4j"),
                        help="instance folder: config, data, logs, PID (default ./.neo4j)")
    parser.add_argument("--port", type=int, default=None, help="Bolt port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--heap", default=None, help=f"JVM heap (default {DEFAULT_HEAP}; CIRCUIT_ATLAS_NEO4J_HEAP)")
    parser.add_argument("--pagecache", default=None,
                        help=f"page cache (default {DEFAULT_PAGECACHE}; CIRCUIT_ATLAS_NEO4J_PAGECACHE)")
    args = parser.parse_args(argv)
    from circuit_atlas.settings import lookup

    password = lookup("neo4j_password")
    try:
        if args.command == "resolve":
            print(resolve())
        elif args.command == "start":
            if not password:
                generated = secrets.token_urlsafe(12)
                raise Neo4jServerError(f"set NEO4J_PASSWORD first (8+ characters), e.g. "
                                       f"export NEO4J_PASSWORD={generated}")
            server = start(args.dir, password, port=args.port, heap=args.heap, pagecache=args.pagecache)
            print(f"export NEO4J_URI={server.uri} NEO4J_USER=neo4j   # and NEO4J_PASSWORD as set; stop: "
                  f"scripts/neo4j.sh stop --dir {args.dir}")
        elif args.command == "stop":
            print("stopped" if stop(args.dir) else f"not running (no server started from {Path(args.dir).resolve()})")
        else:
            print(status(args.dir, password))
    except Neo4jServerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
