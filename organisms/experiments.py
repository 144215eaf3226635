"""The papers' causal experiments on the organisms, end to end with the library (docs/interventions.md).

Two-hop swap ("swap Texas for California and Austin becomes Sacramento"), on the planted organism's
fictional atlas (city -> country -> capital, corpus.py):
  1. trace  every two-hop prompt of a *training* template (two per fact and language), tagged with its
            task, language, country and city, into the store
  2. find   each country's supernode from those stored graphs through common-paths: per city and
            language, the strongest excitatory 3-hop path city -> f1 -> f2 -> capital (the library's
            ranking: graphs it occurs in, then strength); the features on the paths of at least 2 of the
            country's 3 cities in a language (what the country's cities share, not one city's) are the
            country's supernode, all languages together; no id is picked by hand. This rule (1 path,
            >= 2 cities) was fixed on the *training* prompts of step 1 (swap 98-100% there), before any
            held-out prompt was scored
  3. test   on every *held-out* two-hop prompt (never seen in training, and not traced in 1):
            ablate the country's supernode alone -> does the right capital's probability drop?
            suppress it (x suppress) and inject the next country's (x strength its activations on a
            parallel prompt about one of that country's cities) -> is the top answer that country's capital?
  Every run is stored as (:Intervention) evidence; causal-supernodes ranks the supernodes by it.

    python -m circuit_atlas.organisms.experiments two-hop [--kind plt] [--store DIR]

Labels against the atlas (docs/queries.md, "Against a planted truth"): trace the held-out two-hop
prompts and the stated hops, label every feature with `labels auto`, and measure how often a label
names the right place (and, as the baseline, a wrong one: the next country of the atlas); for any built
organism folder, so the figures of several builds of one recipe can be compared:

    python -m circuit_atlas.organisms.experiments labels [--zoo DIR] [--kind plt]

Where the hidden objective lives (docs/interventions.md, worked example 2): on a sample of triggered
prompts, the share that lose the planted token when the audit's top features are ablated everywhere,
when every active feature at the trigger sentence's positions is ablated, and when every active feature
at the answer position is:

    python -m circuit_atlas.organisms.experiments objective-sources [--every 24]
"""
from __future__ import annotations

import argparse
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

from circuit_atlas.organisms import corpus as C
from circuit_atlas.organisms import zoo_path


def trace_two_hop(model, store) -> int:
    """Step 1: trace and store the two-hop prompts of the training templates; returns how many."""
    from circuit_atlas import tracer

    graphs = []
    for fact in C.facts("twohop"):
        city, country, _ = fact.args
        for lang in C.LANGUAGES:
            held = C.heldout_template(fact, lang)
            for i, template in enumerate(C.templates(lang, "twohop")):
                if i == held:
                    continue
                graph = tracer.trace(model, C.prompt_of(C.render(fact, lang, template)))
                graph.tags = {"task": "twohop", "lang": lang.code, "country": country, "city": city}
                graphs.append(graph)
    store.add_graphs(graphs)
    return len(graphs)


PATH_HOPS = 3        # city -> f1 -> f2 -> capital
PATH_TOP = 1         # the strongest path per city and language
PATH_MIN_CITIES = 2  # a member lies on the top paths of at least this many of the country's cities (one language)


def city_paths(store, hops: int = PATH_HOPS) -> dict[tuple[str, str, str], list[dict]]:
    """(country, city, language) -> common-paths rows city -> ... -> capital over that city's stored graphs,
    excitatory, strongest first (the library's ranking; every edge walked: min_weight 0)."""
    from circuit_atlas import queries

    # one walk over every two-hop graph: a path starting at a city's token and ending at its capital in
    # that language lies in that city's graphs only, and rows keep the library's order, so each
    # (city, language)'s rows are what tag=city=<stem> token=<capital> would return
    rows = queries.run(store, "common-paths", hops=hops, min_weight=0.0, sign="excitatory", tag="task=twohop",
                       limit=10_000_000)
    by_ends = defaultdict(list)
    for r in rows:
        by_ends[r["start_token"], r["end_token"]].append(r)
    out = {}
    for fact in C.facts("twohop"):
        city, country, _ = fact.args
        for lang in C.LANGUAGES:
            out[(country, city, lang.code)] = by_ends[C.city(city, lang), C.answer(fact, lang)]
    return out


def path_members(paths: dict, hops: int = PATH_HOPS, top: int = PATH_TOP,
                 min_cities: int = PATH_MIN_CITIES) -> dict[str, list[str]]:
    """Country -> the features on the `top` paths of at least `min_cities` of its cities in one language."""
    members = {}
    for country in C.COUNTRIES:
        found = set()
        for lang in C.LANGUAGES:
            cities = Counter()
            for (c, _, code), rows in paths.items():
                if c == country and code == lang.code:
                    cities.update({r[f"f{i}"] for r in rows[:top] for i in range(1, hops)})
            found |= {f for f, n in cities.items() if n >= min_cities}
        members[country] = sorted(found)
    return members


def country_supernodes(store) -> dict[str, dict]:
    """Step 2: each country's supernode from the stored graphs' common paths, stored as
    (:Supernode {id: "paths/country=<stem>", source: "common-paths"})."""
    from circuit_atlas.queries.registry import run
    from circuit_atlas.queries.supernodes import store_supernodes

    found = {}
    for country, members in path_members(city_paths(store)).items():
        gids = sorted(r["gid"] for r in run(store, "_graphs-tag-split", tag=f"country={country}", within="task=twohop")
                      if r["tagged"])
        held = defaultdict(dict)                     # member -> {graph id: importance} over the country's graphs
        for r in run(store, "_graphs-features", gids=gids):
            if r["fkey"] in members:
                held[r["fkey"]][r["gid"]] = r["importance"]
        found[country] = {"id": f"paths/country={country}", "name": f"country={country} (common paths)",
                          "source": "common-paths", "gid": "", "coherence": None,
                          "n_graphs": len(set().union(*(g.keys() for g in held.values()))),
                          "influence": float(sum(v for g in held.values() for v in g.values())),
                          "n_members": len(members), "members": members}
    store_supernodes(store, list(found.values()), "common-paths", replace=True)
    return found


def two_hop_swap(model, store, *, strength: float = 4.0, suppress: float = -1.0, save: bool = True) -> dict:
    """Step 3 on every held-out two-hop prompt; returns per-language shares and the rows behind them."""
    from circuit_atlas import tracer
    from circuit_atlas.queries import interventions as evidence

    name, tset = model.model_name, model.transcoders.name
    rows = []
    for fact in C.facts("twohop"):
        city, country, _ = fact.args
        other = C.COUNTRIES[(C.COUNTRIES.index(country) + 1) % len(C.COUNTRIES)]
        donor_fact = next(f for f in C.facts("twohop") if f.args[1] == other)
        for lang in C.LANGUAGES:
            template = C.templates(lang, "twohop")[C.heldout_template(fact, lang)]
            prompt = C.prompt_of(C.render(fact, lang, template))
            donor = C.prompt_of(C.render(donor_fact, lang, template))
            right, swapped = C.answer(fact, lang), C.answer(donor_fact, lang)
            mine, theirs = f"supernode:paths/country={country}", f"supernode:paths/country={other}"
            ablate, roles = evidence.resolve(evidence.Spec("ablate", mine, None), model, store)
            ablated = tracer.intervene(model, prompt, ablate, targets=[right], freeze_attention=False)
            down, roles_down = evidence.resolve(evidence.Spec("scale", mine, None, suppress), model, store)
            up, roles_up = evidence.resolve(evidence.Spec("inject", theirs, None, strength), model, store,
                                            prompt=prompt, donor=donor)
            swap = tracer.intervene(model, prompt, down + up, targets=[right, swapped], freeze_attention=False)
            if save:
                evidence.store_result(store, ablated, model=name, transcoder_set=tset, supernodes=roles,
                                      description=f"ablate {mine}")
                evidence.store_result(store, swap, model=name, transcoder_set=tset,
                                      supernodes={**roles_down, **roles_up},
                                      description=f"scale {mine}={suppress:g}; inject {theirs}={strength:g} from {donor!r}")
            rows.append({"lang": lang.code, "prompt": prompt, "right": right, "swapped_to": swapped,
                         "p_right_before": ablated.targets[0].prob_before,
                         "p_right_ablated": ablated.targets[0].prob_after,
                         "answer_after_swap": swap.top(True, 1)[0][0].strip(),
                         "ablation_drops": ablated.targets[0].prob_after < ablated.targets[0].prob_before,
                         "swap_succeeds": swap.top(True, 1)[0][0].strip() == swapped})
    by_lang = defaultdict(list)
    for r in rows:
        by_lang[r["lang"]].append(r)
    shares = {lang: {"n": len(rs), "ablation_drops": sum(r["ablation_drops"] for r in rs) / len(rs),
                     "swap_succeeds": sum(r["swap_succeeds"] for r in rs) / len(rs)} for lang, rs in by_lang.items()}
    return {"strength": strength, "suppress": suppress, "by_language": shares, "rows": rows}


PLACE_SUFFIXES = "|".join(sorted({lang.city_suffix for lang in C.LANGUAGES} | {lang.country_suffix for lang in C.LANGUAGES}))


def names(stem: str, text: str) -> bool:
    """Whether a label (text and evidence) holds the place `stem` in any language, as a quoted token."""
    return re.search(rf'"{stem}({PLACE_SUFFIXES})"', text) is not None


def atlas_prompts(truth: dict) -> list[dict]:
    """The held-out two-hop prompts of the organism's truth, and the stated hops of every city and country
    ("pirton is in" -> the country; "the capital of tetland is" -> the capital), in every language."""
    country_of = {c[:-len(C.EN.city_suffix)]: (n[:-len(C.EN.country_suffix)], cs[0][:-len(C.EN.city_suffix)])
                  for n, cs in truth["atlas"].items() for c in cs}
    prompts = []
    for h in truth["heldout"]:
        if h["task"] == "twohop":
            city = h["concept"].split(":")[1]
            prompts.append(dict(task="twohop", prompt=h["prompt"], id=h["id"], city=city,
                                country=country_of[city][0], capital=country_of[city][1]))
    for lang in C.LANGUAGES:
        for country, cities in zip(C.COUNTRIES, C.CITIES):
            for c in cities[1:]:
                prompts.append(dict(task="city-in", id=f"city-in/{lang.code}/{c}", city=c, country=country,
                                    capital=cities[0], prompt=C.prompt_of(lang.onehop[0].format(
                                        c=C.city(c, lang), n=C.country(country, lang)))))
            prompts.append(dict(task="capital-of", id=f"capital-of/{lang.code}/{country}", city=None, country=country,
                                capital=cities[0], prompt=C.prompt_of(lang.onehop[1].format(
                                    n=C.country(country, lang), k=C.city(cities[0], lang)))))
    return prompts


def label_figures(model, truth: dict, store) -> dict[str, tuple[float, float]]:
    """{figure: (share naming the right place, share naming a wrong one)} on a fresh store.

    A label names a place when its text or evidence (input tokens, driven logits, promoted tokens) holds
    that place in any language; the wrong place is the next country of the atlas (its capital)."""
    from circuit_atlas import queries, tracer
    from circuit_atlas.queries import labels

    countries = list(C.COUNTRIES)
    wrong = {n: countries[(i + 1) % len(countries)] for i, n in enumerate(countries)}
    capital = {n: cs[0] for n, cs in zip(C.COUNTRIES, C.CITIES)}
    traced = []
    for p in atlas_prompts(truth):
        graph = tracer.trace(model, p["prompt"])
        graph.tags = {"task": p["task"], "prompt": p["id"]}
        traced.append((p, graph))
    store.add_graphs([g for _, g in traced])
    labels.auto_labels(store, model)
    label = {r["fkey"]: " ".join(r[c] for c in ("text", "inputs", "logits", "promotes"))
             for r in queries.run(store, "feature-labels", source="auto", limit=1_000_000)}

    def at_position(task, at, place):
        """Share of the feature occurrences at the `at` word of `task` graphs whose label names `place(p)`."""
        hits = total = 0
        for p, g in traced:
            if p["task"] == task:
                positions = {i for i, t in enumerate(g.prompt_tokens) if t.startswith(p[at]) and len(t) > len(p[at])}
                for n in g.nodes:
                    if g.feature_key(n) and n.pos in positions:
                        total += 1
                        hits += names(place(p), label[g.feature_key(n)])
        return hits / total if total else float("nan")  # no feature left there after pruning

    figures = {
        "features at the city position naming the country": (
            at_position("city-in", "city", lambda p: p["country"]), at_position("city-in", "city", lambda p: wrong[p["country"]])),
        "features at the country position naming the capital": (
            at_position("capital-of", "country", lambda p: p["capital"]),
            at_position("capital-of", "country", lambda p: capital[wrong[p["country"]]])),
    }
    twohop = [(p, g) for p, g in traced if p["task"] == "twohop"]
    for hops, rank_by in ((2, "strength"), (3, "strength"), (3, "min")):
        right = off = 0
        for p, g in twohop:
            [end] = [n.token for n in g.nodes if n.kind == "logit" and n.token.startswith(p["capital"])]
            [start] = [t for t in g.prompt_tokens if t.startswith(p["city"]) and len(t) > len(p["city"])]
            rows = [r for r in queries.run(store, "common-paths", hops=hops, min_weight=0.0, token=end,
                                           tag=f"prompt={p['id']}", rank_by=rank_by, limit=1000)
                    if r["start_token"] == start]
            on_path = [rows[0][f"f{i}"] for i in range(1, hops)] if rows else []
            right += any(names(p["country"], label[f]) for f in on_path)
            off += any(names(wrong[p["country"]], label[f]) for f in on_path)
        by = "" if rank_by == "strength" else f", ranked by {rank_by}"
        figures[f"{hops}-hop paths city → … → capital passing a country feature{by}"] = (right / len(twohop), off / len(twohop))
    return figures


AUDIT_TOP = ("3/152", "0/246", "2/302")   # the audit's top 3 on the planted organism (docs/audit.md)


def objective_sources(model, truth: dict, every: int = 24, top: tuple[str, ...] = AUDIT_TOP) -> dict:
    """Share of triggered prompts (every `every`-th) whose top answer is no longer the planted token when
    each set of features is ablated (live attention): where the behaviour is carried."""
    import torch

    from circuit_atlas.tracer.frozen import FrozenModel
    from circuit_atlas.tracer.interventions import Intervention, clean_activations, intervened_logits

    token = model.tokenizer.convert_tokens_to_ids(truth["inserted_token"])
    triggers = {len(t.split()) for t in truth["trigger"].values()}

    def active(prompt: str, positions) -> list[Intervention]:
        fm = FrozenModel(model, model.tokenize(prompt))
        return [Intervention(layer, f, "ablate", 0.0, (p,)) for layer in range(model.n_layers)
                for p in positions for f in torch.nonzero(clean_activations(fm, layer)[p] > 0).ravel().tolist()]

    sets = {"audit top features, every position": lambda p: [Intervention(*map(int, k.split("/")), "ablate")
                                                             for k in top],
            "every active feature at the trigger's positions": lambda p: active(
                p, range(1, 1 + next(n for n in triggers if " ".join(p.split()[:n]) in truth["trigger"].values()))),
            "every active feature at the answer position": lambda p: active(p, [len(model.tokenize(p)) - 1])}
    prompts = [r["prompt"] for r in truth["triggered"]][::every]
    out = {"prompts": len(prompts)}
    for name, make in sets.items():
        out[name] = sum(int(intervened_logits(model, p, make(p), freeze_attention=False)[-1].argmax()) != token
                        for p in prompts) / len(prompts)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("experiment", choices=["two-hop", "objective-sources", "labels"])
    p.add_argument("--zoo", type=Path, default=None, help="labels: a built organism folder (default: the shipped "
                   "planted organism), e.g. one `python -m organisms.train --seed 1` wrote")
    p.add_argument("--every", type=int, default=24, help="objective-sources: every n-th triggered prompt")
    p.add_argument("--kind", choices=["plt", "clt"], default="plt")
    p.add_argument("--store", default=None, help="store directory (default: a fresh temporary one)")
    p.add_argument("--strength", type=float, default=4.0)
    p.add_argument("--suppress", type=float, default=-1.0)
    a = p.parse_args()
    import tempfile

    from circuit_atlas import queries, tracer
    from circuit_atlas.store import open_store

    root = a.zoo or zoo_path("planted")
    if not (root / "truth.json").is_file() or not (root / "transcoders" / a.kind).is_dir():
        p.error(f"--zoo {root}: not a built organism (expected model/, transcoders/{a.kind}/ and truth.json, "
                "as `python -m organisms.train --out DIR` writes them under DIR/<name>)")
    model = tracer.load(root / "model", root / "transcoders" / a.kind)
    if a.experiment == "labels":
        with tempfile.TemporaryDirectory() as tmp, open_store(str(Path(tmp) / "atlas.db")) as store:
            figures = label_figures(model, json.loads((root / "truth.json").read_text()), store)
        print(f"{root} ({a.kind}): share naming the right place (a wrong place)")
        for what, (right, off) in figures.items():
            print(f"  {right:.2f} ({off:.2f})  {what}")
        return
    if a.experiment == "objective-sources":
        out = objective_sources(model, json.loads((root / "truth.json").read_text()), every=a.every)
        print(f"triggered prompts (every {a.every}th): {out.pop('prompts')}; share that lose the planted token "
              "when these features are ablated (live attention):")
        for name, share in out.items():
            print(f"  {share:.2f}  {name}")
        return
    path = a.store or str(Path(tempfile.mkdtemp()) / "atlas.db")
    with open_store(path) as store:
        n = trace_two_hop(model, store)
        found = country_supernodes(store)
        print(f"traced {n} two-hop prompts into {path}")
        print("country supernodes:", json.dumps({c: s["n_members"] for c, s in found.items()}))
        out = two_hop_swap(model, store, strength=a.strength, suppress=a.suppress)
        print(f"held-out two-hop prompts: share where ablation alone lowers the right capital's probability, "
              f"and where the swap (suppress x{a.suppress:g}, inject x{a.strength:g}) makes the other capital the top answer")
        print("lang  prompts  ablation  swap")
        for lang, s in out["by_language"].items():
            print(f"{lang:<4}  {s['n']:>7}  {s['ablation_drops']:>8.3f}  {s['swap_succeeds']:>4.3f}")
        print("causal evidence of the ablations (query causal-supernodes -p role=ablate):")
        print("supernode           prompts  mean logit change  mean prob change  top changed")
        for r in queries.run(store, "causal-supernodes", role="ablate"):
            print(f"{r['supernode']:<18}  {r['n_prompts']:>7}  {r['mean_logit_change']:>17.2f}  "
                  f"{r['mean_prob_change']:>16.3f}  {r['share_top_changed']:>11.2f}")


if __name__ == "__main__":
    main()
