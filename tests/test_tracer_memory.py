"""Transcoder sets larger than memory: lazy encoders, bfloat16/float16 storage, CPU offload.

* A process traces with a PLT set of 4 x 128 MB (encoders and decoders of 262,144 features per layer)
  under a budget of 128 MB above what it held before loading it; the eager path, which holds the
  encoders, needs more than that budget, and both give the same graph.
* Lazy encoders (and offload, whose code path runs on the CPU too) give the same graph as eager ones
  on circuit-tracer's oracle fixtures, PLT and CLT.
* bfloat16 / float16 storage holds the weights in half the memory and stays close to float32.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from circuit_atlas import tracer
from circuit_atlas.tracer.attribution import attribute
from circuit_atlas.tracer.testing import build_model

ORACLE = Path(__file__).parent / "fixtures" / "oracle"
PROMPT = "The capital of the state containing Dallas is"
BUDGET_MB = 128

# Runs in a fresh process: imports and warms torch first, then reads VmHWM (the process's peak resident
# memory), loads the model and transcoders, traces, and reports how far the peak rose.
CHILD = """
import json, sys
import numpy as np, torch
import transformers.models.llama.modeling_llama  # noqa: F401  (imports are not what is measured)
from circuit_atlas import tracer
from circuit_atlas.tracer import attribution, frozen, prune, tracing  # noqa: F401

def peak_mb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM:"))

torch.randn(64, 64) @ torch.randn(64, 64)
model_dir, tc_dir, lazy, out = sys.argv[1], sys.argv[2], sys.argv[3] == "lazy", sys.argv[4]
before = peak_mb()
model = tracer.load(model_dir, tc_dir, lazy=lazy)
with torch.inference_mode():
    a = attribution.attribute(model, model.tokenize(sys.argv[5]), tracer.TraceConfig())
rise = peak_mb() - before
np.savez(out, adjacency=a.adjacency.numpy(), active=a.active_features.numpy())
print(json.dumps({"rise_mb": rise, "n_active": len(a.active_features)}))
"""


def _big_plt(directory: Path, n_layers: int, d_model: int, n_features: int, live: int = 48) -> int:
    """A PLT set with n_features per layer, of which `live` can fire; returns its size in bytes."""
    from safetensors.torch import save_file
    import yaml

    directory.mkdir(parents=True)
    g = torch.Generator().manual_seed(0)
    for layer in range(n_layers):
        threshold = torch.full((n_features,), 1e9)             # most features never fire ...
        alive = torch.randperm(n_features, generator=g)[:live]
        threshold[alive] = 0.5 * torch.rand(live, generator=g)  # ... these do, at some positions
        W_dec = torch.zeros(n_features, d_model)
        W_dec[alive] = 0.1 * torch.randn(live, d_model, generator=g)
        save_file({"W_enc": torch.randn(n_features, d_model, generator=g) / d_model ** 0.5, "W_dec": W_dec,
                   "b_enc": torch.zeros(n_features), "b_dec": torch.zeros(d_model),
                   "activation_function.threshold": threshold}, str(directory / f"layer_{layer}.safetensors"))
    (directory / "config.yaml").write_text(yaml.safe_dump(
        {"model_kind": "transcoder_set", "feature_input_hook": "mlp.hook_in", "feature_output_hook": "mlp.hook_out"}))
    return sum(f.stat().st_size for f in directory.glob("*.safetensors"))


def _child(model_dir, tc_dir, mode, out):
    done = subprocess.run([sys.executable, "-c", CHILD, str(model_dir), str(tc_dir), mode, str(out), PROMPT],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_trace_with_a_set_several_times_larger_than_the_budget(tmp_path):
    model_dir = tmp_path / "model"
    build_model(model_dir, "llama", n_layers=4, d_model=64)
    set_bytes = _big_plt(tmp_path / "plt", n_layers=4, d_model=64, n_features=262_144)
    assert set_bytes > 4 * BUDGET_MB * 2**20                      # 4 x 128 MB on disk

    lazy = _child(model_dir, tmp_path / "plt", "lazy", tmp_path / "lazy.npz")
    eager = _child(model_dir, tmp_path / "plt", "eager", tmp_path / "eager.npz")
    assert lazy["n_active"] > 50                                   # a real graph, not an empty one
    assert lazy["rise_mb"] < BUDGET_MB, lazy                       # the lazy trace fits the budget
    assert eager["rise_mb"] > BUDGET_MB, eager                     # holding the encoders (256 MB) does not
    a, b = np.load(tmp_path / "lazy.npz"), np.load(tmp_path / "eager.npz")
    np.testing.assert_array_equal(a["active"], b["active"])
    np.testing.assert_allclose(a["adjacency"], b["adjacency"], rtol=0, atol=1e-6 * np.abs(b["adjacency"]).max())


@pytest.mark.parametrize("kind", ["plt", "clt"])
def test_lazy_encoders_and_offload_give_the_eager_graph(kind):
    eager = tracer.load(ORACLE / "model", ORACLE / "transcoders" / f"tiny-{kind}")
    lazy = tracer.load(ORACLE / "model", ORACLE / "transcoders" / f"tiny-{kind}", lazy=True, offload=True)
    assert lazy.transcoders.lazy and not eager.transcoders.lazy
    config = tracer.TraceConfig(max_feature_nodes=40, batch_size=16)   # ranked queue, several batches
    with torch.inference_mode():
        a = attribute(eager, eager.tokenize(PROMPT), config)
        b = attribute(lazy, lazy.tokenize(PROMPT), config)
    assert torch.equal(a.active_features, b.active_features) and torch.equal(a.selected, b.selected)
    torch.testing.assert_close(b.adjacency, a.adjacency, rtol=0, atol=1e-6 * float(a.adjacency.abs().max()))
    assert torch.equal(lazy.transcoders.W_enc[1], eager.transcoders.W_enc[1])   # a whole layer, read on demand


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_storage_stays_close_to_float32(dtype):
    full = tracer.load(ORACLE / "model", ORACLE / "transcoders" / "tiny-clt")
    half = tracer.load(ORACLE / "model", ORACLE / "transcoders" / "tiny-clt", dtype=dtype)
    assert half.transcoders.W_enc[0].dtype == dtype                # held in half the bytes ...
    assert half.transcoders.decoders(0, torch.tensor([20, 21])).dtype == torch.float32   # ... used in float32
    with torch.inference_mode():
        a = attribute(full, full.tokenize(PROMPT), tracer.TraceConfig())
        b = attribute(half, half.tokenize(PROMPT), tracer.TraceConfig())
    assert torch.equal(a.active_features, b.active_features)      # no threshold crossed on this prompt
    error = float((b.adjacency - a.adjacency).abs().max() / a.adjacency.abs().max())
    assert 0 < error < {torch.bfloat16: 2e-2, torch.float16: 2e-3}[dtype], error


def test_cli_lazy_and_dtype_options(tmp_path):
    from click.testing import CliRunner

    from circuit_atlas.cli import main
    from circuit_atlas.ingest.formats import read_graph_file

    graphs = {}
    for name, extra in {"eager": [], "lazy": ["--lazy"], "bf16": ["--lazy", "--dtype", "bfloat16"]}.items():
        out = tmp_path / f"{name}.json"
        result = CliRunner().invoke(main, ["trace", "--model", str(ORACLE / "model"), "--transcoders",
                                           str(ORACLE / "transcoders" / "tiny-plt"), PROMPT, "--out", str(out), *extra])
        assert result.exit_code == 0, result.output
        graphs[name] = read_graph_file(out)
    eager, lazy = graphs["eager"], graphs["lazy"]
    assert [n.node_id for n in lazy.nodes] == [n.node_id for n in eager.nodes] and lazy.n_edges == eager.n_edges
    assert graphs["bf16"].n_edges > 0
    bad = CliRunner().invoke(main, ["trace", "--model", str(ORACLE / "model"), "--transcoders",
                                    str(ORACLE / "transcoders" / "tiny-plt"), PROMPT, "--dtype", "int8"])
    assert bad.exit_code == 2 and "'int8' is not one of" in bad.output
