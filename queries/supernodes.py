"""Supernodes: groups of features that play the same role across graphs.

Proposal, in phases:
  1. candidates   features found in >= min_graphs graphs (at most max_features, most recurrent first)
  2. profiles     each candidate's signed input and output edge profile, summed over all graphs:
                  one sparse row over partners (a feature by key, an embedding or logit by token,
                  an error node by layer), "in:" and "out:" partners kept apart. Read from the
                  Neighbour aggregates kept at ingest, for the candidates only; a partner enters when
                  its edges with the feature average >= min_weight in |weight| (profile_rows)
  3. similarity   cosine of profiles (same role), damped by how rarely the two features occur in the
                  same graphs: max(cos, 0) * jaccard(graph sets) ** cooccurrence. Features that never
                  meet score 0; a mostly-shared graph set keeps the role similarity nearly whole
  4. communities  on the graph of pairs with similarity >= min_similarity: Leiden in the database where
                  the store offers it (Neo4j with Graph Data Science: Store.leiden), else Louvain
                  (networkx); both fixed-seed, same resolution, same rows out (`method` chooses)
  5. scores       coherence = mean pairwise similarity of members; n_graphs = graphs holding any
                  member; influence = summed importance (1 - cumulative influence) of members over graphs
Then stored as (:Supernode)-[:HAS_MEMBER]->(:Feature), replacing the previous proposal, and named from
the corpus (`name`): the tokens its members sit on, the logit they drive.

Manual supernodes drawn in Neuronpedia live in a graph file's `qParams.supernodes`
([label, node_id, ...]); `import_manual` stores them as source "neuronpedia", scored the same way.
"""
from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable

import numpy as np

from circuit_atlas.queries.registry import QueryError, analysis, run, run_per_keys, statement



@dataclass
class SupernodeOptions:
    min_graphs: int = 3            # a feature must recur in this many graphs to be a candidate
    max_features: int = 2000       # candidates kept (most recurrent first); bounds the similarity matrix
    min_weight: float = 0.5        # partners whose edges average a weaker |weight| do not enter the profiles
    cooccurrence: float = 0.3      # similarity = cos(profiles) * jaccard(graph sets) ** this; 0 ignores co-occurrence
    min_similarity: float = 0.6    # pairs below this are not linked for community detection
    resolution: float = 2.0        # Louvain resolution: higher gives smaller groups
    min_size: int = 2              # smaller communities are not proposed
    seed: int = 0                  # Louvain / Leiden are randomised; fixed for reproducible proposals
    method: str = "auto"           # "auto": Leiden where the store has it, else Louvain; "leiden"; "louvain"


@dataclass
class Corpus:
    """What proposal and scoring need from the store, as plain Python (tests build it from graph files)."""
    keys: list[str]                            # candidate feature keys, row order of `profiles`
    layers: dict[str, int]                     # feature key -> layer
    graphs: dict[str, dict[str, float]]        # feature key -> {graph id: importance in that graph}
    profiles: dict[str, dict[str, float]]      # feature key -> {"in:<partner>"/"out:<partner>": summed weight}
                                               # (partners whose edges average >= min_weight in |weight|)


def partner(kind: str, layer: int, fkey: str | None, token: str | None) -> str:
    """The global identity of an edge end: feature key, embedding/logit token, or error layer."""
    if fkey is not None:
        return fkey
    if kind in ("embedding", "logit"):
        return f"{kind}:{token}"
    return f"{kind}@{layer}"


def load_corpus(store, options: SupernodeOptions) -> Corpus:
    """Phases 1-2 from the store: the candidates from the Feature aggregates, then their profiles from
    the Neighbour aggregates kept at ingest (see `profile_rows`); no edge is read."""
    layers = {r["fkey"]: r["layer"] for r in run(store, "_supernode-candidates", min_graphs=options.min_graphs,
                                                   max_features=options.max_features)}
    keys = sorted(layers)
    graphs = {k: {} for k in keys}
    for r in run_per_keys(store, "_features-graphs", keys):
        graphs[r["fkey"]][r["gid"]] = r["importance"]
    profiles = {k: defaultdict(float) for k in keys}
    for r in profile_rows(store, keys, options.min_weight):
        side = "in:" if r["dir"] == 0 else "out:"
        profiles[r["fkey"]][side + r["partner"]] += r["weight"]
    return Corpus(keys, layers, graphs, {k: dict(profiles[k]) for k in keys})


def profile_rows(store, keys: list[str], min_weight: float) -> list[dict]:
    """The Neighbour aggregates of the features `keys`: one row per feature, direction (dir 0: edges
    into it, 1: out of it) and neighbour identity, with the summed weight of every edge between the
    feature's occurrences and that neighbour in all graphs and the neighbour's `partner` name; only
    the rows whose edges average at least `min_weight` in |weight|.

    Why a mean: the store keeps sums, not single edges, so a per-edge threshold cannot be applied; the
    mean keeps what it was for, leaving out partners reached only through weak edges, and it does not
    grow with the corpus as a threshold on the summed |weight| would (the same min_weight means the same
    at 10 graphs and at 10,000). A partner that passes brings all its edges' signed sum."""
    rows = run_per_keys(store, "_feature-neighbours", keys, min_weight=min_weight)
    for r in rows:
        r["partner"] = partner(r["kind"], r["layer"], r["end_fkey"], r["token"])
    return rows


def similarity(corpus: Corpus, options: SupernodeOptions) -> np.ndarray:
    """Phase 3: (F, F) role similarity damped by co-occurrence, zero diagonal."""
    from scipy import sparse

    index = {k: i for i, k in enumerate(corpus.keys)}
    dims = {p: j for j, p in enumerate(sorted({p for prof in corpus.profiles.values() for p in prof}))}
    gdims = {g: j for j, g in enumerate(sorted({g for gs in corpus.graphs.values() for g in gs}))}
    rows, cols, vals = [], [], []
    for k, prof in corpus.profiles.items():
        for p, w in prof.items():
            rows.append(index[k]); cols.append(dims[p]); vals.append(w)
    m = sparse.csr_matrix((vals, (rows, cols)), shape=(len(index), max(len(dims), 1)))      # (F, P)
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    m = sparse.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ m
    cos = (m @ m.T).toarray()                                                              # (F, F)
    rows = [index[k] for k, gs in corpus.graphs.items() for _ in gs]
    cols = [gdims[g] for gs in corpus.graphs.values() for g in gs]
    b = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(index), max(len(gdims), 1)))  # (F, G)
    inter = (b @ b.T).toarray()
    sizes = np.asarray(b.sum(axis=1)).ravel()
    jaccard = inter / np.maximum(sizes[:, None] + sizes[None, :] - inter, 1.0)
    sim = np.clip(cos, 0.0, None) * jaccard ** options.cooccurrence
    np.fill_diagonal(sim, 0.0)
    return sim


METHODS = ("auto", "leiden", "louvain")


def communities(corpus: Corpus, sim: np.ndarray, options: SupernodeOptions, store=None) -> list[list[str]]:
    """Phase 4: communities of the thresholded similarity graph, largest first: Leiden in the database
    (`store.leiden`, Neo4j with GDS) unless options.method is "louvain" or the store has none, else
    Louvain (networkx). Either way the same modularity resolution and a fixed seed."""
    import networkx as nx

    if options.method not in METHODS:
        raise QueryError(f"method {options.method!r}: choose one of {', '.join(METHODS)}")
    i, j = np.nonzero(np.triu(sim >= options.min_similarity, k=1))
    found = None
    if options.method != "louvain" and store is not None:
        found = store.leiden(i.tolist(), j.tolist(), sim[i, j].tolist(), options.resolution, options.seed)
    if found is None and options.method == "leiden":
        raise QueryError("method 'leiden' needs a store that runs it: Neo4j with the Graph Data Science "
                         "plugin (scripts/neo4j.sh starts one); use method 'louvain' (or 'auto') here")
    if found is None:
        g = nx.Graph()
        g.add_nodes_from(range(len(corpus.keys)))
        g.add_weighted_edges_from(zip(i.tolist(), j.tolist(), sim[i, j].tolist()))
        found = nx.community.louvain_communities(g, weight="weight", resolution=options.resolution, seed=options.seed)
    groups = [sorted(corpus.keys[n] for n in c) for c in found if len(c) >= options.min_size]
    return sorted(groups, key=lambda c: (-len(c), c))


def score(members: list[str], corpus: Corpus, sim: np.ndarray) -> dict:
    """Phase 5: coherence, graphs spanned and influence of one group of candidate features."""
    index = {k: i for i, k in enumerate(corpus.keys)}
    idx = [index[m] for m in members if m in index]
    pairs = [(a, b) for n, a in enumerate(idx) for b in idx[n + 1:]]
    coherence = float(np.mean([sim[a, b] for a, b in pairs])) if pairs else None
    spanned = set().union(*(corpus.graphs.get(m, {}).keys() for m in members))
    influence = float(sum(sum(corpus.graphs.get(m, {}).values()) for m in members))
    return {"coherence": coherence, "n_graphs": len(spanned), "influence": influence}


def propose(corpus: Corpus, options: SupernodeOptions, evidence: Callable[[list[str]], dict] | None = None,
            store=None) -> list[dict]:
    """Phases 3-5: the proposed supernodes as rows (not stored), named from `evidence`: a function from
    feature keys to their labels.Evidence (see `name`), asked once, for the members of every group;
    `store`: where Leiden may run (see `communities`)."""
    if len(corpus.keys) < 2:
        return []
    sim = similarity(corpus, options)
    groups = communities(corpus, sim, options, store)
    known = evidence(sorted({m for members in groups for m in members})) if evidence and groups else {}
    out = []
    for members in groups:
        layers = sorted(corpus.layers[m] for m in members)
        digest = hashlib.sha1(" ".join(members).encode()).hexdigest()[:12]
        span = f"layer {layers[0]}" if layers[0] == layers[-1] else f"layers {layers[0]}-{layers[-1]}"
        out.append({"id": f"auto/{digest}", "name": f"{span} · {name(members, known)}",
                    "source": "proposed", "gid": "", **score(members, corpus, sim),
                    "n_members": len(members), "members": members})
    return out


def name(members: list[str], evidence: dict) -> str:
    """What the members share, from the corpus (labels.Evidence per feature): the prompt tokens they sit
    on most, special tokens such as <bos> left out, then the logit they drive most:
    '"Dallas"/"Texas" → say "Austin"'. A side without evidence says so ("no logit edge")."""
    from collections import Counter

    from circuit_atlas.queries.labels import is_special, token_text

    inputs, logits = Counter(), defaultdict(float)
    for m in members:
        if m in evidence:
            inputs.update({t: n for t, n in evidence[m].inputs.items() if t is not None and not is_special(t)})
            for t, w in evidence[m].logits.items():
                logits[t] += w
    read = "/".join(token_text(t) for t, _ in sorted(inputs.items(), key=lambda kv: (-kv[1], kv[0]))[:2])
    driven = sorted((t for t, w in logits.items() if w > 0), key=lambda t: (-logits[t], t))
    return f"{read or 'only special tokens'} → " + (f"say {token_text(driven[0])}" if driven else "no logit edge")


def store_supernodes(store, rows: list[dict], source: str, replace: bool) -> int:
    """Store `rows` as supernodes of `source` (first deleting that source's old ones if `replace`)."""
    if replace:
        store.execute(statement("_supernodes-delete"), {"source": source})
    stored = 0
    for r in rows:
        if not r["members"]:   # only non-feature nodes: nothing to link (an empty list cannot be typed)
            continue
        store.execute(statement("_supernode-store"), {
            "id": r["id"], "name": r["name"], "source": source, "gid": r["gid"],
            "node_ids": " ".join(r.get("node_ids", [])), "coherence": r["coherence"],
            "n_graphs": r["n_graphs"], "influence": r["influence"], "members": r["members"]})
        stored += 1
    return stored


@analysis("propose-supernodes", writes=True)
def propose_supernodes(store, min_graphs: int, max_features: int, min_weight: float, min_similarity: float,
                       resolution: float, method: str, dry_run: bool) -> list[dict]:
    """Group features that play the same role across graphs into supernodes, score them and store them.

    Similar signed input/output edge profiles (cosine) damped by rare co-occurrence (Jaccard of
    graph sets), then community detection. A profile sums, over all graphs, the weights of the
    feature's edges to and from each partner (a feature by key, an embedding or logit by token, an
    error node by layer), read from the per-neighbour aggregates kept at ingest for the candidates
    only; a partner enters when its edges with the feature average at least $min_weight in |weight|.
    Communities: Leiden inside Neo4j where Graph Data Science is present,
    Louvain otherwise (the same columns, scores and names; the groups may differ where the two algorithms do); see queries/supernodes.py for the phases. Replaces
    the previous proposal unless dry_run. A proposal is named from the corpus: its layers, the prompt
    tokens its members sit on most (BOS and other special tokens left out) and the logit they drive most.

    Parameters:
      $min_graphs: int = 3     a feature must recur in this many graphs to be a candidate
      $max_features: int = 2000 at most this many candidates, most recurrent first
      $min_weight: float = 0.5 partners whose edges average a weaker |weight| stay out of the profiles
      $min_similarity: float = 0.6 pairs less similar than this are not linked
      $resolution: float = 2.0 modularity resolution of Louvain / Leiden (higher: smaller groups)
      $method: str = "auto"    auto (Leiden in Neo4j with GDS, else Louvain), leiden or louvain
      $dry_run: bool = false   only return the proposals, store nothing
    Example row:
      {"id": "auto/5f2c9a1b3d4e", "name": "layers 0-1 · \\"The\\"/\\" to\\" → say \\" cold\\"", "source": "proposed", "gid": "", "coherence": 0.62, "n_graphs": 41, "influence": 18.3, "n_members": 4, "members": ["mntss/clt-gemma-2-2b-2.5M/0/18753"]}
    """
    options = SupernodeOptions(min_graphs=min_graphs, max_features=max_features, min_weight=min_weight,
                               min_similarity=min_similarity, resolution=resolution, method=method)
    from circuit_atlas.queries.labels import features_evidence

    rows = propose(load_corpus(store, options), options, lambda keys: features_evidence(store, keys), store)
    if not dry_run:
        store_supernodes(store, rows, "proposed", replace=True)
    return rows


def manual_supernodes(graph) -> list[dict]:
    """The Neuronpedia supernodes of one graph (its `extra["qParams"]["supernodes"]`) as rows, unscored."""
    from circuit_atlas.ingest.write import file_node_ids

    specs = (graph.extra.get("qParams") or {}).get("supernodes") or []
    by_id = {n.node_id: n for n in graph.nodes}                       # our ids, and the ids the file used
    by_id.update({fid: n for fid, n in zip(file_node_ids(graph), graph.nodes)})
    out = []
    for i, spec in enumerate(specs):
        if not spec or not isinstance(spec, list):
            continue
        label = str(spec[0])
        nodes = [by_id[s] for s in spec[1:] if s in by_id]
        members = sorted({graph.feature_key(n) for n in nodes if graph.feature_key(n)})
        importance = sum(1.0 - n.influence for n in nodes if n.influence is not None)
        out.append({"id": f"np/{graph.id}/{i}", "name": label, "source": "neuronpedia", "gid": graph.id,
                    "coherence": None, "n_graphs": 1, "influence": importance,
                    "n_members": len(members), "members": members, "node_ids": [n.node_id for n in nodes]})
    return out


def import_manual(store, graphs, options: SupernodeOptions | None = None) -> int:
    """Store the Neuronpedia supernodes of `graphs` (idempotent: ids are per graph and index).

    Coherence is scored against the corpus's proposal candidates, so manual and proposed groups
    can be compared; members that are not candidates do not count towards it.
    """
    options = options or SupernodeOptions()
    rows = [r for g in graphs for r in manual_supernodes(g)]
    if not rows:
        return 0
    corpus = load_corpus(store, options)
    sim = similarity(corpus, options) if len(corpus.keys) >= 2 else None
    for r in rows:
        r["coherence"] = score(r["members"], corpus, sim)["coherence"] if sim is not None else None
    return store_supernodes(store, rows, "neuronpedia", replace=False)


@analysis("contrast-supernode", writes=True)
def contrast_supernode(store, tag: str, within: str, min_share: float, max_other: float, dry_run: bool) -> list[dict]:
    """The supernode of a tagged concept: features that the graphs tagged $tag share and the other graphs lack.

    Among the stored graphs in scope (all, or those tagged $within), a feature joins when it occurs
    in at least $min_share of the graphs tagged $tag and in at most $max_other of the others. Where
    the proposer groups features by the role their edges play, this asks which features tell one
    set of prompts from the rest (all prompts about one country, say): the supernode to intervene on.
    Stored as (:Supernode {id: "tag/<tag>", source: "contrast"}) unless dry_run; storing it again
    replaces its members and keeps its other links (interventions' evidence).

    Parameters:
      $tag: str                the concept's tag "key=value", e.g. country=zot
      $within: str = ""        compare only graphs with this tag, e.g. task=twohop ("" for all)
      $min_share: float = 0.5  a member occurs in at least this share of the tagged graphs
      $max_other: float = 0.1  ... and in at most this share of the other graphs
      $dry_run: bool = false   only return the supernode, store nothing
    Example row:
      {"id": "tag/country=zot", "name": "country=zot", "source": "contrast", "gid": "", "coherence": null, "n_graphs": 18, "influence": 41.2, "n_members": 16, "members": ["organisms/planted-plt-seed0/2/9"], "specificity": {"organisms/planted-plt-seed0/2/9": [1.0, 0.0]}}
    """
    split = run(store, "_graphs-tag-split", tag=tag, within=within)
    tagged = {r["gid"] for r in split if r["tagged"]}
    others = {r["gid"] for r in split} - tagged
    if not tagged:
        raise QueryError(f"contrast-supernode: no stored graph{' tagged ' + within if within else ''} carries "
                         f"the tag {tag!r} (tags are key=value, e.g. country=zot)")
    graphs = defaultdict(dict)
    for r in run(store, "_graphs-features", gids=sorted(tagged | others)):
        graphs[r["fkey"]][r["gid"]] = r["importance"]
    members, specificity = [], {}
    for fkey, found in graphs.items():
        share = len(tagged & found.keys()) / len(tagged)
        other = len(others & found.keys()) / max(len(others), 1)
        if share >= min_share and other <= max_other:
            members.append(fkey)
            specificity[fkey] = [round(share, 4), round(other, 4)]
    members.sort()
    spanned = set().union(*(graphs[m].keys() & tagged for m in members)) if members else set()
    row = {"id": f"tag/{tag}", "name": tag, "source": "contrast", "gid": "", "coherence": None,
           "n_graphs": len(spanned), "influence": float(sum(graphs[m][g] for m in members for g in graphs[m] if g in tagged)),
           "n_members": len(members), "members": members, "specificity": specificity}
    if not dry_run and members:
        store.execute(statement("_supernode-unlink-members"), {"id": row["id"]})
        store_supernodes(store, [row], "contrast", replace=False)
    return [row]
