"""Feature labels: users' labels imported from files, and automatic labels read off the corpus.

Every label is a (:FeatureLabel {source, text, ...}) linked from its (:Feature) by HAS_LABEL, one per
feature and source. The label a feature *shows* (Feature.label, returned by every query) is chosen so
that people win over machines:
    1. a user's label (`import_labels`: Neuronpedia explanation exports, or a CSV), the latest import;
    2. a graph file's own label (clerp), which ingest copied to Feature.label;
    3. the automatic label (`auto_labels`).

Automatic labels come from the stored graphs, for every feature (the first EVIDENCE_SHOWN tokens of each):
    inputs    the prompt tokens the feature sits on most, with counts (the first special token left out)
    logits    the logit tokens its direct edges drive most, summed signed weight over all graphs
    promotes  with the model at hand: the tokens its decoder promotes through the unembedding
and read `"<input>" → say "<output>"`: the token it sits on most, then the logit it drives most
(without a positive logit edge: the token its decoder promotes most, else `not "<token>"` for the
logit it suppresses most).
"""
from __future__ import annotations

import csv
import gzip
import io
import json
import re
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from circuit_atlas.queries.registry import analysis, run, run_per_keys, statement
from circuit_atlas.store.limits import format_size

AUTO = "auto"
GRAPH_FILE = "graph file"     # the label a graph file gave the feature (clerp), as ingest stored it
BATCH = 5_000                     # rows per UNWIND
EVIDENCE_SHOWN = 5                # tokens a label lists per kind of evidence: one concept is often several
                                  # tokens (a capital in three languages; " Austin" and "Austin"), so three
                                  # would often show that one concept only
MAX_LABEL_FILE = 1 << 30          # bytes of a label file, unpacked (a gzip bomb is refused, not read whole)
SOURCE_ID = re.compile(r"^\s*(\d+)(?:-(.+?))?\s*$")  # 20, "20" or Neuronpedia's "20-clt-hp": layer, then set
SPECIAL = re.compile(r"^(<[^<>\s]+>|<\|[^|]+\|>)$")   # <bos>, <s>, <|endoftext|>, <|begin_of_text|> ...


class LabelFileError(ValueError):
    """A label file that cannot be read; the message is '<file>: <problem>'."""


def token_text(token: str | None) -> str:
    """A token as people should read it: quoted, so leading spaces show (' Dallas' -> '" Dallas"')."""
    return "?" if token is None else json.dumps(token, ensure_ascii=False)


def is_special(token: str | None) -> bool:
    return token is not None and SPECIAL.match(token) is not None


# --- import ---------------------------------------------------------------------------------------

@dataclass
class ImportReport:
    file: str
    transcoder_set: str
    source: str
    labels: int = 0                 # labels stored
    waiting: int = 0                # ... of features no stored graph has yet: applied by `labels auto` once ingested
    duplicates: int = 0             # later labels of a feature already labelled by this file (the first is kept)

    def summary(self) -> str:
        extra = ([f"{self.waiting} for features no stored graph has yet: `circuit-atlas labels auto` applies "
                  "them after those graphs are ingested"] if self.waiting else [])
        if self.duplicates:
            extra.append(f"{self.duplicates} further label{'s' * (self.duplicates != 1)} of the same features ignored "
                         "(the first is kept)")
        stored = f"{self.labels} label{'s' * (self.labels != 1)} of {self.transcoder_set}"
        return (f"{self.file}: {stored} stored as source {self.source!r}"
                + (f" ({'; '.join(extra)})" if extra else "") + "; they show in every query")


def read_label_file(path: str | Path) -> tuple[str, list[dict]]:
    """(kind, rows {layer, index, text, model}) of a Neuronpedia explanation export or a CSV.

    JSON: an array of explanation objects, or an object with an "explanations" array; JSONL: one per
    line. Fields: `layer` (Neuronpedia's source id "20-clt-hp", or a number), `index`, `description`
    (or `explanation`/`label`/`text`), optional `modelId`. CSV (.csv, .tsv): a header with layer, index
    and label, separated by commas, semicolons or tabs. Any of them may be gzipped (`.jsonl.gz`).
    """
    path = Path(path)
    gzipped = path.suffix.lower() == ".gz"              # Neuronpedia's bulk exports: batch-0.jsonl.gz
    suffix = Path(path.stem).suffix.lower() if gzipped else path.suffix.lower()
    try:
        with (gzip.open(path) if gzipped else path.open("rb")) as f:
            data = f.read(MAX_LABEL_FILE + 1)
    except (OSError, EOFError, zlib.error) as e:
        raise LabelFileError(f"{path}: cannot read it ({e})") from None
    if len(data) > MAX_LABEL_FILE:       # before decoding: the cut may fall inside a character
        raise LabelFileError(f"{path}: over {format_size(MAX_LABEL_FILE)}{' unpacked' * gzipped}; split it")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise LabelFileError(f"{path}: cannot read it ({e})") from None
    if suffix in (".csv", ".tsv"):
        return "csv", _csv_rows(path, text)
    stripped = text.lstrip()
    if not stripped:
        raise LabelFileError(f"{path}: the file is empty")
    if suffix in (".jsonl", ".ndjson") or (stripped[0] == "{" and "\n{" in stripped.strip()):
        objects = []
        for i, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    objects.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise LabelFileError(f"{path}: line {i}: not JSON ({e.msg})") from None
    else:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as e:
            raise LabelFileError(f"{path}: not JSON ({getattr(e, 'msg', e)}); expected a Neuronpedia "
                                 "explanation export (.json / .jsonl) or a .csv with layer,index,label") from None
        objects = data.get("explanations") if isinstance(data, dict) else data
        if not isinstance(objects, list):
            raise LabelFileError(f"{path}: expected a JSON array of explanations (or {{\"explanations\": [...]}})")
    return "neuronpedia", [_explanation(path, i, o) for i, o in enumerate(objects, 1)]


def _explanation(path: Path, i: int, o) -> dict:
    if not isinstance(o, dict):
        raise LabelFileError(f"{path}: explanation {i}: expected an object, got {type(o).__name__}")
    text = next((o[k] for k in ("description", "explanation", "label", "text") if isinstance(o.get(k), str)), None)
    if text is None:
        raise LabelFileError(f"{path}: explanation {i}: no 'description' (the label text)")
    return {"layer": _int(path, i, "layer", o.get("layer")), "index": _int(path, i, "index", o.get("index")),
            "text": text.strip(), "model": o.get("modelId"), "source_set": _source_set(o.get("layer"))}


def _source_set(layer) -> str | None:
    """The transcoder set part of Neuronpedia's source id: "clt-hp" of "20-clt-hp"; None for a bare layer."""
    m = SOURCE_ID.match(str(layer)) if layer is not None else None
    return m.group(2) if m else None


def _csv_rows(path: Path, text: str) -> list[dict]:
    """Rows of a table separated by commas, semicolons (spreadsheets in many locales) or tabs: whichever
    of them the header line holds most of."""
    header = text.split("\n", 1)[0]
    reader = csv.DictReader(io.StringIO(text), delimiter=max(",;\t", key=header.count))
    fields = {(f or "").strip().lower(): f for f in reader.fieldnames or []}
    column = {"layer": fields.get("layer"), "index": fields.get("index") or fields.get("feature"),
              "text": fields.get("label") or fields.get("description")}
    if None in column.values():
        raise LabelFileError(f"{path}: the header must name the columns layer, index and label "
                             f"(found: {', '.join(reader.fieldnames or []) or 'none'})")
    rows = []
    for i, r in enumerate(reader, 2):
        rows.append({"layer": _int(path, i, "layer", r[column["layer"]], "line"),
                     "index": _int(path, i, "index", r[column["index"]], "line"),
                     "text": (r[column["text"]] or "").strip(), "model": None})
    return rows


def _int(path: Path, i: int, name: str, value, where: str = "explanation") -> int:
    """An int from 20, "20" or Neuronpedia's source id "20-clt-hp" (the layer comes first)."""
    m = SOURCE_ID.match(str(value)) if value is not None else None
    if m is None:
        raise LabelFileError(f"{path}: {where} {i}: {name} {value!r} is not a number "
                             f"(or a Neuronpedia source id such as '20-clt-hp')")
    return int(m.group(1))


def import_labels(store, path: str | Path, transcoder_set: str | None = None) -> ImportReport:
    """Store the labels of `path` as users' labels of `transcoder_set` (the store's only one if None)."""
    from circuit_atlas.graph import feature_key

    kind, rows = read_label_file(path)
    rows = [r for r in rows if r["text"]]
    if not rows:
        raise LabelFileError(f"{path}: no labels in the file")
    source_sets = Counter(r.get("source_set") for r in rows if r.get("source_set"))
    if len(source_sets) > 1:             # one --transcoder-set would give some of them to the wrong features
        listed = ", ".join(f"{name} ({n})" for name, n in sorted(source_sets.items()))
        raise LabelFileError(f"{path}: holds labels of {len(source_sets)} Neuronpedia sources: {listed}; "
                             "they are different transcoder sets: import each source's labels from a file "
                             "of their own, with its --transcoder-set")
    tset = transcoder_set or _only_transcoder_set(store, path, {r["model"] for r in rows if r["model"]})
    report = ImportReport(str(path), tset, f"{kind}:{Path(path).name}")
    texts: dict[str, dict] = {}
    for r in rows:
        key = feature_key(tset, r["layer"], r["index"])
        if key in texts:
            report.duplicates += 1
        else:
            texts[key] = {"text": r["text"]}
    store_labels(store, texts, report.source)
    apply_labels(store)
    report.labels = len(texts)
    report.waiting = len(texts) - len(run(store, "_labels-of", keys=sorted(texts)))   # one scan of Feature
    return report


def _only_transcoder_set(store, path, models: set[str]) -> str:
    rows = run(store, "_transcoder-sets")
    sets = sorted({r["transcoder_set"] for r in rows if r["transcoder_set"] and (not models or r["model"] in models)})
    if len(sets) == 1:
        return sets[0]
    stored = ", ".join(sorted({r["transcoder_set"] for r in rows if r["transcoder_set"]})) or "none (ingest graphs first)"
    if models and not sets:              # the file names its model, and no stored graph is of that model
        raise LabelFileError(f"{path}: its labels are for {', '.join(sorted(models))}, and no stored graph is of "
                             f"that model; name the set with --transcoder-set if they belong to one of the "
                             f"store's: {stored}")
    of_model = f" for {', '.join(sorted(models))}" if models else ""
    raise LabelFileError(f"{path}: say which transcoder set the labels belong to (--transcoder-set); "
                         f"the store holds{of_model}: {', '.join(sets) or stored}")


def store_labels(store, labels: dict[str, dict], source: str) -> None:
    """Store {fkey: {text, inputs?, logits?, promotes?}} as `source`'s labels, in one transaction.

    The source's labels become exactly these: its old ones are deleted first, and no longer shown
    (`apply_labels` chooses again). Deleted and created, not merged: the embedded engine's MERGE of a
    batch slows as the table grows (38 s for the 98k labels of 1,000 graphs; 4 s so).
    Labels of features the store does not hold are kept too: `apply_labels` links them once it does.
    (Features are never created here: the embedded engine's bulk ingest fails on a key inserted by a
    statement since its last checkpoint.)"""
    created = _now()
    rows = [{"id": f"{k}|{source}", "fkey": k, "source": source, "text": v["text"], "inputs": v.get("inputs", ""),
             "logits": v.get("logits", ""), "promotes": v.get("promotes", ""), "created": created}
            for k, v in labels.items()]
    steps = [(statement(name), {"source": source}) for name in ("_labels-unshow-source", "_labels-delete-source")]
    store.execute_all(steps + _batches(rows, "_labels-store"))


def apply_labels(store) -> None:
    """Link stored labels to their (now stored) features and set the label each feature shows.

    Shown: the latest user's label, else its graph file's label, else the automatic label. A graph
    file's label (clerp) is what ingest wrote to Feature.label; it is kept as a label of source
    "graph file" the first time. Linking, keeping and choosing are joins in the store, not a statement
    per label (at 1,000 graphs that took 10 minutes); three transactions, as _labels-show says why.
    Each is whole, and running them again finishes an interrupted run.
    """
    store.execute(statement("_labels-link"))
    store.execute(statement("_labels-keep-graph-file"), {"graph_file": GRAPH_FILE, "created": _now()})
    store.execute(statement("_labels-show"), {"auto": AUTO, "graph_file": GRAPH_FILE})


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _batches(rows: list[dict], name: str) -> list[tuple[str, dict]]:
    """The statement `name` over `rows`, BATCH rows at a time (none for no rows: an empty list cannot be
    typed by the embedded engine)."""
    return [(statement(name), {"rows": rows[start:start + BATCH]}) for start in range(0, len(rows), BATCH)]


# --- automatic labels -----------------------------------------------------------------------------

@dataclass
class Evidence:
    """What the corpus says about one feature."""
    inputs: Counter = field(default_factory=Counter)               # token -> occurrences on it
    logits: dict[str, float] = field(default_factory=dict)          # logit token -> summed direct weight
    promotes: list[str] = field(default_factory=list)               # decoder -> unembedding, best first

    def label(self, top: int = EVIDENCE_SHOWN) -> dict:
        ranked = sorted(self.inputs.items(), key=lambda kv: (-kv[1], str(kv[0])))   # ties: by token, stable
        read = [t for t, _ in ranked if not is_special(t)] or [t for t, _ in ranked]
        drives = sorted(self.logits.items(), key=lambda kv: (-abs(kv[1]), kv[0]))
        positive = [t for t, w in sorted(self.logits.items(), key=lambda kv: (-kv[1], kv[0])) if w > 0]
        say = (f"say {token_text(positive[0])}" if positive else
               f"say {token_text(self.promotes[0])}" if self.promotes else
               f"not {token_text(drives[0][0])}" if drives else "")
        text = " → ".join(p for p in ((token_text(read[0]) if read else ""), say) if p)
        return {"text": text or "(no evidence)",
                "inputs": ", ".join(f"{token_text(t)} ×{n}" for t, n in ranked[:top]),
                "logits": ", ".join(f"{token_text(t)} {w:+.3g}" for t, w in drives[:top]),
                "promotes": ", ".join(token_text(t) for t in self.promotes[:top])}


def corpus_evidence(store, graphs_per_call: int = 500, progress: Callable | None = None) -> dict[str, Evidence]:
    """Inputs and logits of every feature that occurs in a stored graph, read `graphs_per_call` graphs
    at a time (whole, the corpus's rows pass the row cap at 10,000 graphs) and summed.
    `progress(done, total)` is called with the graphs read so far (for a bar: 10,000 graphs take 100 s)."""
    tokens = {r["gid"]: r["tokens"] or [] for r in run(store, "_graph-tokens")}
    gids = sorted(tokens)
    out: dict[str, Evidence] = defaultdict(Evidence)
    for start in range(0, len(gids), graphs_per_call):
        if progress:
            progress(start, len(gids))
        batch = gids[start:start + graphs_per_call]
        _add_inputs(out, run(store, "_graphs-feature-positions", gids=batch), tokens)
        _add_logits(out, run(store, "_graphs-feature-logit-effects", gids=batch))
    if progress:
        progress(len(gids), len(gids))
    return dict(out)


def features_evidence(store, keys: list[str]) -> dict[str, Evidence]:
    """corpus_evidence of the features `keys` only, without a scan of the corpus: the positions of
    their occurrences from their own OF_FEATURE lists, their direct logit effects from the Neighbour
    aggregates kept at ingest (the summed weight of their edges into each logit token)."""
    if not keys:
        return {}
    tokens = {r["gid"]: r["tokens"] or [] for r in run(store, "_graph-tokens")}
    out: dict[str, Evidence] = defaultdict(Evidence)
    _add_inputs(out, run_per_keys(store, "_features-positions", keys), tokens)
    _add_logits(out, [r for r in run_per_keys(store, "_feature-neighbours", keys, kind="logit")
                      if r["dir"] == 1 and r["fkey"] in out])
    return dict(out)


def _add_inputs(out: dict[str, Evidence], rows, tokens: dict[str, list]) -> None:
    """Count rows {fkey, gid, pos, n} under the prompt token at each position (None past its end)."""
    for r in rows:
        toks = tokens.get(r["gid"], [])
        out[r["fkey"]].inputs[toks[r["pos"]] if 0 <= r["pos"] < len(toks) else None] += r["n"]


def _add_logits(out: dict[str, Evidence], rows) -> None:
    """Add rows {fkey, token, weight} to each feature's summed weight per logit token."""
    for r in rows:
        if r["token"] is not None:
            logits = out[r["fkey"]].logits
            logits[r["token"]] = logits.get(r["token"], 0.0) + r["weight"]


def promoted_tokens(model, keys: list[str], k: int = 5) -> dict[str, list[str]]:
    """Tokens each feature's decoder promotes through the unembedding, for the keys of `model`'s transcoders."""
    prefix = model.transcoders.name + "/"
    by_layer = defaultdict(list)
    for key in keys:
        if key.startswith(prefix):
            layer, index = key[len(prefix):].split("/")
            by_layer[int(layer)].append((key, int(index)))
    out = {}
    for layer, items in by_layer.items():
        ids = model.promoted_tokens(layer, [i for _, i in items], k)
        out.update({key: [model.tokenizer.decode([t]) for t in row] for (key, _), row in zip(items, ids)})
    return out


def auto_labels(store, model=None, top: int = EVIDENCE_SHOWN, progress: Callable | None = None) -> dict[str, dict]:
    """Compute and store the automatic label of every feature in the store; returns {fkey: label}.

    `model` (a tracer.ReplacementModel) adds what each decoder promotes for its transcoder set's features.
    Users' and graph files' labels still win (see `apply_labels`, which also applies labels imported
    before their features were ingested). `progress`: as in `corpus_evidence`.
    """
    evidence = corpus_evidence(store, progress=progress)
    if model is not None:
        for key, tokens in promoted_tokens(model, list(evidence), k=top).items():
            evidence[key].promotes = tokens
    labels = {k: ev.label(top) for k, ev in evidence.items()}
    store_labels(store, labels, AUTO)
    apply_labels(store)
    return labels


# --- search ---------------------------------------------------------------------------------------

@analysis("search-features")
def search_features(store, text: str, limit: int) -> list[dict]:
    """Features with a label containing a keyword (case-insensitive): their own labels and graph files' labels.

    Searches every stored label of a feature (imported, automatic, and the automatic label's evidence:
    input tokens, driven logits, promoted tokens) and the per-graph labels (clerps) graph files carry.
    `label` is the label the feature shows; `matched` the text that matched and `source` where it is
    from ("graph file" for clerps). `n_graphs`: for a graph file's label, the graphs whose label
    matched; for a stored label, every graph the feature occurs in.

    Parameters:
      $text: str               the keyword, e.g. "capital" or " Austin"
      $limit: int = 50         rows returned
    Example row:
      {"fkey": "mntss/clt-gemma-2-2b-2.5M/20/1454", "layer": 20, "label": "capital cities", "source": "graph file", "matched": "capital cities", "n_graphs": 3}
    """
    rows = {r["fkey"]: {**r, "source": "graph file"} for r in run(store, "_search-graph-labels", text=text, limit=limit)}
    for r in run(store, "_search-feature-labels", text=text, limit=limit):
        if r["fkey"] not in rows or r["n_graphs"] > rows[r["fkey"]]["n_graphs"]:
            rows[r["fkey"]] = r
    out = [{k: r[k] for k in ("fkey", "layer", "label", "source", "matched", "n_graphs")} for r in rows.values()]
    return sorted(out, key=lambda r: (-r["n_graphs"], r["fkey"]))[:limit]
