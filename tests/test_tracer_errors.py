"""Bad input gets a named TracerError whose one-line message names the file or prompt and the problem."""
from __future__ import annotations

import json
import shutil
import sys
import subprocess
from pathlib import Path

import pytest

from circuit_atlas import tracer
from circuit_atlas.tracer.testing import build_tiny_model, build_transcoders

FIXTURES = Path(__file__).parent / "fixtures" / "oracle"
MODEL, PLT = FIXTURES / "model", FIXTURES / "transcoders" / "tiny-plt"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model():
    return tracer.load(MODEL, PLT)


def test_prompt_longer_than_the_model_positions(model):
    limit = model.arch.max_positions
    with pytest.raises(tracer.PromptTooLong, match=rf"but .* attends over at most {limit}"):
        tracer.trace(model, "the cat " * limit)


def test_unsupported_architecture_lists_the_supported_ones(tmp_path):
    shutil.copytree(MODEL, tmp_path / "model")
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    config["architectures"] = ["MambaForCausalLM"]
    (tmp_path / "model" / "config.json").write_text(json.dumps(config))
    with pytest.raises(tracer.UnsupportedArchitecture) as e:
        tracer.load(tmp_path / "model", PLT)
    assert "MambaForCausalLM" in str(e.value)
    for name in tracer.SUPPORTED_ARCHITECTURES:
        assert name in str(e.value)


def test_transcoders_of_another_width_name_both_shapes(tmp_path):
    model_dir, _ = build_tiny_model(tmp_path, "llama", "plt")   # d_model 64, 2 layers
    from transformers import AutoModelForCausalLM, LlamaConfig

    wide = AutoModelForCausalLM.from_config(LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                                        num_attention_heads=4, vocab_size=200))
    build_transcoders(tmp_path / "wide-tc", wide, "plt", d_transcoder=16)
    with pytest.raises(tracer.TranscoderMismatch, match=r"d_model 32.* d_model 64"):
        tracer.load(model_dir, tmp_path / "wide-tc")


def test_transcoder_tensor_of_wrong_shape_is_named(tmp_path):
    from safetensors.torch import load_file, save_file

    shutil.copytree(PLT, tmp_path / "tc")
    tensors = load_file(tmp_path / "tc" / "layer_1.safetensors")
    tensors["b_enc"] = tensors["b_enc"][:-3].contiguous()
    save_file(tensors, tmp_path / "tc" / "layer_1.safetensors")
    with pytest.raises(tracer.TranscoderMismatch, match=r"layer_1.safetensors: b_enc has shape \(125,\), expected \(128,\)"):
        tracer.load(MODEL, tmp_path / "tc")


def test_missing_files(tmp_path):
    shutil.copytree(PLT, tmp_path / "tc")
    (tmp_path / "tc" / "layer_1.safetensors").rename(tmp_path / "tc" / "layer_7.safetensors")
    with pytest.raises(tracer.MissingFile, match="layer_1.safetensors"):
        tracer.load(MODEL, tmp_path / "tc")
    (tmp_path / "tc" / "config.yaml").unlink()
    with pytest.raises(tracer.MissingFile, match="config.yaml"):
        tracer.load(MODEL, tmp_path / "tc")
    with pytest.raises(tracer.MissingFile, match="config.json"):
        tracer.load(tmp_path, PLT)


def test_unknown_hook_point_lists_the_supported_ones(tmp_path):
    shutil.copytree(PLT, tmp_path / "tc")
    config = (tmp_path / "tc" / "config.yaml").read_text().replace("mlp.hook_in", "hook_resid_pre")
    (tmp_path / "tc" / "config.yaml").write_text(config)
    with pytest.raises(tracer.TranscoderMismatch, match="hook_resid_pre.*supported: hook_resid_mid"):
        tracer.load(MODEL, tmp_path / "tc")


def test_explicit_targets(model):
    graph = tracer.trace(model, "The opposite of small is", tracer.TraceConfig(target_tokens=["big", "large"]))
    logits = [n for n in graph.nodes if n.kind == "logit"]
    assert [n.token for n in logits] == ["big", "large"]
    with pytest.raises(tracer.BadTarget, match="'big dog' is 2 tokens"):
        tracer.trace(model, "The opposite of small is", tracer.TraceConfig(target_tokens=["big dog"]))


def test_cli_traces_writes_json_and_ingests(tmp_path):
    from click.testing import CliRunner

    from circuit_atlas.cli import main
    from circuit_atlas.store import open_store
    from circuit_atlas.ingest.formats import read_graph_file

    out, store_dir = tmp_path / "graph.json", tmp_path / "store"
    args = ["--store", str(store_dir), "trace", "--model", str(MODEL), "--transcoders", str(PLT),
            "The opposite of small is", "--max-feature-nodes", "20", "--batch-size", "8", "--out", str(out), "--ingest"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    summary = result.stdout.strip().splitlines()[0]
    assert summary.startswith("graph ") and "nodes" in summary and "completeness" in summary
    graph_id = summary.split()[1].rstrip(":")
    written = read_graph_file(out)
    assert written.n_edges > 0 and sum(n.kind == "feature" for n in written.nodes) > 0
    with open_store(str(store_dir), read_only=True) as store:
        stored = store.get_graph(graph_id)
    assert (len(stored.nodes), stored.n_edges) == (len(written.nodes), written.n_edges)
    assert f"graph {graph_id}" in summary and "stored in" in result.stdout
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0 and "already in" in again.stdout


def test_cli_bad_prompt_is_one_error_line_and_exit_code_1():
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    bad = subprocess.run([sys.executable, "-m", "circuit_atlas", "trace", "--model", str(MODEL), "--transcoders",
                          str(PLT), "the cat " * 100], capture_output=True, text=True, env=env, timeout=300)
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines()[-1].startswith("Error: prompt 'the cat the cat")
    assert "201 tokens" in bad.stderr and "Traceback" not in bad.stderr
