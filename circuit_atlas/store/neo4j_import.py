"""A first load into an empty Neo4j database without Bolt: `neo4j-admin database import full`.

    python -m circuit_atlas.store.neo4j_server import --dir .neo4j graphs/    # or scripts/neo4j.sh import

Neo4j's offline importer writes the store files directly, many times faster than transactions, but
only into a database that does not exist yet, with the server stopped, on the server's own disk.
So it serves one case: the first load of a corpus into a server started by scripts/neo4j.sh (which
owns the instance folder). Everything later goes through Bolt (`circuit-atlas ingest --store bolt://…`).

The CSV files are made from the same rows as both write paths (store.rows.graph_rows), so an
imported graph reads back, and answers queries, exactly as one written through Bolt
(tests/test_neo4j_import.py). Value types follow what Bolt stores: integers as long, every float
as double (FLOAT columns carry the float32 value, as the driver sends it), string lists as string[].
"""
from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from circuit_atlas.graph import Graph
from circuit_atlas.store import aggregates, schema
from circuit_atlas.store.rows import graph_rows

ARRAY_DELIMITER = "\x1f"          # ASCII unit separator: never in a prompt token (checked)
CSV_TYPES = {"STRING": "string", "INT64": "long", "DOUBLE": "double", "FLOAT": "double", "BOOL": "boolean",
             "STRING[]": "string[]"}
ID_GROUP = {"Graph": "id", "Node": "uid", "Feature": "key", "Tag": "id", "Path": "id",   # label -> its key property
            "NeighbourEnd": "id", "Neighbour": "id"}


class Neo4jImportError(RuntimeError):
    """The import could not run or failed; the message says why (the database is left as it was)."""


@dataclass
class ImportFiles:
    """CSV files for neo4j-admin: per label / relationship type, a header file and data parts."""
    folder: Path
    parts: dict[str, list[Path]] = field(default_factory=dict)
    graphs: int = 0
    nodes: int = 0
    edges: int = 0
    _features: list = field(default_factory=list)      # each batch's Feature rows, summed when all are read
    _neighbours: list = field(default_factory=list)    # each batch's Neighbour rows (keyed), summed likewise
    _next_uid: int = 0

    def arguments(self) -> list[str]:
        """--nodes=Label=header,part,... and --relationships=TYPE=header,part,... for every table written."""
        args = []
        for name, parts in self.parts.items():
            kind = "--nodes" if name in ID_GROUP else "--relationships"
            files = [self.folder / f"{name}.header.csv", *parts]
            args.append(f"{kind}={name}=" + ",".join(str(f) for f in files))
        return args


def _label_header(label: schema.Label) -> str:
    """`:ID(Label)` (the importer's own id, not stored) and then every property with its type."""
    props = [f"{name}:{CSV_TYPES[typ]}" for name, typ in label.properties.items()]
    return ",".join([f":ID({label.name})", *props])


def _rel_header(rel: schema.Rel) -> str:
    props = [f"{name}:{CSV_TYPES[typ]}" for name, typ in rel.properties.items()]
    return ",".join([f":START_ID({rel.source})", f":END_ID({rel.target})", *props])


def _csv_ready(table: pa.Table) -> pa.Table:
    """Floats as float64 (the double each float32 is, as Bolt sends it); string lists joined."""
    cols = {}
    for name in table.column_names:
        col = table[name]
        if pa.types.is_floating(col.type):
            col = col.cast(pa.float64())
        elif pa.types.is_list(col.type):
            lists = col.to_pylist()
            if any(ARRAY_DELIMITER in s for values in lists if values for s in values):
                raise Neo4jImportError(f"a value of {name} contains the character U+001F, which the import uses "
                                   "to separate list items; load these graphs through Bolt instead")
            col = pa.array([None if v is None else ARRAY_DELIMITER.join(v) for v in lists], pa.string())
        cols[name] = col
    return pa.table(cols)


def write_csv(graph_batches: Iterable[list[Graph]], folder: str | Path) -> ImportFiles:
    """Write the CSV files for `graph_batches` (an iterable of lists, so a corpus need not fit in
    memory) into `folder`. Graphs are numbered and deduplicated here (by id, the first one kept);
    features and tags shared by several batches are written once.

    The importer's ids (`--id-type=integer`, not stored as properties) are integers in every group:
    a Node's uid, and for graphs, features and tags their number in the order first met here, so
    that the importer maps ids with arrays instead of hashing and sorting strings (its relationship
    phase reads 2 ids per edge)."""
    out = ImportFiles(Path(folder))
    out.folder.mkdir(parents=True, exist_ok=True)
    headers = {label.name: _label_header(label) for label in (schema.GRAPH, schema.NODE, schema.FEATURE, schema.TAG,
                                                              schema.PATH, schema.NEIGHBOUR_END,
                                                              schema.NEIGHBOUR)}
    headers |= {rel.name: _rel_header(rel) for rel in (schema.HAS_NODE, schema.OF_FEATURE, schema.EFFECT,
                                                       schema.TAGGED, *schema.NEIGHBOUR_LINKS)}
    for name, header in headers.items():
        (out.folder / f"{name}.header.csv").write_text(header + "\n")
    seen: set[str] = set()
    feature_keys: list[str] = []                 # feature number -> key, in the order first met
    feature_number: dict[str, int] = {}
    tag_number: dict[str, int] = {}
    end_number: dict[str, int] = {}              # neighbour identity -> NeighbourEnd.id, in the order first met
    n_paths = 0
    for number, batch in enumerate(graph_batches):
        graphs = [g for g in batch if g.id not in seen and not seen.add(g.id)]
        if not graphs:
            continue
        rows = graph_rows(graphs, out._next_uid)
        out._next_uid += rows.nodes.num_rows
        out._features.append(rows.features)
        ends = rows.neighbour_ends.filter(pc.invert(pc.is_in(rows.neighbour_ends["key"],
                                                             value_set=pa.array(list(end_number), pa.string()))))
        ends = ends.add_column(1, "id", pa.array(range(len(end_number), len(end_number) + ends.num_rows), pa.int64()))
        end_number.update(zip(ends["key"].to_pylist(), ends["id"].to_pylist()))
        out._neighbours.append(aggregates.keyed_neighbours(
            rows.neighbours, [end_number[k] for k in rows.neighbour_ends["key"].to_pylist()]))
        for key in rows.features["key"].to_pylist():
            if key not in feature_number:
                feature_number[key] = len(feature_keys)
                feature_keys.append(key)
        tags = [r for r in {r["id"]: r for r in rows.tags}.values() if r["id"] not in tag_number]
        tag_ids = [tag_number.setdefault(r["id"], len(tag_number)) for r in tags]
        batch_ids = pa.array([g.id for g in graphs], pa.string())
        graph_ids = pa.array(range(out.graphs, out.graphs + len(graphs)), pa.int64())

        def graph_id(gids) -> pa.Array:            # graph id strings of this batch -> their numbers
            return pc.add(pc.index_in(gids, value_set=batch_ids).cast(pa.int64()), out.graphs)

        tables = {
            "Graph": rows.graphs.add_column(0, "_id", graph_ids),
            "Node": rows.nodes.add_column(0, "_id", rows.nodes["uid"]),
            "Path": rows.paths.add_column(0, "_id", pa.array(range(n_paths, n_paths + rows.paths.num_rows), pa.int64())),
            "Tag": pa.table({"_id": pa.array(tag_ids, pa.int64()), **{k: [r[k] for r in tags] for k in schema.TAG.properties}},
                            schema=pa.schema([("_id", pa.int64())] + [(k, pa.string()) for k in schema.TAG.properties])),
            "HAS_NODE": pa.table({"src": graph_id(rows.has_node["src"]), "dst": rows.has_node["dst"]}),
            "OF_FEATURE": rows.of_feature.set_column(1, "dst", pc.index_in(
                rows.of_feature["dst"], value_set=pa.array(feature_keys, pa.string())).cast(pa.int64())),
            "EFFECT": rows.effects,
            "NeighbourEnd": ends.add_column(0, "_id", ends["id"]),
            "TAGGED": pa.table({"src": graph_id(pa.array([r["gid"] for r in rows.tags], pa.string())),
                                "dst": pa.array([tag_number[r["id"]] for r in rows.tags], pa.int64())}),
        }
        for name, table in tables.items():
            if table.num_rows:
                path = out.folder / f"{name}.{number:05d}.csv"
                pacsv.write_csv(_csv_ready(table), path, pacsv.WriteOptions(include_header=False))
                out.parts.setdefault(name, []).append(path)
        out.graphs += len(graphs)
        out.nodes += rows.nodes.num_rows
        out.edges += rows.effects.num_rows
        n_paths += rows.paths.num_rows
    features = summed_features(out._features) if out._features else None
    out._features.clear()
    if features is not None and features.num_rows:
        path = out.folder / "Feature.csv"
        ids = pa.array([feature_number[k] for k in features["key"].to_pylist()], pa.int64())
        pacsv.write_csv(_csv_ready(features.add_column(0, "_id", ids)), path, pacsv.WriteOptions(include_header=False))
        out.parts["Feature"] = [path]
    neighbours = summed_neighbours(out._neighbours) if out._neighbours else None
    out._neighbours.clear()
    if neighbours is not None and neighbours.num_rows:      # the importer's ids: Neighbour.id itself
        features = pa.array([feature_number[k] for k in neighbours["fkey"].to_pylist()], pa.int64())
        links = pa.table({"src": features, "dst": neighbours["id"]})
        tables = [("Neighbour", neighbours.select(list(schema.NEIGHBOUR.properties)).add_column(0, "_id", neighbours["id"]))]
        tables += [(rel.name, links.filter(pc.equal(neighbours["dir"], direction)))
                   for direction, rel in enumerate(schema.NEIGHBOUR_LINKS)]
        for name, table in (t for t in tables if t[1].num_rows):
            path = out.folder / f"{name}.csv"
            pacsv.write_csv(_csv_ready(table), path, pacsv.WriteOptions(include_header=False))
            out.parts[name] = [path]
    return out


def summed_neighbours(batches: list[pa.Table]) -> pa.Table:
    """One Neighbour row per id from every batch's keyed rows (aggregates.keyed_neighbours, with the
    feature's key), as the Bolt path leaves them (every aggregate a sum)."""
    table = pa.concat_tables(batches)
    columns = [*schema.NEIGHBOUR.properties, "fkey"]
    fixed = [c for c in columns if c != "id" and c not in aggregates.NEIGHBOUR_AGGREGATES]
    how = [(c, "first") for c in fixed] + [(a, "sum") for a in aggregates.NEIGHBOUR_AGGREGATES]
    summed = table.group_by("id", use_threads=False).aggregate(how)
    column = {"id": "id"} | {c: f"{c}_{op}" for c, op in how}
    return pa.table({c: summed[column[c]].cast(table[c].type) for c in columns})


def summed_features(batches: list[pa.Table]) -> pa.Table:
    """One Feature row per key from the Feature rows of every batch (rows.graph_rows), as the Bolt path
    leaves them (statements.MERGE_FEATURES): the first batch's columns, the first non-empty label,
    each aggregate the sum of the batches' (best_influence their minimum)."""
    table = pa.concat_tables(batches)
    labelled = pc.fill_null(pc.not_equal(table["label"], ""), False)    # labelled rows first, in batch order
    table = pa.concat_tables([table.filter(labelled), table.filter(pc.invert(labelled))])
    fixed = [c for c in schema.FEATURE.properties if c != "key" and c not in aggregates.FEATURE_AGGREGATES]
    how = [(c, "first") for c in fixed] + [(a, "min" if a in aggregates.MINIMA else "sum")
                                           for a in aggregates.FEATURE_AGGREGATES]
    summed = table.group_by("key", use_threads=False).aggregate(how)
    column = {"key": "key"} | {c: f"{c}_{op}" for c, op in how}
    return pa.table({c: summed[column[c]].cast(table[c].type) for c in schema.FEATURE.properties})


def check_import_target(home: str | Path, overwrite: bool = False, database: str = "neo4j") -> None:
    """Raise Neo4jImportError unless the instance folder `home` can take an import: its server stopped,
    and `database` not there yet (or `overwrite`)."""
    from circuit_atlas.store import neo4j_server as server

    home = Path(home).resolve()
    running = server.read_state(home)
    if running and running.alive():
        raise Neo4jImportError(f"the Neo4j server of {home} runs (pid {running.pid}); stop it first "
                               f"(scripts/neo4j.sh stop --dir {home}): the importer writes the store files directly")
    if (home / "data" / "databases" / database).exists() and not overwrite:
        raise Neo4jImportError(f"database {database!r} already exists in {home}: the importer only makes new "
                               "databases; ingest through Bolt (circuit-atlas ingest --store bolt://…), or pass "
                               "--overwrite to replace it (everything in it is lost)")


def run_import(home: str | Path, files: ImportFiles, *, overwrite: bool = False, threads: int | None = None,
               off_heap: str = "2G", heap: str = "2g", database: str = "neo4j") -> tuple[float, float]:
    """Run `neo4j-admin database import full` into `database` of the instance folder `home` (its
    server stopped, or a new folder that `scripts/neo4j.sh start --dir home` starts afterwards);
    returns (seconds the importer process took, seconds it reports for the import itself, without
    the JVM's start). Refuses a database that exists unless `overwrite`."""
    from circuit_atlas.store import neo4j_server as server

    home = Path(home).resolve()
    check_import_target(home, overwrite, database)
    if not files.parts:
        raise Neo4jImportError("nothing to import: no graphs")
    dist = server.resolve(lambda msg: None)
    if not (home / "conf" / "neo4j.conf").is_file():     # a new instance folder: scripts/neo4j.sh start takes it
        server.write_config(home, dist, server.free_port(), server.DEFAULT_PAGECACHE)
    cmd = [server.java_command(), f"-Xmx{heap}", "-cp", server.class_path(dist), server.ADMIN_TOOL,
           "database", "import", "full", database, *files.arguments(),
           "--id-type=integer", "--multiline-fields=true", "--array-delimiter=U+001F", f"--max-off-heap-memory={off_heap}",
           f"--report-file={home / 'logs' / 'import.report'}", "--overwrite-destination=true"]
    if threads:
        cmd.append(f"--threads={threads}")
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=server._admin_env(home), cwd=home)
    seconds = time.perf_counter() - start
    (home / "logs").mkdir(parents=True, exist_ok=True)
    (home / "logs" / "import.log").write_text(done.stdout + done.stderr)      # its phases and figures
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise Neo4jImportError(f"neo4j-admin database import failed (exit {done.returncode}):\n{tail}")
    took = re.search(r"IMPORT DONE in (?:(\d+)m )?(?:(\d+)s )?(\d+)ms", done.stdout)
    own = (int(took[1] or 0) * 60 + int(took[2] or 0) + int(took[3]) / 1000) if took else seconds
    return seconds, own
