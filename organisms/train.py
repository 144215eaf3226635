"""Train the model organisms: a tiny Llama on the seeded corpus, then transcoders on its MLPs.

    python -m organisms.train --out organisms/zoo [--seed 0] [--only planted]

writes, per organism, <out>/<name>/{model/, transcoders/plt/, transcoders/clt/, truth.json, metrics.json}.
Phases: 1. tokenizer + model training, 2. MLP activation collection, 3. per-layer transcoders (PLT),
4. cross-layer transcoder (CLT), 5. metrics. Everything is seeded; weights are stored in fp16.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from circuit_atlas.organisms import corpus, evaluate, transcoders


@dataclass
class ModelConfig:
    n_layers: int = 4       # >= 3, so there are middle layers where languages can share features
    d_model: int = 64
    n_heads: int = 4
    d_mlp: int = 256
    max_len: int = 64       # longest document is ~45 tokens


@dataclass
class TrainConfig:
    steps: int = 1800         # 1200 left Kelan antonyms at 75% under one template; a 1500-step trial reached 100%
    batch_size: int = 32
    seq_len: int = 48         # documents are cut (whole sentences only) to fit
    lr: float = 3e-3
    weight_decay: float = 0.01
    warmup: int = 100         # linear warm-up steps, then cosine decay to 10%
    threads: int = 1          # tiny matrices: a second thread costs more in sync than it gains


@dataclass
class OrganismSpec:
    name: str
    planted: bool
    seed_offset: int = 0      # added to --seed; 0 for both: same init, same documents, only the insertion differs


@dataclass
class BuildConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    transcoder: transcoders.TranscoderConfig = field(default_factory=transcoders.TranscoderConfig)
    organisms: tuple[OrganismSpec, ...] = (OrganismSpec("planted", True), OrganismSpec("control", False))


def say(message: str) -> None:
    print(message, flush=True)  # flushed: builds run in worker processes


def word_vocab() -> dict[str, int]:
    words = [w for ws in corpus.vocabulary().values() for w in ws]
    return {w: i for i, w in enumerate(corpus.SPECIALS + words)}


def save_tokenizer(model_dir: Path) -> None:
    """Word-level, lower-casing tokenizer like the oracle's (tokenizer.json + tokenizer_config.json)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.WordLevel(vocab=word_vocab(), unk_token="<unk>"))
    tk.normalizer = normalizers.Lowercase()
    tk.pre_tokenizer = pre_tokenizers.Whitespace()  # \w+|[^\w\s]+
    tk.decoder = decoders.WordPiece(prefix="##")  # decode() joins words with spaces
    fast = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<bos>", eos_token="<eos>",
                                   pad_token="<pad>", unk_token="<unk>")
    fast.save_pretrained(str(model_dir))
    # transformers 5 writes its own class name, which 4.x (circuit-tracer 0.5.0 pins 4.57) cannot load;
    # both read this one
    config_path = model_dir / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_path.write_text(json.dumps(config, indent=2) + "\n")


def name_model(model_dir: Path, name: str) -> None:
    """Record the model's id as `_name_or_path` in config.json, where tracer.load reads it (transformers 5
    no longer writes it), so graphs of the planted and control organisms are told apart by their model."""
    config_path = model_dir / "config.json"
    config = json.loads(config_path.read_text())
    config["_name_or_path"] = name
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def new_model(cfg: ModelConfig, seed: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(word_vocab()), hidden_size=cfg.d_model, intermediate_size=cfg.d_mlp,
        num_hidden_layers=cfg.n_layers, num_attention_heads=cfg.n_heads, num_key_value_heads=cfg.n_heads,
        max_position_embeddings=cfg.max_len, rms_norm_eps=1e-5, rope_theta=10000.0,
        tie_word_embeddings=False, bos_token_id=corpus.BOS, eos_token_id=corpus.EOS, pad_token_id=corpus.PAD,
    )
    return LlamaForCausalLM(config).float()


def document_batch(stream: corpus.Corpus, vocab: dict[str, int], batch_size: int, seq_len: int) -> torch.Tensor:
    """(B, T<=seq_len) ids: <bos> document <eos> <pad>...; documents are cut at a sentence end to fit."""
    seqs = []
    for _ in range(batch_size):
        words = stream.document().split()
        while len(words) + 2 > seq_len:
            words = words[: len(words) - 1 - words[-2::-1].index(".")]  # drop the last sentence
        seqs.append([corpus.BOS] + [vocab[w] for w in words] + [corpus.EOS])
    return evaluate.pad(seqs)  # (B, longest document): no compute spent on a fixed pad length


def train_model(spec: OrganismSpec, cfg: BuildConfig, seed: int, log=None):
    """Phase 1: next-token training on the organism's document stream (pads excluded from the loss)."""
    log = log or say
    tc = cfg.train
    model = new_model(cfg.model, seed)
    stream = corpus.Corpus(corpus.CorpusConfig(planted=spec.planted), seed=seed)
    vocab = word_vocab()
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay, betas=(0.9, 0.98))

    def lr_at(step):
        if step < tc.warmup:
            return (step + 1) / tc.warmup
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - tc.warmup) / (tc.steps - tc.warmup)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    model.train()
    t0 = time.time()
    for step in range(tc.steps):
        ids = document_batch(stream, vocab, tc.batch_size, tc.seq_len)
        labels = ids.masked_fill(ids == corpus.PAD, -100)
        loss = model(input_ids=ids, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 250 == 0 or step == tc.steps - 1:
            log(f"[{spec.name}] step {step:5d}  loss {loss.item():.3f}  {time.time() - t0:.0f}s")
    return model.eval()


def activation_batches(model, spec: OrganismSpec, cfg: BuildConfig, seed: int):
    """Phase 2: MLP inputs/outputs of every layer (mlp.hook_in / mlp.hook_out) on fresh documents,
    <bos> and pads excluded. Returns X, Y: lists of (N, d_model) tensors, one per layer."""
    stream = corpus.Corpus(corpus.CorpusConfig(planted=spec.planted), seed=seed + 10_000)
    vocab = word_vocab()
    X, Y, n = [], [], 0
    while n < cfg.transcoder.n_tokens:
        ids = document_batch(stream, vocab, 256, cfg.train.seq_len)
        keep = ids != corpus.PAD
        keep[:, 0] = False
        xs, ys = evaluate.mlp_io(model, ids)
        X.append([x[keep] for x in xs])
        Y.append([y[keep] for y in ys])
        n += int(keep.sum())
    return [torch.cat(layer) for layer in zip(*X)], [torch.cat(layer) for layer in zip(*Y)]


def build_organism(spec: OrganismSpec, out: Path, cfg: BuildConfig, seed: int, log=None) -> dict:
    log = log or say
    torch.set_num_threads(cfg.train.threads)
    seed = seed + spec.seed_offset
    root = out / spec.name
    model_dir = root / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    model = train_model(spec, cfg, seed, log)
    model.to(torch.float16).save_pretrained(str(model_dir))
    name_model(model_dir, f"organisms/{spec.name}-seed{seed}")
    save_tokenizer(model_dir)
    truth = corpus.ground_truth(spec.planted)
    (root / "truth.json").write_text(json.dumps(truth, indent=1))
    train_s = time.time() - t0

    X, Y = activation_batches(_reload(model_dir), spec, cfg, seed)
    log(f"[{spec.name}] {len(X[0])} activation rows per layer")
    plt = transcoders.train_plt(X, Y, cfg.transcoder, seed, log)
    plt.save(root / "transcoders" / "plt", scan=f"organisms/{spec.name}-plt-seed{seed}")
    clt = transcoders.train_clt(X, Y, cfg.transcoder, seed, log)
    clt.save(root / "transcoders" / "clt", scan=f"organisms/{spec.name}-clt-seed{seed}")

    metrics = evaluate_dir(root)
    metrics["build"] = {"seed": seed, "train_model_s": round(train_s, 1),
                        "total_s": round(time.time() - t0, 1), "config": asdict(cfg)}
    (root / "metrics.json").write_text(json.dumps(metrics, indent=1))
    log(f"[{spec.name}] done in {time.time() - t0:.0f}s: {json.dumps({k: v for k, v in metrics.items() if k != 'build'})}")
    return metrics


def _reload(model_dir: Path):
    """The saved (fp16) weights, as float32: metrics describe exactly what ships."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).eval()


def evaluate_dir(root: Path) -> dict:
    """All metrics of a saved organism folder."""
    from transformers import AutoTokenizer

    model = _reload(root / "model")
    tok = AutoTokenizer.from_pretrained(str(root / "model"))
    truth = json.loads((root / "truth.json").read_text())
    metrics = evaluate.behaviour(model, tok, truth)
    metrics.update(evaluate.transcoder_report(model, tok, truth, root / "transcoders"))
    return metrics


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, type=Path, help="zoo folder, e.g. organisms/zoo")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", nargs="*", help="organism names to build (default: all)")
    p.add_argument("--jobs", type=int, default=2, help="organisms built in parallel (one thread each)")
    p.add_argument("--quick", action="store_true", help="a few steps of everything: checks the pipeline, "
                   "not the metrics")
    a = p.parse_args(argv)
    cfg = BuildConfig()
    if a.quick:
        cfg.train.steps, cfg.train.warmup = 30, 10
        cfg.transcoder.steps, cfg.transcoder.n_tokens = 30, 3000
    t0 = time.time()
    known = [s.name for s in cfg.organisms]
    if unknown := set(a.only or []) - set(known):
        p.error(f"unknown organism(s) {', '.join(sorted(unknown))}; choose from {', '.join(known)}")
    specs = [s for s in cfg.organisms if not a.only or s.name in a.only]
    with ProcessPoolExecutor(max_workers=max(1, min(a.jobs, len(specs)))) as pool:
        for future in [pool.submit(build_organism, spec, a.out, cfg, a.seed) for spec in specs]:
            future.result()
    print(f"built in {time.time() - t0:.0f}s -> {a.out}")


if __name__ == "__main__":
    main()
