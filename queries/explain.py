"""Why a query answered nothing: the filter that matched nothing, and the values that do exist.

    rows = queries.run(store, "common-paths", token="Austin")
    if not rows:
        print(queries.explain_empty(store, "common-paths", {"token": "Austin"}))
        # no logit token "Austin" in the store; did you mean " Austin"? (...)

Each check reads what the store holds for one kind of filter (logit tokens, tags, concepts, features,
labels, supernode sources, interventions, the lang=/item= tags); the first filter that names something
absent is the answer.

`unlabelled(store, rows)` says the same of an answer whose label columns are all blank: why, and how to fill them.
"""
from __future__ import annotations

import difflib
import json

from circuit_atlas.queries.registry import get, run

SHOWN = 12      # values listed at most


def _q(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _listing(values: list[str], what: str) -> str:
    more = f", … ({len(values) - SHOWN} more)" if len(values) > SHOWN else ""
    return f"{what}: {', '.join(values[:SHOWN])}{more}" if values else f"the store has no {what}"


def _suggest(value: str, known: list[str]) -> str:
    near = [k for k in known if k.strip() == value.strip() and k != value]
    near += [k for k in difflib.get_close_matches(value, known, n=3, cutoff=0.6) if k not in near]
    return f"; did you mean {' or '.join(_q(k) for k in near[:3])}?" if near else ""


def _tag_problem(store, tag: str) -> str | None:
    tags = run(store, "_tags")
    if any(t["id"] == tag for t in tags):
        return None
    key, sep, _ = tag.partition("=")
    values = [t["value"] for t in tags if t["key"] == key]
    if not sep:
        return (f"tag {_q(tag)} has no value: tags are key=value"
                + (f"; {_listing([f'{key}={v}' for v in values], f'tags with key {key}')}" if values else
                   f"; {_listing(sorted({t['key'] for t in tags}), 'tag keys')}"))
    if values:
        return f"no graph is tagged {_q(tag)}; {_listing([f'{key}={v}' for v in values], f'tags with key {key}')}"
    return f"no graph is tagged {_q(tag)}; {_listing(sorted({t['key'] for t in tags}), 'tag keys')}"


NO_LABELS = ("the store has no feature labels yet: `circuit-atlas labels auto` names every feature from the "
             "corpus, `circuit-atlas labels import FILE` adds yours")


def _has_labels(store) -> bool:
    return bool(run(store, "feature-labels", fkey="", source="", limit=1))


def blank_labels(rows: list[dict]) -> bool:
    """Whether `rows` have label columns (label, f1_label, ...) and every one of them is blank."""
    columns = {c for r in rows for c in r if c == "label" or c.endswith("_label")}
    return bool(columns) and not any(r.get(c) for r in rows for c in columns)


def unlabelled(store, rows: list[dict]) -> str | None:
    """NO_LABELS when the label columns of `rows` are all blank because the store holds no labels at all;
    None otherwise (some rows are labelled, or the store has labels, just not for these features)."""
    return NO_LABELS if blank_labels(rows) and not _has_labels(store) else None


def unknown_feature(store, fkey: str) -> str:
    """One line for a feature key the store lacks: the full keys a short one ("20/15589", as path
    rows print them) stands for, else what keys look like."""
    full = [r["fkey"] for r in run(store, "_features-ending", suffix="/" + fkey.strip("/"))]
    if full:
        more = " or more" if len(full) > 3 else ""
        return (f"no feature {_q(fkey)} in the store; keys are whole, did you mean "
                f"{' or '.join(_q(k) for k in full[:3])}{more}?")
    return (f"no feature {_q(fkey)} in the store; keys look like <transcoder set>/<layer>/<index> "
            "(find some with hubs-by-graphs or search-features)")


CAUSAL = {"causal-features": ("op", "features alone"), "causal-supernodes": ("role", "supernodes")}


def _causal_problem(store, name: str, bound: dict) -> str | None:
    """No interventions stored at all, an op/role no run had, or too high a min_prompts."""
    key, what = CAUSAL[name]
    every = run(store, name, {key: "", "min_prompts": 1, "limit": 1_000_000})
    if not every:
        return (f"the store has no interventions on {what} yet: `circuit-atlas intervene … --save` "
                "runs and stores some (docs/interventions.md)")
    kinds = sorted({r[key] for r in every}, key=str)
    if bound[key] and bound[key] not in kinds:
        return f"no intervention on {what} has {key} {_q(bound[key])}; {_listing([_q(k) for k in kinds], f'{key}s stored')}"
    most = max(r["n_prompts"] for r in every if r[key] == bound[key] or not bound[key])
    if most < bound["min_prompts"]:
        of = f" with {key} {_q(bound[key])}" if bound[key] else ""
        return (f"no intervention on {what}{of} ran on {bound['min_prompts']} or more prompts (the most is {most}); "
                f"try -p min_prompts={most}")
    return None


def _multilingual_problem(store) -> str | None:
    """The tags multilingual-iou pairs graphs by (lang=, item=) missing, or only one language tagged."""
    tags = run(store, "_tags")
    keys = {t["key"] for t in tags}
    missing = [f"{k}=<{v}>" for k, v in (("lang", "code"), ("item", "id")) if k not in keys]
    if missing:
        return (f"no graph is tagged {' or '.join(missing)}: multilingual-iou pairs parallel prompts by their "
                "lang= and item= tags (docs/queries.md, \"Tagging conventions\"; `circuit-atlas tag` adds them)")
    langs = sorted({t["value"] for t in tags if t["key"] == "lang"})
    if len(langs) < 2:
        return f"only one language is tagged (lang={langs[0]}): multilingual-iou compares two or more"
    return None


def _text_problem(store, text: str) -> str | None:
    """No prompt contains `text`; where a slug does, name those graphs."""
    if run(store, "_graphs-by-text", text=text, limit=1):
        return None
    slugs = [r["slug"] for r in run(store, "_graphs-by-text", text="", limit=1_000_000)
             if text.lower() in (r["slug"] or "").lower()]
    hint = f"; {_listing(slugs, 'slugs that contain it')} (`circuit-atlas graph show SLUG`)" if slugs else ""
    return f"no graph's prompt contains {_q(text)} (case-insensitive){hint}"


def explain_empty(store, name: str, params: dict | None = None) -> str:
    """One line saying which filter of `name`'s parameters matched nothing, and what exists instead."""
    bound = get(name).bind(params or {})
    if bound.get("limit") == 0:
        return "limit=0 asks for no rows"
    if not run(store, "_graphs-by-text", text="", limit=1):
        return "the store holds no graphs yet: `circuit-atlas ingest FILES` loads some (`circuit-atlas demo` traces some)"
    token = bound.get("token")
    if token:
        tokens = [r["token"] for r in run(store, "_logit-tokens") if r["token"] is not None]
        if token not in tokens:
            return f"no logit token {_q(token)} in the store{_suggest(token, tokens)} ({_listing([_q(t) for t in tokens], 'logit tokens, most common first')})"
    for tag in [bound.get("tag")] + list(bound.get("tags") or []):
        if tag and (problem := _tag_problem(store, tag)):
            return problem
    concept = bound.get("concept")
    if concept and (problem := _tag_problem(store, f"concept={concept}")):
        return problem.replace("no graph is tagged", "no graph has the concept tag")
    fkey = bound.get("fkey")
    if fkey and not run(store, "_labels-of", keys=[fkey]):
        return unknown_feature(store, fkey)
    if name in CAUSAL and (problem := _causal_problem(store, name, bound)):
        return problem
    if name == "multilingual-iou" and (problem := _multilingual_problem(store)):
        return problem
    if name == "search-graphs" and bound.get("text") and (problem := _text_problem(store, bound["text"])):
        return problem
    if name == "feature-labels":
        sources = {r["source"]: r["n"] for r in run(store, "_label-sources")}
        if not sources:
            return NO_LABELS
        if bound["source"] and bound["source"] not in sources:
            listed = [f"{_q(s)} ({n})" for s, n in sources.items()]
            return f"no labels from source {_q(bound['source'])}; {_listing(listed, 'label sources')}"
    if name == "supernodes":
        sources = [f"{r['source']} ({r['n']})" for r in run(store, "_supernode-sources")]
        if not sources:
            return ("the store has no supernodes yet: `circuit-atlas supernodes propose` groups features into "
                    "some, `circuit-atlas supernodes import FILE` adds a Neuronpedia graph's")
        if bound["source"]:
            return f"no supernodes from source {_q(bound['source'])}; {_listing(sources, 'supernode sources')}"
    if bound.get("text") and name == "search-features":
        if not _has_labels(store):
            return f"no label contains {_q(bound['text'])}: {NO_LABELS}"
        return f"no label contains {_q(bound['text'])} (case-insensitive)"
    if name == "hubs-by-graphs" and bound["min_graphs"] > 1:
        top = run(store, name, {**bound, "min_graphs": 1, "limit": 1, "rank_by": "graphs"})
        if top and top[0]["n_graphs"] < bound["min_graphs"]:
            return (f"no feature occurs in {bound['min_graphs']} or more graphs (the most is {top[0]['n_graphs']}); "
                    f"try -p min_graphs={top[0]['n_graphs']}")
    if name == "propose-supernodes":
        common = run(store, "_supernode-candidates", min_graphs=1, max_features=2)
        if len(common) < 2:
            return "the store holds fewer than two features: nothing to group"
        if common[1]["n_graphs"] < bound["min_graphs"]:
            return (f"fewer than two features occur in {bound['min_graphs']} or more graphs (two occur in "
                    f"{common[1]['n_graphs']}); try -p min_graphs={common[1]['n_graphs']}")
        return (f"no two features in {bound['min_graphs']} or more graphs play alike enough roles to group; "
                f"try a lower min_similarity (now {bound['min_similarity']:g}) or min_weight (now {bound['min_weight']:g})")
    if name == "common-paths":
        into = f" into {_q(token)}" if token else ""
        return (f"no {bound['sign']} {bound['hops']}-hop path{into} has every edge at |weight| >= "
                f"{bound['min_weight']:g}{' in graphs tagged ' + _q(bound['tag']) if bound['tag'] else ''}; "
                "try a lower min_weight, other hops, or sign=all")
    given = ", ".join(f"{k}={_q(v) if isinstance(v, str) else v}" for k, v in bound.items() if k != "limit")
    return f"{name}: every filter names something in the store, but nothing matches them together ({given})"
