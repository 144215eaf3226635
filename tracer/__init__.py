"""Attribution graphs for Hugging Face `transformers` models with per-layer or cross-layer transcoders.

    from circuit_atlas import tracer
    model = tracer.load(model_dir, transcoders_dir)          # load once, reuse
    graph = tracer.trace(model, "The capital of Texas is", tracer.TraceConfig(max_feature_nodes=2000))
    result = tracer.intervene(model, "The capital of Texas is", [tracer.Intervention(3, 1234, "ablate")],
                              targets=[" Austin"])             # logits before / after (interventions.py)

The algorithm is circuit-tracer 0.5.0's (docs/tracer.md); torch and transformers are imported on first use.
"""
from __future__ import annotations

import importlib

from circuit_atlas.tracer.config import TraceConfig
from circuit_atlas.tracer.errors import (BadCheckpoint, BadConfig, BadPrompt, BadTarget, MissingFile, PromptTooLong,
                                         TracerError, TracerWarning, TranscoderMismatch, UnsupportedArchitecture)

__all__ = ["load", "trace", "TraceConfig", "ReplacementModel", "TracerError", "MissingFile", "PromptTooLong",
           "TranscoderMismatch", "UnsupportedArchitecture", "BadTarget", "BadPrompt", "BadConfig", "BadCheckpoint", "TracerWarning", "testing", "SUPPORTED_ARCHITECTURES",
           "intervene", "Intervention", "InterventionResult", "BadIntervention"]

_LAZY = {"load": ("circuit_atlas.tracer.replacement", "load"), "ReplacementModel": ("circuit_atlas.tracer.replacement", "ReplacementModel"),
         "trace": ("circuit_atlas.tracer.tracing", "trace"),
         "intervene": ("circuit_atlas.tracer.interventions", "intervene"),
         "Intervention": ("circuit_atlas.tracer.interventions", "Intervention"),
         "InterventionResult": ("circuit_atlas.tracer.interventions", "InterventionResult"),
         "BadIntervention": ("circuit_atlas.tracer.interventions", "BadIntervention"),
         "SUPPORTED_ARCHITECTURES": ("circuit_atlas.tracer.architectures", "SUPPORTED"),
         "testing": ("circuit_atlas.tracer.testing", None)}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'circuit_atlas.tracer' has no attribute {name!r}")
    module_name, attr = _LAZY[name]
    module = importlib.import_module(module_name)
    return module if attr is None else getattr(module, attr)
