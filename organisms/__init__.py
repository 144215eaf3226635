"""Model organisms: tiny Llama models trained here on a seeded trilingual corpus, with a planted hidden
objective, and transcoders on their MLPs. The truth about them is known, so traces, queries and audits
can be checked against it. See docs/organisms.md.

    organisms.zoo_path("planted")  ->  .../organisms/zoo/planted/{model, transcoders/plt, transcoders/clt, truth.json, metrics.json}
"""
from __future__ import annotations

import json
from pathlib import Path

ZOO = Path(__file__).parent / "zoo"
NAMES = ("planted", "control")   # planted: has the hidden objective; control: same training without it


class UnknownOrganism(KeyError):
    """No organism of that name in the zoo."""


def zoo_path(name: str) -> Path:
    """The folder of a shipped organism."""
    path = ZOO / name
    if not (path / "model" / "config.json").is_file():
        raise UnknownOrganism(f"no organism {name!r} in {ZOO}; shipped: {', '.join(NAMES)} "
                              f"(rebuild with `python -m organisms.train --out {ZOO}`)")
    return path


def truth(name: str) -> dict:
    """The ground truth beside the weights: prompt sets, trigger, inserted token (see corpus.ground_truth)."""
    return json.loads((zoo_path(name) / "truth.json").read_text())


def load(name: str):
    """(model, tokenizer, truth) of an organism, the model in float32 eval mode on CPU."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = zoo_path(name)
    model = AutoModelForCausalLM.from_pretrained(str(path / "model"), dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(str(path / "model")), truth(name)
