"""Automatic labels and signed paths against the planted truth of a model organism's two-hop facts.

The planted organism learned a fictional atlas (organisms/corpus.py): city -> country -> capital, in
three languages with disjoint vocabularies. `label_figures` (organisms/experiments.py) traces the 72
held-out two-hop prompts ("the capital of the country containing pirton is" -> tudton) and the stated
hops ("pirton is in" -> tetland, "the capital of tetland is" -> tudton), labels them with `labels auto`
and the model's decoders, and counts the labels that name a place (in any language). Each figure is
compared with the same figure for a wrong place (the next country of the atlas): the labels must name
the right one far more often. The figures of the shipped zoo (PLT, seed 0) are printed and stated in
docs/queries.md, beside those of other builds of the same recipe.
"""
from __future__ import annotations

import json

import pytest

from circuit_atlas.organisms.experiments import atlas_prompts, label_figures, names


def test_names_reads_a_place_in_any_language_as_a_whole_token():
    assert names("tet", '"pirton" → say "tetland"') and names("tet", 'in: "tetie" ×3') and names("tud", '"tudku" +1.2')
    assert not names("tet", '"tetlandia"') and not names("tet", '"tet"') and not names("tet", '"stetland"')


def test_atlas_prompts_hold_every_stated_hop_and_the_heldout_two_hops():
    from circuit_atlas import organisms

    prompts = atlas_prompts(organisms.truth("planted"))
    by_task = {t: [p for p in prompts if p["task"] == t] for t in ("twohop", "city-in", "capital-of")}
    assert [len(v) for v in by_task.values()] == [72, 72, 24]
    pirton = next(p for p in by_task["city-in"] if p["id"] == "city-in/en/pir")
    assert (pirton["prompt"], pirton["country"], pirton["capital"]) == ("pirton is in", "tet", "tud")


@pytest.mark.slow
def test_labels_and_paths_name_the_planted_atlas(tmp_path):
    from circuit_atlas import organisms, tracer
    from circuit_atlas.store import open_store

    root = organisms.zoo_path("planted")
    model = tracer.load(root / "model", root / "transcoders" / "plt")
    with open_store(str(tmp_path / "atlas.db")) as store:
        figures = label_figures(model, json.loads((root / "truth.json").read_text()), store)
    for what, (right, off) in figures.items():
        print(f"{what}: {right:.2f} (a wrong place: {off:.2f})")
        assert right >= 3 * off, what
    assert figures["features at the country position naming the capital"][0] >= 0.7
    # the aim: common-paths into a capital reads city -> country feature -> capital for >= 80% of them
    assert figures["3-hop paths city → … → capital passing a country feature"][0] >= 0.8


def test_a_folder_that_is_no_organism_gets_one_line(tmp_path):
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-m", "circuit_atlas.organisms.experiments", "labels", "--zoo", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.splitlines()[-1].endswith(f"--zoo {tmp_path}: not a built organism (expected model/, "
                                                "transcoders/plt/ and truth.json, as `python -m organisms.train "
                                                "--out DIR` writes them under DIR/<name>)")
