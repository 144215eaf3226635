"""Tiny random models and transcoders for tests and demos: built from transformers config classes, nothing downloaded.

    model_dir, transcoders_dir = build_tiny_model(tmp, arch="gemma2", transcoders="clt")

The model gets a word-level tokenizer (lower-cased words and punctuation), random weights with
non-trivial norm gains, and transcoders in circuit-tracer's on-disk format whose encoders and
thresholds are random and whose decoders (and skip) are fitted by ridge regression to the model's
MLP outputs, so that graphs keep feature nodes after pruning.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch

ARCHS = ("llama", "qwen2", "qwen3", "gemma2", "gemma3", "gpt2")
TRANSCODER_KINDS = ("plt", "plt-skip", "clt")
SPECIALS = ["<pad>", "<bos>", "<eos>", "<unk>"]
WORDS = """the a of to in is was and or not that it he she they we you his her for on with as by at from
up down out than then so if when where who what which how all some many more most other same new old big
small large little long short high low good bad first last one two three four five hot cold dark light
black white red blue green fast slow hard soft open close opposite capital state city country containing
fact michael jordan plays sport game basketball football dallas austin houston texas paris france london
england berlin germany rome italy cat dog sat mat bird fish tree house car water fire sun moon day night
year time man woman child people world say go make know think take see come want look find give
. , ! ? : ; - ( ) 0 1 2 3 4 5 6 7 8 9""".split()

# default transcoder hook points per architecture family (circuit-tracer config names)
DEFAULT_HOOKS = {"gemma2": ("ln2.hook_normalized", "hook_mlp_out"), "gemma3": ("mlp.hook_in", "mlp.hook_out"),
                 "gpt2": ("hook_resid_mid", "hook_mlp_out")}


def build_tokenizer(model_dir: Path):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(SPECIALS + list(dict.fromkeys(WORDS)))}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.decoder = decoders.WordPiece(prefix="##")  # joins tokens with spaces
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<bos>", eos_token="<eos>",
                                   pad_token="<pad>", unk_token="<unk>")
    fast.save_pretrained(model_dir)
    return len(vocab)


def _config(arch: str, vocab_size: int, n_layers: int, d_model: int):
    import transformers as tf

    common = dict(vocab_size=vocab_size, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    llama_like = dict(hidden_size=d_model, intermediate_size=2 * d_model, num_hidden_layers=n_layers,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                      initializer_range=0.2, tie_word_embeddings=False, **common)
    if arch == "llama":
        return tf.LlamaConfig(**llama_like)
    if arch == "qwen2":  # biases on q, k, v
        return tf.Qwen2Config(**llama_like)
    if arch == "qwen3":  # q/k norms, explicit head_dim
        return tf.Qwen3Config(head_dim=d_model // 4, **llama_like)
    gemma = dict(llama_like, head_dim=d_model // 4, query_pre_attn_scalar=d_model // 4, sliding_window=4)
    if arch == "gemma2":  # embedding scale, four norms, attention and final logit softcapping
        return tf.Gemma2Config(final_logit_softcapping=3.0, attn_logit_softcapping=50.0, **gemma)
    if arch == "gemma3":
        return tf.Gemma3TextConfig(final_logit_softcapping=3.0, **gemma)
    if arch == "gpt2":  # LayerNorms, position embeddings, tied embeddings
        return tf.GPT2Config(n_embd=d_model, n_layer=n_layers, n_head=4, n_positions=64, initializer_range=0.2,
                             **common)
    raise ValueError(f"unknown arch {arch!r}; choose from {', '.join(ARCHS)}")


def build_model(model_dir: Path, arch: str = "llama", seed: int = 0, n_layers: int = 2, d_model: int = 64):
    from transformers import AutoModelForCausalLM

    model_dir.mkdir(parents=True, exist_ok=True)
    vocab_size = build_tokenizer(model_dir)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(_config(arch, vocab_size, n_layers, d_model)).float()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():  # non-trivial norm gains (and LayerNorm biases), so norm handling is tested
        for name, p in model.named_parameters():
            if "norm" in name or ".ln_" in name:
                base = 0.0 if ("gemma" in arch or name.endswith("bias")) else 1.0
                p.copy_(base + 0.2 * torch.randn(p.shape, generator=g))
    model.save_pretrained(model_dir)
    return model


def _mlp_data(model, input_hook: str, output_hook: str, seed: int, n_seqs: int = 96):
    """Per layer (x at the transcoder input hook, y at its output hook) on random sequences, position 0 dropped."""
    from circuit_atlas.tracer.architectures import adapt

    arch = adapt(model)
    g = torch.Generator().manual_seed(seed + 400)
    ids = torch.randint(len(SPECIALS), model.config.vocab_size, (n_seqs, 12), generator=g)
    ids[:, 0] = 1
    X, Y, handles = {}, {}, []
    flat = lambda t: t[:, 1:].reshape(-1, t.shape[-1]).detach()  # noqa: E731
    for l, layer in enumerate(arch.layers):
        norm = layer.mlp_norm

        def on_norm(mod, args, out, l=l, norm=norm):
            x = args[0]
            if input_hook == "hook_resid_mid":
                X[l] = flat(x)
            elif input_hook == "ln2.hook_normalized":
                X[l] = flat((x - x.mean(-1, keepdim=True) if norm.center else x) * norm.inv_scale(x))

        def on_mlp(mod, args, out, l=l):
            if input_hook == "mlp.hook_in":
                X[l] = flat(args[0])
            Y[l] = flat(out)

        handles.append(norm.module.register_forward_hook(on_norm))
        handles.append(layer.mlp.register_forward_hook(on_mlp))
        if output_hook == "hook_mlp_out" and layer.post_mlp_norm is not None:
            handles.append(layer.post_mlp_norm.module.register_forward_hook(
                lambda mod, args, out, l=l: Y.__setitem__(l, flat(out))))
    with torch.no_grad():
        model(ids)
    for h in handles:
        h.remove()
    return X, Y


def _ridge(Z: torch.Tensor, Y: torch.Tensor, lam: float = 1e-3) -> torch.Tensor:
    return torch.linalg.solve(Z.T @ Z + lam * len(Z) * torch.eye(Z.shape[1]), Z.T @ Y)


def build_transcoders(tc_dir: Path, model, kind: str = "plt", seed: int = 0, d_transcoder: int = 128,
                      input_hook: str = "mlp.hook_in", output_hook: str = "mlp.hook_out",
                      activation: str = "jumprelu", k: int = 8) -> None:
    """Write a PLT (layer_{i}.safetensors) or CLT (W_enc_{i}/W_dec_{i}.safetensors) set plus config.yaml."""
    import yaml
    from safetensors.torch import save_file

    if kind not in TRANSCODER_KINDS:
        raise ValueError(f"unknown transcoder kind {kind!r}; choose from {', '.join(TRANSCODER_KINDS)}")
    tc_dir.mkdir(parents=True, exist_ok=True)
    X, Y = _mlp_data(model, input_hook, output_hook, seed)
    L, D, F = len(X), X[0].shape[1], d_transcoder
    g = torch.Generator().manual_seed(seed + 100)
    W_enc = [torch.randn(F, D, generator=g) / math.sqrt(D) * (1 / X[l].std()) for l in range(L)]
    b_enc = [0.1 * torch.randn(F, generator=g) for _ in range(L)]
    threshold = [0.5 + torch.rand(F, generator=g) for _ in range(L)]

    def encode(l, x):
        pre = x @ W_enc[l].T + b_enc[l]
        if activation == "jumprelu":
            return pre * (pre > threshold[l])
        if activation == "topk":
            return pre * torch.zeros_like(pre).scatter_(-1, pre.topk(k, dim=-1).indices, 1.0)
        return torch.relu(pre)

    acts = [encode(l, X[l]) for l in range(L)]
    ones = lambda n: torch.ones(n, 1)  # noqa: E731
    config = {"model_kind": "transcoder_set" if kind != "clt" else "cross_layer_transcoder",
              "scan": f"tiny-{kind}-seed{seed}", "feature_input_hook": input_hook, "feature_output_hook": output_hook}
    if activation != "jumprelu":
        config["activation"] = activation
    if activation == "topk":
        config["k"] = k
    if kind != "clt":
        for l in range(L):
            skip = kind == "plt-skip"
            Z = torch.cat([acts[l]] + ([X[l]] if skip else []) + [ones(len(X[l]))], 1)
            solution = _ridge(Z, Y[l])
            tensors = {"W_enc": W_enc[l], "W_dec": solution[:F], "b_enc": b_enc[l], "b_dec": solution[-1]}
            if activation == "jumprelu":
                tensors["activation_function.threshold"] = threshold[l]
            if skip:
                tensors["W_skip"] = solution[F:F + D].T
            save_file({n: t.contiguous() for n, t in tensors.items()}, tc_dir / f"layer_{l}.safetensors")
    else:
        W_dec = [torch.zeros(F, L - i, D) for i in range(L)]
        b_dec = []
        for j in range(L):  # output layer j is decoded from the features of layers 0 .. j
            solution = _ridge(torch.cat(acts[: j + 1] + [ones(len(X[j]))], 1), Y[j])
            for i in range(j + 1):
                W_dec[i][:, j - i] = solution[i * F:(i + 1) * F]
            b_dec.append(solution[-1])
        for i in range(L):
            enc = {f"W_enc_{i}": W_enc[i], f"b_enc_{i}": b_enc[i], f"b_dec_{i}": b_dec[i]}
            if activation == "jumprelu":
                enc[f"threshold_{i}"] = threshold[i]
            save_file({n: t.contiguous() for n, t in enc.items()}, tc_dir / f"W_enc_{i}.safetensors")
            save_file({f"W_dec_{i}": W_dec[i].contiguous()}, tc_dir / f"W_dec_{i}.safetensors")
    (tc_dir / "config.yaml").write_text(yaml.safe_dump(config))


def build_tiny_model(out_dir: str | Path, arch: str = "llama", transcoders: str = "plt", seed: int = 0,
                     **transcoder_options) -> tuple[Path, Path]:
    """Write a tiny random `arch` model and `transcoders` ("plt", "plt-skip", "clt") under out_dir.

    Returns (model_dir, transcoders_dir). `transcoder_options` go to build_transcoders
    (d_transcoder, input_hook, output_hook, activation: jumprelu | relu | topk, k).
    """
    out_dir = Path(out_dir)
    model_dir, tc_dir = out_dir / "model", out_dir / f"transcoders-{transcoders}"
    model = build_model(model_dir, arch, seed)
    hooks = DEFAULT_HOOKS.get(arch, ("mlp.hook_in", "mlp.hook_out"))
    options = {"input_hook": hooks[0], "output_hook": hooks[1], **transcoder_options}
    build_transcoders(tc_dir, model, transcoders, seed, **options)
    return model_dir, tc_dir


def adjacency_by_intervention(model, attribution) -> torch.Tensor:
    """The adjacency matrix again, by intervention instead of gradients: for every source node, add what it
    writes to the frozen model's residual stream and read the change at every target. (N, N) like
    `attribution.adjacency`; one batched forward pass over all sources, so only for tiny models."""
    from circuit_atlas.tracer.attribution import _nodes
    from circuit_atlas.tracer.frozen import FrozenModel

    fm = FrozenModel(model, attribution.input_ids)
    active, _, encoders, sources = _nodes(fm)
    L, (P, D), n_cols = len(fm.arch.layers), fm.resid0.shape, sources.n_cols
    n_active = len(active)
    resid_delta = torch.zeros(n_cols, P, D)                        # (sources, P, D) added to r_0
    write_delta = torch.zeros(n_cols, L, P, D)                     # (sources, L, P, D) added where layers write
    for l in range(L):
        for p in range(P):
            for slot, col in enumerate(sources.cols[l][p].tolist()):
                if col < n_cols:
                    write_delta[col, l, p] += sources.vectors[l][p, slot]
            write_delta[n_active + l * P + p, l, p] = sources.errors[l, p]
    for p in range(P):
        resid_delta[n_active + L * P + p, p] = sources.tokens[p]
    reads, final = fm.forward(resid_delta, list(write_delta.unbind(1)))
    reads0, final0 = fm.forward(torch.zeros(P, D), [torch.zeros(P, D)] * L)   # biases alone
    # rows: selected features (their pre-activation change), then logits (demeaned logit change)
    rows = []
    for f in attribution.selected.tolist():
        layer, pos, _ = active[f].tolist()
        rows.append((reads[layer][:, pos] - reads0[layer][pos]) @ encoders[f])
    W_U = fm.arch.W_U
    for token in attribution.logit_ids.tolist():
        rows.append((final[:, P - 1] - final0[P - 1]) @ (W_U[token] - W_U.mean(0)))
    by_source = torch.stack(rows)                                  # (targets, n_cols)
    columns = torch.cat([attribution.selected, torch.arange(n_active, n_cols)])
    n_sel, n_logits = len(attribution.selected), len(attribution.logit_ids)
    N = len(columns) + n_logits
    adjacency = torch.zeros(N, N)
    adjacency[:n_sel, :len(columns)] = by_source[:n_sel][:, columns]
    adjacency[N - n_logits:, :len(columns)] = by_source[n_sel:][:, columns]
    return adjacency
