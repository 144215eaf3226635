"""Every Cypher statement the store sends, by name. The same text runs on both backends.

Only the portable subset of Cypher is used (see docs/store.md): explicit property lists instead of
`SET n += map`, no CALL {} subqueries, no functions missing from the embedded engine. Other packages
keep their statements the same way (`StatementSet`) and expose them; tests/statements.py gathers every
package's for the linter tests. The store knows none of them.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Statement:
    name: str
    cypher: str
    doc: str
    backends: tuple[str, ...] = ("embedded", "neo4j")   # where this text may be sent


class StatementSet(dict[str, Statement]):
    """One package's named statements: `statement = StatementSet().add` keeps its constants plain text."""

    def add(self, name: str, doc: str, cypher: str, backends: tuple[str, ...] = ("embedded", "neo4j")) -> str:
        """Register a named statement and return its text."""
        self[name] = Statement(name, cypher.strip(), doc, backends)
        return cypher.strip()


STORE_STATEMENTS = StatementSet()
statement = STORE_STATEMENTS.add


def all_statements() -> list[Statement]:
    """Every statement the store itself can send: the named ones below and the schema's DDL."""
    from circuit_atlas.store import schema

    out = list(STORE_STATEMENTS.values())
    out += [Statement(f"schema.neo4j.{i}", s, "schema (Neo4j)", ("neo4j",)) for i, s in enumerate(schema.neo4j_ddl())]
    out += [Statement(f"schema.embedded.{i}", s, "schema (embedded)", ("embedded",))
            for i, s in enumerate(schema.embedded_ddl())]
    return out


# --- graphs -----------------------------------------------------------------------------------

EXISTING_GRAPHS = statement("existing_graphs", "Which of the ids $ids are stored already.", """
UNWIND $ids AS id
MATCH (g:Graph {id: id})
RETURN g.id AS id
""")

INSERT_GRAPHS = statement("insert_graphs", "Create Graph nodes (callers check they are new).", """
UNWIND $rows AS r
CREATE (g:Graph {id: r.id, slug: r.slug, prompt: r.prompt, model: r.model, transcoder_set: r.transcoder_set,
                 n_layers: r.n_layers, n_nodes: r.n_nodes, n_edges: r.n_edges,
                 node_threshold: r.node_threshold, edge_threshold: r.edge_threshold,
                 created: r.created, prompt_tokens: r.prompt_tokens, meta: r.meta, features: r.features, n_paths: r.n_paths})
""")

MAX_UID = statement("max_uid", "The highest Node.uid in the store (null when it is empty): one pass over the column: on the embedded engine at 10,000 graphs (6M nodes) 0.3 s where LAST_UID's ORDER BY ... LIMIT 1 took 3 s (docs/store.md).", """
MATCH (n:Node)
RETURN max(n.uid) AS uid
""", backends=("embedded",))

LAST_UID = statement("last_uid", "The highest Node.uid in the store (no row when it is empty); new nodes are numbered after it.", """
MATCH (n:Node)
WHERE n.uid >= 0
RETURN n.uid AS uid
ORDER BY uid DESC
LIMIT 1
""")

INSERT_NODES = statement("insert_nodes", "Create node occurrences and link them to their graph (statement path).", """
UNWIND $rows AS r
MATCH (g:Graph {id: r.gid})
CREATE (g)-[:HAS_NODE]->(n:Node {uid: r.uid, gid: r.gid, node_id: r.node_id, kind: r.kind, layer: r.layer,
                                 pos: r.pos, feature: r.feature, fkey: r.fkey, token_id: r.token_id,
                                 token: r.token, activation: r.activation, influence: r.influence,
                                 logit_prob: r.logit_prob, label: r.label})
""")

# The Feature aggregates (aggregates.FEATURE_AGGREGATES): a write adds a batch's values to the stored
# ones, a deletion subtracts them; best_influence is a minimum (recomputed after a deletion).
from circuit_atlas.store.aggregates import FEATURE_AGGREGATES as _AGGREGATES  # noqa: E402


def _add(r: str) -> str:
    """SET items adding the values `r<aggregate>` (r = "r." for UNWIND rows, "r_" for LOAD FROM columns)."""
    return ", ".join(f"f.{a} = CASE WHEN f.{a} IS NULL OR {r}{a} < f.{a} THEN {r}{a} ELSE f.{a} END"
                     if a == "best_influence" else f"f.{a} = f.{a} + {r}{a}" for a in _AGGREGATES)


def _fill_label(r: str) -> str:
    """A stored feature without a label takes the batch's: a graph stored after an unlabelled one labels it."""
    return f"f.label = CASE WHEN f.label IS NULL OR f.label = '' THEN {r}label ELSE f.label END"


MERGE_FEATURES = statement("merge_features", "Create global features not seen before with the batch's aggregates, add them to stored ones and label the unlabelled (both statement paths and the Neo4j bulk path; Neo4j sends them sorted by key).", f"""
UNWIND $rows AS r
MERGE (f:Feature {{key: r.key}})
ON CREATE SET f.transcoder_set = r.transcoder_set, f.layer = r.layer, f.feature = r.feature, f.label = r.label,
              {", ".join(f"f.{a} = r.{a}" for a in _AGGREGATES)}
ON MATCH SET {_add("r.")}, {_fill_label("r.")}
""")

ADD_FEATURE_AGGREGATES = statement("add_feature_aggregates", "Add a batch's aggregates (an Arrow table with columns r_key, r_label, r_<aggregate>, one row per feature of the batch) to those of its features stored already, and its label to those stored unlabelled; returns their keys: the others are new (embedded bulk path: one index lookup per feature).", f"""
LOAD FROM $rows
MATCH (f:Feature {{key: r_key}})
SET {_add("r_")}, {_fill_label("r_")}
RETURN f.key AS key
""", backends=("embedded",))

SUBTRACT_FEATURE_AGGREGATES = statement("subtract_feature_aggregates", "Subtract deleted graphs' aggregates from their features.", f"""
UNWIND $rows AS r
MATCH (f:Feature {{key: r.key}})
SET {", ".join(f"f.{a} = f.{a} - r.{a}" for a in _AGGREGATES if a != "best_influence")}
""")

BEST_INFLUENCE_FROM = statement("best_influence_from", "The features of rows {key, best_influence} whose stored best_influence is that value (so it may come from the graphs being deleted).", """
UNWIND $rows AS r
MATCH (f:Feature {key: r.key})
WHERE f.best_influence = r.best_influence
RETURN f.key AS key
""")

RECOMPUTE_BEST_INFLUENCE = statement("recompute_best_influence", "best_influence of the features $keys from their remaining occurrences (after a deletion).", """
UNWIND $keys AS k
MATCH (f:Feature {key: k})
OPTIONAL MATCH (f)<-[:OF_FEATURE]-(n:Node)
WITH f, min(n.influence) AS best
SET f.best_influence = best
""")

DELETE_UNUSED_FEATURES = statement("delete_unused_features", "Delete the features $keys that no stored graph uses any more, unless a supernode or an audit names them (those are kept, their aggregates zero).", """
UNWIND $keys AS k
MATCH (f:Feature {key: k})
WHERE f.n_occurrences = 0 AND NOT EXISTS { MATCH (f)<-[:HAS_MEMBER]-(:Supernode) } AND NOT EXISTS { MATCH (f)<-[:FLAGGED]-(:Audit) }
DETACH DELETE f
""")

ZERO_UNUSED_FEATURES = statement("zero_unused_features", "Exact zeros for the aggregates of kept features that no graph uses (no float residue from subtraction).", """
UNWIND $keys AS k
MATCH (f:Feature {key: k})
WHERE f.n_occurrences = 0
SET f.n_graphs = 0, f.act_sum = 0.0, f.act_n = 0, f.position_sum = 0.0, f.on_bos = 0, f.importance = 0.0,
    f.infl_graphs = 0, f.best_influence = NULL, f.abs_weight = 0.0, f.n_edges = 0, f.edge_graphs = 0
""")

# The Neighbour aggregates (schema.NEIGHBOUR, aggregates.NEIGHBOUR_AGGREGATES): every one a sum.
from circuit_atlas.store.aggregates import NEIGHBOUR_AGGREGATES as _NEIGHBOUR  # noqa: E402
from circuit_atlas.store import schema as _schema  # noqa: E402

NEIGHBOUR_END_IDS = statement("neighbour_end_ids", "The numbers of the stored neighbour identities among $keys (NeighbourEnd.key strings).", """
UNWIND $keys AS k
MATCH (e:NeighbourEnd {key: k})
RETURN e.key AS key, e.id AS id
""")

LAST_NEIGHBOUR_END_ID = statement("last_neighbour_end_id", "The highest NeighbourEnd.id (no row when there is none); new identities are numbered after it.", """
MATCH (e:NeighbourEnd)
RETURN e.id AS id
ORDER BY id DESC
LIMIT 1
""")

MERGE_NEIGHBOUR_ENDS = statement("merge_neighbour_ends", "Store the identities $rows {key, id, kind, layer, fkey, token} not stored yet, numbered r.id; returns every one's number (another writer's where it stored the identity first).", """
UNWIND $rows AS r
MERGE (e:NeighbourEnd {key: r.key})
ON CREATE SET e.id = r.id, e.kind = r.kind, e.layer = r.layer, e.fkey = r.fkey, e.token = r.token
RETURN e.key AS key, e.id AS id
""", backends=("neo4j",))

CREATE_NEIGHBOUR_ENDS = statement("create_neighbour_ends", "Store the new identities $rows {key, id, kind, layer, fkey, token} (embedded statement path: one writer, and its MERGE needs the primary key, id); returns their numbers as MERGE_NEIGHBOUR_ENDS does.", """
UNWIND $rows AS r
CREATE (e:NeighbourEnd {key: r.key, id: r.id, kind: r.kind, layer: r.layer, fkey: r.fkey, token: r.token})
RETURN e.key AS key, e.id AS id
""", backends=("embedded",))

NEIGHBOUR_LAYOUT = statement("neighbour_layout", "Whether the store holds features and edges, neighbour identities, one Neighbour id (an older layout's is a string), and links of the older one-type layout (HAS_NEIGHBOUR): Neo4jBackend._check_layout.", """
RETURN COUNT { MATCH (f:Feature) } > 0 AND COUNT { MATCH ()-[:EFFECT]->() } > 0 AS graphs,
       COUNT { MATCH (e:NeighbourEnd) } > 0 AS ends,
       head(COLLECT { MATCH (a:Neighbour) RETURN a.id LIMIT 1 }) AS neighbour_id,
       COUNT { MATCH ()-[:HAS_NEIGHBOUR]->() } > 0 AS one_link_type
""", backends=("neo4j",))

NEIGHBOUR_END_KEY_UNIQUE = statement("neighbour_end_key_unique", "NeighbourEnd.key unique (and indexed) on Neo4j, besides its id (the schema's key): MERGE_NEIGHBOUR_ENDS finds an identity by it, and two writers cannot store one identity twice.", """
CREATE CONSTRAINT neighbourend_key IF NOT EXISTS FOR (e:NeighbourEnd) REQUIRE e.key IS UNIQUE
""", backends=("neo4j",))

ALLOCATE_NEIGHBOUR_END_IDS = statement("allocate_neighbour_end_ids", "Reserve $n consecutive NeighbourEnd.id values for one writer, as ALLOCATE_UIDS does Node.uid; returns the first.", """
MERGE (c:UidCounter {name: 'NeighbourEnd.id'})
ON CREATE SET c.next = 0
SET c.next = CASE WHEN c.next > $floor THEN c.next ELSE $floor END + $n
RETURN c.next - $n AS first
""", backends=("neo4j",))

ADD_NEIGHBOUR_AGGREGATES = statement("add_neighbour_aggregates", "Add a batch's Neighbour aggregates (an Arrow table with columns r_id, r_<aggregate>) to the stored rows among them, returning their ids: the others are new (embedded bulk path: one pass finds and updates).", f"""
LOAD FROM $rows
MATCH (a:Neighbour {{id: r_id}})
SET {", ".join(f"a.{x} = a.{x} + r_{x}" for x in _NEIGHBOUR)}
RETURN a.id AS id
""", backends=("embedded",))

MERGE_NEIGHBOURS = statement("merge_neighbours", "Create the Neighbour rows not stored yet with the batch's aggregates, add them to stored ones (statement paths); LINK_NEW_NEIGHBOURS links the new ones.", f"""
UNWIND $rows AS r
MERGE (a:Neighbour {{id: r.id}})
ON CREATE SET a.dir = r.dir, a.end_id = r.end_id, {", ".join(f"a.{x} = r.{x}" for x in _NEIGHBOUR)}
ON MATCH SET {", ".join(f"a.{x} = a.{x} + r.{x}" for x in _NEIGHBOUR)}
""")

# Link the Neighbour rows MERGE_NEIGHBOURS has just created to their feature, one statement per direction
# (schema.NEIGHBOUR_LINKS): those whose n_edges is the batch's alone (a stored row had at least one edge already).
LINK_NEW_NEIGHBOURS = tuple(statement(f"link_new_{rel.name.lower()}", f"Link new Neighbour rows $rows {{id, fkey, n_edges}} of direction {d} to their feature ({rel.name}).", f"""
UNWIND $rows AS r
MATCH (a:Neighbour {{id: r.id}})
WHERE a.n_edges = r.n_edges
MATCH (f:Feature {{key: r.fkey}})
CREATE (f)-[:{rel.name}]->(a)
""") for d, rel in enumerate(_schema.NEIGHBOUR_LINKS))

SUBTRACT_NEIGHBOURS = statement("subtract_neighbours", "Subtract deleted graphs' rows {id, <aggregate>} from their Neighbour rows.", f"""
UNWIND $rows AS r
MATCH (a:Neighbour {{id: r.id}})
SET {", ".join(f"a.{x} = a.{x} - r.{x}" for x in _NEIGHBOUR)}
""")

DELETE_EMPTY_NEIGHBOURS = statement("delete_empty_neighbours", "Delete the Neighbour rows $ids that no stored edge feeds any more.", """
UNWIND $ids AS k
MATCH (a:Neighbour {id: k})
WHERE a.n_edges = 0
DETACH DELETE a
""")

INSERT_PATHS = statement("insert_paths", "Create a graph's strong paths (statement path).", """
UNWIND $rows AS r
CREATE (p:Path {id: r.id, gid: r.gid, hops: r.hops, start_token: r.start_token, f1: r.f1, f2: r.f2, f3: r.f3,
                end_token: r.end_token, signs: r.signs, strength: r.strength, bottleneck: r.bottleneck})
""")

LINK_FEATURES = statement("link_features", "Link occurrences to their global feature (statement path).", """
UNWIND $rows AS r
MATCH (n:Node {uid: r.src})
MATCH (f:Feature {key: r.dst})
CREATE (n)-[:OF_FEATURE {gid: n.gid, activation: n.activation, influence: n.influence}]->(f)
""")

INSERT_EFFECTS = statement("insert_effects", "Create EFFECT edges between occurrences, by uid (statement path).", """
UNWIND $rows AS r
MATCH (a:Node {uid: r.src})
MATCH (b:Node {uid: r.dst})
CREATE (a)-[:EFFECT {weight: r.weight}]->(b)
""")

# --- Neo4j's write path: one graph per transaction, columns as parameters -------------------------
# Each graph's properties travel as parallel lists (one list per column: far less to encode than a map
# per row), and edges name their endpoints by position in the graph's node list, so no index lookup
# is spent per edge. Neo4j only: list indexing and `collect` order are not portable (the embedded
# store COPYs Arrow tables instead).

UID_COUNTER = statement("uid_counter", "The one counter node per store (created with the schema).", """
CREATE CONSTRAINT uidcounter_name IF NOT EXISTS FOR (c:UidCounter) REQUIRE c.name IS UNIQUE
""", backends=("neo4j",))

ALLOCATE_UIDS = statement("allocate_uids", "Reserve $n consecutive Node.uid values for one writer; returns the first. "
                          "The counter node is locked by the SET, so concurrent writers get disjoint ranges; "
                          "$floor (highest uid stored + 1) keeps it above nodes written without it.", """
MERGE (c:UidCounter {name: 'Node.uid'})
ON CREATE SET c.next = 0
SET c.next = CASE WHEN c.next > $floor THEN c.next ELSE $floor END + $n
RETURN c.next - $n AS first
""", backends=("neo4j",))

CREATE_GRAPH_NODES = statement("create_graph_nodes", "A graph with its node occurrences (columns $n.<name>) and their "
                               "links to features (MERGEd before, in the same transaction).", """
CREATE (g:Graph {id: $g.id, slug: $g.slug, prompt: $g.prompt, model: $g.model, transcoder_set: $g.transcoder_set,
                 n_layers: $g.n_layers, n_nodes: $g.n_nodes, n_edges: $g.n_edges,
                 node_threshold: $g.node_threshold, edge_threshold: $g.edge_threshold,
                 created: $g.created, prompt_tokens: $g.prompt_tokens, meta: $g.meta, features: $g.features,
                 n_paths: $g.n_paths})
WITH g
UNWIND range(0, size($n.uid) - 1) AS i
CREATE (g)-[:HAS_NODE]->(n:Node {uid: $n.uid[i], gid: $g.id, node_id: $n.node_id[i], kind: $n.kind[i],
                                 layer: $n.layer[i], pos: $n.pos[i], feature: $n.feature[i], fkey: $n.fkey[i],
                                 token_id: $n.token_id[i], token: $n.token[i], activation: $n.activation[i],
                                 influence: $n.influence[i], logit_prob: $n.logit_prob[i], label: $n.label[i]})
WITH n
WHERE n.fkey IS NOT NULL
MATCH (f:Feature {key: n.fkey})
CREATE (n)-[:OF_FEATURE {gid: n.gid, activation: n.activation, influence: n.influence}]->(f)
""", backends=("neo4j",))

CREATE_EFFECTS = statement("create_effects", "A batch of a graph's edges: $src[j] -> $dst[j] with $weight[j], "
                           "endpoints given by position in the graph's nodes (ordered by uid).", """
MATCH (:Graph {id: $gid})-[:HAS_NODE]->(n:Node)
WITH n ORDER BY n.uid
WITH collect(n) AS nodes
UNWIND range(0, size($src) - 1) AS j
WITH nodes[$src[j]] AS a, nodes[$dst[j]] AS b, $weight[j] AS weight
CREATE (a)-[:EFFECT {weight: weight}]->(b)
""", backends=("neo4j",))

MERGE_EFFECT_NAIVE = statement("merge_effect_naive", "One edge per statement: the baseline bench/ingest.py measures against.", """
MATCH (a:Node {uid: $src})
MATCH (b:Node {uid: $dst})
MERGE (a)-[e:EFFECT]->(b)
ON CREATE SET e.weight = $weight
""")

MERGE_TAGS = statement("merge_tags", "Create the tags $rows (unique ids) not seen before.", """
UNWIND $rows AS r
MERGE (t:Tag {id: r.id})
ON CREATE SET t.key = r.key, t.value = r.value
""")

LINK_TAGS = statement("link_tags", "Tag graphs; tags only accumulate (re-ingesting with new tags adds them).", """
UNWIND $rows AS r
MATCH (g:Graph {id: r.gid})
MATCH (t:Tag {id: r.id})
MERGE (g)-[:TAGGED]->(t)
""")
# Two statements, not one: on the embedded engine, MERGE of a node and a relationship to it in one
# UNWIND linked rows to the wrong Tag (a graph got "lang=en" twice instead of "set=s").

# --- reading a graph back ---------------------------------------------------------------------

GET_GRAPH = statement("get_graph", "A graph's own properties.", """
MATCH (g:Graph {id: $id})
RETURN g.slug AS slug, g.prompt AS prompt, g.model AS model, g.transcoder_set AS transcoder_set,
       g.n_layers AS n_layers, g.node_threshold AS node_threshold, g.edge_threshold AS edge_threshold,
       g.prompt_tokens AS prompt_tokens, g.meta AS meta
""")

GET_NODES = statement("get_nodes", "A graph's node occurrences, in the order they were ingested (uids are given in that order; storage order differs between write paths).", """
MATCH (:Graph {id: $id})-[:HAS_NODE]->(n:Node)
RETURN n.node_id AS node_id, n.kind AS kind, n.layer AS layer, n.pos AS pos, n.feature AS feature,
       n.token_id AS token_id, n.token AS token, n.activation AS activation, n.influence AS influence,
       n.logit_prob AS logit_prob, n.label AS label
ORDER BY n.uid
""")

GET_EDGES = statement("get_edges", "A graph's edges as (source node_id, target node_id, weight).", """
MATCH (:Graph {id: $id})-[:HAS_NODE]->(a:Node)-[e:EFFECT]->(b:Node)
RETURN a.node_id AS source, b.node_id AS target, e.weight AS weight
""")

GET_TAGS = statement("get_tags", "A graph's tags.", """
MATCH (:Graph {id: $id})-[:TAGGED]->(t:Tag)
RETURN t.key AS key, t.value AS value
""")


# --- deleting and re-tagging ------------------------------------------------------------------

GRAPH_TAG_IDS = statement("graph_tag_ids", "The tags the graphs $ids carry.", """
MATCH (g:Graph)-[:TAGGED]->(t:Tag)
WHERE g.id IN $ids
RETURN DISTINCT t.id AS id
""")

DELETE_PATHS = statement("delete_paths", "Delete the strong paths of the graphs $ids.", """
MATCH (p:Path)
WHERE p.gid IN $ids
DELETE p
""")

DELETE_NODES = statement("delete_nodes", "Delete the node occurrences of the graphs $ids with their edges.", """
MATCH (g:Graph)-[:HAS_NODE]->(n:Node)
WHERE g.id IN $ids
DETACH DELETE n
""")

DELETE_GRAPH_SUPERNODES = statement("delete_graph_supernodes", "Delete the manual (Neuronpedia) supernodes drawn on the graphs $ids.", """
MATCH (s:Supernode)
WHERE s.gid IN $ids
DETACH DELETE s
""")

DELETE_GRAPHS = statement("delete_graphs", "Delete the Graph nodes $ids (their tags, audits' links and nodes go with them).", """
MATCH (g:Graph)
WHERE g.id IN $ids
DETACH DELETE g
""")

DELETE_UNUSED_TAGS = statement("delete_unused_tags", "Delete the tags $ids that no graph carries any more.", """
MATCH (t:Tag)
WHERE t.id IN $ids AND NOT EXISTS { MATCH (t)<-[:TAGGED]-(:Graph) }
DELETE t
""")

UNTAG = statement("untag", "Remove tags from graphs: rows {gid, id} (id \"key=value\"), or {gid, key} with id null (every value of key); one row per link removed.", """
UNWIND $rows AS r
MATCH (g:Graph {id: r.gid})-[x:TAGGED]->(t:Tag)
WHERE t.id = r.id OR (r.id IS NULL AND t.key = r.key)
DELETE x
RETURN t.id AS id
""")

UNWALKED_GRAPHS = statement("unwalked_graphs", "How many graphs have too many strong paths to store them (common-paths walks the edges then).", """
MATCH (g:Graph)
WHERE g.n_paths < 0
RETURN count(*) AS n
""")
# --- integrity check (circuit_atlas.store.check) ----------------------------------------------

CHECK_NODE_COUNTS = statement("check.node_counts", "Each graph's recorded n_nodes / n_edges and its node count.", """
MATCH (g:Graph)
OPTIONAL MATCH (g)-[:HAS_NODE]->(n:Node)
RETURN g.id AS gid, g.n_nodes AS n_nodes, g.n_edges AS n_edges, count(n) AS nodes
ORDER BY gid
""")

CHECK_EDGE_COUNTS = statement("check.edge_counts", "Each graph's number of EFFECT edges (graphs without any: no row).", """
MATCH (g:Graph)-[:HAS_NODE]->(:Node)-[e:EFFECT]->(:Node)
RETURN g.id AS gid, count(e) AS edges
""")

CHECK_DANGLING_NODES = statement("check.dangling_nodes", "Nodes that do not belong to exactly one graph, by gid.", """
MATCH (n:Node)
OPTIONAL MATCH (g:Graph)-[:HAS_NODE]->(n)
WITH n, count(g) AS owners
WHERE owners <> 1
RETURN n.gid AS gid, count(n) AS n
""")

CHECK_WRONG_GID = statement("check.wrong_gid", "Nodes whose gid is not the id of the graph that holds them.", """
MATCH (g:Graph)-[:HAS_NODE]->(n:Node)
WHERE n.gid IS NULL OR n.gid <> g.id
RETURN g.id AS gid, count(n) AS n
""")

CHECK_CROSS_EDGES = statement("check.cross_edges", "EFFECT edges joining nodes held by two different graphs.", """
MATCH (g:Graph)-[:HAS_NODE]->(:Node)-[e:EFFECT]->(:Node)<-[:HAS_NODE]-(h:Graph)
WHERE g.id <> h.id
RETURN g.id AS gid, count(e) AS n
""")

CHECK_BAD_WEIGHTS = statement("check.bad_weights", "EFFECT edges whose weight is NaN, infinite or missing (NaN <> NaN).", """
MATCH (a:Node)-[e:EFFECT]->(:Node)
WHERE e.weight IS NULL OR e.weight <> e.weight OR abs(e.weight) > 3.4028235e38
RETURN a.gid AS gid, count(e) AS n
""")

CHECK_BAD_VALUES = statement("check.bad_values", "Nodes with a NaN or infinite activation, influence or logit probability.", """
MATCH (n:Node)
WHERE n.activation <> n.activation OR abs(n.activation) > 3.4028235e38
   OR n.influence <> n.influence OR abs(n.influence) > 3.4028235e38
   OR n.logit_prob <> n.logit_prob OR n.logit_prob < 0 OR n.logit_prob > 1
RETURN n.gid AS gid, count(n) AS n
""")

CHECK_FEATURE_LINKS = statement("check.feature_links", "Feature occurrences not linked to exactly one Feature with their key.", """
MATCH (n:Node)
WHERE n.fkey IS NOT NULL
OPTIONAL MATCH (n)-[:OF_FEATURE]->(f:Feature {key: n.fkey})
WITH n, count(f) AS links
WHERE links <> 1
RETURN n.gid AS gid, count(n) AS n
""")

# --- community detection in the database: Graph Data Science's Leiden (Neo4j with GDS only) -------
# A weighted undirected graph that lives in the caller (nodes numbered 0..n-1, edges as parallel lists)
# is projected into GDS's in-memory catalog, Leiden streams its communities back, the projection is
# dropped. Nothing is written to the database: all three run in READ transactions. The statement guard
# refuses every gds.* call to users (a projection outlives its query, outside our memory caps).

GDS_PRESENT = statement("gds.present", "Whether the server has GDS's Leiden (1) or not (0).", """
SHOW PROCEDURES YIELD name
WHERE name = 'gds.leiden.stream'
RETURN count(*) AS n
""", backends=("neo4j",))

GDS_PROJECT_EDGES = statement("gds.project_edges", "Project the undirected graph $src[i] -- $dst[i] (integer node ids) with weight $weight[i] as the catalog graph $name.", """
UNWIND range(0, size($src) - 1) AS i
WITH gds.graph.project($name, $src[i], $dst[i], {relationshipProperties: {weight: $weight[i]}},
                       {undirectedRelationshipTypes: ['*']}) AS g
RETURN g.nodeCount AS nodes, g.relationshipCount AS relationships
""", backends=("neo4j",))

GDS_LEIDEN = statement("gds.leiden", "Leiden communities of the catalog graph $name: resolution $gamma, deterministic for a given $seed (one thread).", """
CALL gds.leiden.stream($name, {relationshipWeightProperty: 'weight', gamma: $gamma, randomSeed: $seed, concurrency: 1})
YIELD nodeId, communityId
RETURN nodeId AS node, communityId AS community
""", backends=("neo4j",))

GDS_DROP = statement("gds.drop", "Drop the catalog graph $name (no error if it is gone).", """
CALL gds.graph.drop($name, false) YIELD graphName
RETURN graphName
""", backends=("neo4j",))
