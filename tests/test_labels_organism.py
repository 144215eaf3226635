"""Automatic labels and signed paths against the planted truth of a model organism's two-hop facts.

The planted organism learned a fictional atlas (organisms/corpus.py): city -> country -> capital, in
three languages with disjoint vocabularies. Traced here: the 72 held-out two-hop prompts ("the
capital of the country containing pirton is" -> tudton) and the stated hops ("pirton is in" ->
tetland, "the capital of tetland is" -> tudton). Labelled with `labels auto` and the model's decoders.

A label "names" a place when its text or its evidence (input tokens, driven logits, promoted tokens,
three each) holds that place in any language (stem + ton/ville/ku, land/ie/ara). Each figure is
compared with the same figure for a wrong place (the next country of the atlas): the labels must
name the right one far more often. The figures measured (shipped zoo, PLT, seed 0) are printed and
stated in docs/queries.md.
"""
from __future__ import annotations

import json
import re

import pytest

from circuit_atlas import queries
from circuit_atlas.queries import labels

SUFFIXES = "ton|ville|ku|land|ie|ara"


def names(stem: str, text: str) -> bool:
    return re.search(rf'"{stem}({SUFFIXES})"', text) is not None


def atlas_prompts(truth):
    from circuit_atlas.organisms import corpus as C
    country_of, capital_of, countries = {}, {}, list(truth["atlas"])
    for country, cities in truth["atlas"].items():
        for c in cities:
            country_of[c[:-3]], capital_of[c[:-3]] = country[:-4], cities[0][:-3]
    wrong = {c[:-4]: countries[(i + 1) % len(countries)][:-4] for i, c in enumerate(countries)}
    prompts = [dict(task="twohop", prompt=h["prompt"], id=h["id"], city=h["concept"].split(":")[1],
                    country=country_of[h["concept"].split(":")[1]], capital=capital_of[h["concept"].split(":")[1]])
               for h in truth["heldout"] if h["task"] == "twohop"]
    for lang in C.LANGUAGES:
        for country, cities in zip(C.COUNTRIES, C.CITIES):
            for c in cities[1:]:
                prompts.append(dict(task="city-in", id=f"city-in/{lang.code}/{c}", city=c, country=country, capital=cities[0],
                                    prompt=C.prompt_of(lang.onehop[0].format(c=C.city(c, lang), n=C.country(country, lang)))))
            prompts.append(dict(task="capital-of", id=f"capital-of/{lang.code}/{country}", city=None, country=country,
                                capital=cities[0],
                                prompt=C.prompt_of(lang.onehop[1].format(n=C.country(country, lang), k=C.city(cities[0], lang)))))
    return prompts, wrong


@pytest.mark.slow
def test_labels_and_paths_name_the_planted_atlas(tmp_path):
    from circuit_atlas import organisms, tracer
    from circuit_atlas.store import open_store

    root = organisms.zoo_path("planted")
    truth = json.loads((root / "truth.json").read_text())
    model = tracer.load(root / "model", root / "transcoders" / "plt")
    prompts, wrong = atlas_prompts(truth)
    traced = []
    for p in prompts:
        g = tracer.trace(model, p["prompt"])
        g.tags = {"task": p["task"], "prompt": p["id"]}
        traced.append((p, g))
    with open_store(str(tmp_path / "atlas.db")) as store:
        store.add_graphs([g for _, g in traced])
        labels.auto_labels(store, model)
        label = {r["fkey"]: " ".join(r[c] for c in ("text", "inputs", "logits", "promotes"))
                 for r in queries.run(store, "feature-labels", source="auto", limit=1_000_000)}

        def rate(task, at, target, place):
            """Share of the feature occurrences at the `at` position of `task` graphs whose label names `place`."""
            hits = total = 0
            for p, g in traced:
                if p["task"] != task:
                    continue
                positions = {i for i, t in enumerate(g.prompt_tokens) if t.startswith(p[at]) and len(t) > len(p[at])}
                for n in g.nodes:
                    if g.feature_key(n) and n.pos in positions:
                        total += 1
                        hits += names(place(p), label[g.feature_key(n)])
            return hits / total

        figures = {
            "city position names the country": (rate("city-in", "city", "country", lambda p: p["country"]),
                                                rate("city-in", "city", "country", lambda p: wrong[p["country"]])),
            "country position names the capital": (rate("capital-of", "country", "capital", lambda p: p["capital"]),
                                                   rate("capital-of", "country", "capital",
                                                        lambda p: truth["atlas"][wrong[p["country"]] + "land"][0][:-3])),
        }
        for hops, rank_by in ((2, "strength"), (3, "strength"), (3, "min")):
            right = off = 0
            for p, g in (x for x in traced if x[0]["task"] == "twohop"):
                [capital] = [n.token for n in g.nodes if n.kind == "logit" and n.token.startswith(p["capital"])]
                [city] = [t for t in g.prompt_tokens if t.startswith(p["city"]) and len(t) > len(p["city"])]
                rows = [r for r in queries.run(store, "common-paths", hops=hops, min_weight=0.0, token=capital,
                                               tag=f"prompt={p['id']}", rank_by=rank_by, limit=1000)
                        if r["start_token"] == city]
                feats = [rows[0][f"f{i}"] for i in range(1, hops)] if rows else []
                right += any(names(p["country"], label[f]) for f in feats)
                off += any(names(wrong[p["country"]], label[f]) for f in feats)
            by = "" if rank_by == "strength" else f", ranked by {rank_by}"
            figures[f"{hops}-hop path city → … → capital passes a country feature{by}"] = (right / 72, off / 72)
    for what, (right, off) in figures.items():
        print(f"{what}: {right:.2f} (a wrong place: {off:.2f})")
        assert right >= 3 * off, what
    assert figures["country position names the capital"][0] >= 0.7
    assert figures["3-hop path city → … → capital passes a country feature"][0] >= 0.7
