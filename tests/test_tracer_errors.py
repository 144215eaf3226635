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


def test_a_folder_of_transcoder_sets_names_them(tmp_path):
    """An organism's transcoders/ holds plt/ and clt/: naming the parent says which sets are inside."""
    for name in ("plt", "clt"):
        shutil.copytree(PLT, tmp_path / "transcoders" / name)
    with pytest.raises(tracer.MissingFile, match=r"transcoders: a folder of transcoder sets \(clt, plt\), not one "
                                                 r"set; give one of them, e.g. .*transcoders/clt$"):
        tracer.load(MODEL, tmp_path / "transcoders")


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


# ---------------------------------------------------------------- issue 13: names, prompts, files, warnings

ZOO = REPO / "organisms" / "zoo"


def _invoke(args):
    from click.testing import CliRunner

    from circuit_atlas.cli import main

    return CliRunner().invoke(main, args)


def test_model_name_comes_from_the_config_not_the_folder(tmp_path):
    """Both organisms live in folders named "model": their graphs must still say which model they are."""
    from circuit_atlas.ingest.formats import read_graph_file
    from circuit_atlas.store import open_store

    names = {}
    for organism in ("planted", "control"):
        model = tracer.load(ZOO / organism / "model", ZOO / organism / "transcoders" / "plt")
        graph = tracer.trace(model, "the cat is big", tracer.TraceConfig(max_feature_nodes=10))
        names[organism] = graph.model
        assert graph.model == json.loads((ZOO / organism / "model" / "config.json").read_text())["_name_or_path"]
        assert graph.slug == "the-cat-is-big"
    assert names == {"planted": "organisms/planted-seed0", "control": "organisms/control-seed0"}

    out, store_dir = tmp_path / "texas.json", tmp_path / "store"
    result = _invoke(["--store", str(store_dir), "trace", "--model", str(ZOO / "planted" / "model"), "--transcoders",
                      str(ZOO / "planted" / "transcoders" / "plt"), "the cat is big", "--max-feature-nodes", "10",
                      "--out", str(out), "--ingest"])
    assert result.exit_code == 0, result.output
    meta = json.loads(out.read_text())["metadata"]
    assert (meta["scan"], meta["slug"]) == ("organisms/planted-seed0", "texas")   # the viewer loads <slug>.json
    assert meta["info"]["transcoder_set"] == "organisms/planted-plt-seed0"
    assert read_graph_file(out).model == "organisms/planted-seed0"
    with open_store(str(store_dir), read_only=True) as store:
        stored = store.get_graph(result.stdout.split()[1].rstrip(":"))
    assert stored.model == "organisms/planted-seed0"

    renamed = _invoke(["trace", "--model", str(ZOO / "planted" / "model"), "--transcoders",
                       str(ZOO / "planted" / "transcoders" / "plt"), "the cat is big", "--max-feature-nodes", "10",
                       "--model-name", "my-org/planted", "--out", str(out), "--slug", "cat"])
    assert renamed.exit_code == 0, renamed.output
    meta = json.loads(out.read_text())["metadata"]
    assert (meta["scan"], meta["slug"]) == ("my-org/planted", "cat")


def test_a_local_path_in_name_or_path_falls_back_to_the_folder_name(tmp_path):
    shutil.copytree(ZOO / "control" / "model", tmp_path / "tiny-control")
    config = json.loads((tmp_path / "tiny-control" / "config.json").read_text())
    config["_name_or_path"] = "/home/someone/checkpoints/run7"
    (tmp_path / "tiny-control" / "config.json").write_text(json.dumps(config))
    assert tracer.load(tmp_path / "tiny-control", ZOO / "control" / "transcoders" / "plt").model_name == "tiny-control"


def test_a_target_outside_the_vocabulary_is_refused(model):
    assert "zanzibar" not in model.tokenizer.get_vocab()
    with pytest.raises(tracer.BadTarget, match="'Zanzibar' is not in the vocabulary"):
        tracer.trace(model, "The opposite of small is", tracer.TraceConfig(target_tokens=["Zanzibar"]))
    result = _invoke(["trace", "--model", str(MODEL), "--transcoders", str(PLT), "The opposite of small is",
                      "--target", "Zanzibar"])
    assert result.exit_code == 1 and result.output.strip().splitlines() == [
        f"Error: target 'Zanzibar' is not in the vocabulary of {model.model_name} (it would be <unk>); "
        "pick a word the model knows"]


def test_unknown_prompt_words_are_named_in_a_warning(model):
    vocab = model.tokenizer.get_vocab()
    assert "qwerty" not in vocab and "zorp" not in vocab and "small" in vocab
    with pytest.warns(tracer.TracerWarning, match=r"'Qwerty', 'Zorp' not in the vocabulary .* traced as <unk>"):
        graph = tracer.trace(model, "The opposite of Qwerty is Zorp", tracer.TraceConfig(max_feature_nodes=10))
    assert graph.prompt_tokens.count("<unk>") == 2
    result = _invoke(["trace", "--model", str(MODEL), "--transcoders", str(PLT), "The opposite of Qwerty is",
                      "--max-feature-nodes", "10"])
    assert result.exit_code == 0, result.output
    assert "Warning: prompt 'The opposite of Qwerty is': 'Qwerty' not in the vocabulary" in result.stderr
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error", tracer.TracerWarning)
        model.tokenize("The opposite of small is")   # known words: no warning


def test_token_ids_outside_the_vocabulary_and_empty_prompts_are_refused(model):
    vocab = model.arch.W_U.shape[0]
    with pytest.raises(tracer.BadPrompt, match=rf"token ids \[{vocab}\] are outside the vocabulary .*\[0, {vocab}\)"):
        tracer.trace(model, [1, 5, vocab])
    for empty in ("", "   ", []):
        with pytest.raises(tracer.BadPrompt, match="empty|no token to trace"):
            tracer.trace(model, empty)
    with pytest.raises(tracer.BadPrompt, match="no token to trace besides special tokens"):
        tracer.trace(model, [model.tokenizer.bos_token_id])
    result = _invoke(["trace", "--model", str(MODEL), "--transcoders", str(PLT), ""])
    assert result.exit_code == 1 and result.output.strip().splitlines() == [
        "Error: the prompt is empty; give at least one word to trace"]


def test_missing_checkpoint_files_are_named_in_one_line(tmp_path):
    for missing, named in (["model.safetensors"], "model.safetensors"), \
                          (["tokenizer.json", "tokenizer_config.json"], "tokenizer.json"):
        shutil.rmtree(tmp_path / "model", ignore_errors=True)
        shutil.copytree(MODEL, tmp_path / "model")
        for name in missing:
            (tmp_path / "model" / name).unlink()
        with pytest.raises(tracer.MissingFile, match=rf"{tmp_path / 'model' / named}: not found"):
            tracer.load(tmp_path / "model", PLT)
        result = _invoke(["trace", "--model", str(tmp_path / "model"), "--transcoders", str(PLT), "the cat"])
        assert result.exit_code == 1
        [line] = result.output.strip().splitlines()
        assert line.startswith(f"Error: {tmp_path / 'model' / named}: not found")


def test_missing_transcoder_layer_files_are_named(tmp_path):
    clt = tmp_path / "clt"
    shutil.copytree(ZOO / "planted" / "transcoders" / "clt", clt)      # a 4-layer CLT
    (clt / "W_enc_2.safetensors").unlink()
    with pytest.raises(tracer.MissingFile, match=r"W_enc_2.safetensors: encoder file not found"):
        tracer.load(ZOO / "planted" / "model", clt)
    shutil.copytree(ZOO / "planted" / "transcoders" / "clt", clt, dirs_exist_ok=True)
    (clt / "W_enc_3.safetensors").unlink()                              # the last layer, both files
    (clt / "W_dec_3.safetensors").unlink()
    with pytest.raises(tracer.MissingFile, match=r"W_enc_3.safetensors: encoder file not found"):
        tracer.load(ZOO / "planted" / "model", clt)

    plt = tmp_path / "plt"
    shutil.copytree(ZOO / "planted" / "transcoders" / "plt", plt)      # 4 layers
    (plt / "layer_3.safetensors").unlink()
    with pytest.raises(tracer.MissingFile, match=r"layer_3.safetensors: missing .* has 4 layers"):
        tracer.load(ZOO / "planted" / "model", plt)


def test_unwritable_out_is_refused_before_tracing(tmp_path, monkeypatch):
    import circuit_atlas.tracer.replacement as replacement

    loaded = []
    monkeypatch.setattr(replacement, "load", lambda *a, **k: loaded.append(a))
    out = tmp_path / "nonexistent" / "x.json"
    result = _invoke(["trace", "--model", str(MODEL), "--transcoders", str(PLT), "the cat", "--out", str(out)])
    assert result.exit_code == 1 and loaded == []
    assert result.output.strip().splitlines() == [
        f"Error: {out}: folder {out.parent} does not exist; create it or choose another --out"]


def test_low_replacement_score_warns_that_the_transcoders_may_be_another_models():
    from circuit_atlas.tracer.tracing import LOW_REPLACEMENT_SCORE

    planted = ZOO / "planted" / "model"
    prompt = "the opposite of big is"
    own = tracer.load(planted, ZOO / "planted" / "transcoders" / "plt")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error", tracer.TracerWarning)
        assert tracer.trace(own, prompt).scores["replacement"] >= LOW_REPLACEMENT_SCORE
    other = tracer.load(planted, ZOO / "control" / "transcoders" / "plt")   # same shapes, another organism
    with pytest.warns(tracer.TracerWarning, match=r"replacement score 0\.\d\d is below 0.6 .*: the transcoders \(organisms/control-plt"):
        graph = tracer.trace(other, prompt)
    assert graph.scores["replacement"] < LOW_REPLACEMENT_SCORE


def test_python_api_errors_are_tracer_errors(tmp_path):
    with pytest.raises(tracer.BadConfig, match="node_threshold must be between 0 and 1"):
        tracer.TraceConfig(node_threshold=2)
    shutil.copytree(MODEL, tmp_path / "model")
    (tmp_path / "model" / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(tracer.BadCheckpoint, match=rf"{tmp_path / 'model'}: transformers cannot load it"):
        tracer.load(tmp_path / "model", PLT)
    shutil.copytree(PLT, tmp_path / "tc")
    (tmp_path / "tc" / "layer_0.safetensors").write_bytes(b"garbage")
    with pytest.raises(tracer.TranscoderMismatch, match="layer_0.safetensors: not a readable safetensors file"):
        tracer.load(MODEL, tmp_path / "tc")
    with pytest.raises(tracer.BadConfig, match="device 'warp9'"):
        tracer.load(MODEL, PLT, device="warp9")
    for error in (tracer.BadConfig, tracer.BadCheckpoint, tracer.BadPrompt, tracer.MissingFile):
        assert issubclass(error, tracer.TracerError)


def test_progress_bar_only_when_asked():
    """Long traces show a tqdm bar of backward batches when asked, and nothing otherwise."""
    from tqdm import tqdm

    from circuit_atlas.tracer.attribution import _progress

    bar = _progress(3, True)
    assert isinstance(bar, tqdm) and bar.total == 3 and bar.desc == "backward batches"
    bar.close()
    assert not isinstance(_progress(3, False), tqdm)


def test_target_token_ids_cover_the_whole_vocabulary():
    """A target given as a token id is any id in [0, vocab_size): 0 and vocab_size - 1 included."""
    from circuit_atlas.tracer.attribution import _token_id

    assert _token_id(None, 0, 50) == 0 and _token_id(None, 49, 50) == 49
    for bad in (-1, 50):
        with pytest.raises(tracer.BadTarget, match=rf"target token id {bad} is outside the vocabulary \[0, 50\)"):
            _token_id(None, bad, 50)
