"""Transcoders on the organisms' MLPs, in circuit-tracer's on-disk formats (as the oracle writes them).

Per-layer transcoders (PLT): transcoders/plt/layer_{i}.safetensors
    W_enc (F, D), b_enc (F), W_dec (F, D), b_dec (D), activation_function.threshold (F)  -> JumpReLU
Cross-layer transcoder (CLT): transcoders/clt/W_enc_{i}.safetensors {W_enc_i (F, D), b_enc_i (F),
    b_dec_i (D), threshold_i (F)} and W_dec_{i}.safetensors {W_dec_i (F, L-i, D)}: features read the
    MLP input of layer i and write to the MLP outputs of layers i..L-1.
Both folders carry config.yaml with feature_input_hook `mlp.hook_in` (the normalised MLP input) and
feature_output_hook `mlp.hook_out`.

Training: BatchTopK (k active features per token on average across a batch) learns the encoder; its
running k-th activation becomes a uniform JumpReLU threshold, so inference needs no top-k; then the
decoder and output bias are refitted by ridge regression to the JumpReLU activations (exact optimum
for the fixed encoder), which recovers what the switch from top-k to a threshold loses.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

HOOKS = {"feature_input_hook": "mlp.hook_in", "feature_output_hook": "mlp.hook_out"}


@dataclass
class TranscoderConfig:
    n_features: int = 512     # F per layer: ~5x d_model, small enough for the 10 MB fixture budget
    k: int = 16               # BatchTopK mean active features per token: sets L0
    n_tokens: int = 60_000    # activation rows collected per layer for training
    steps: int = 400           # FVU is far below 0.2 by then (~0.02); longer mostly costs CPU time
    batch_size: int = 1024
    lr: float = 2e-3
    ridge: float = 1e-4       # relative ridge penalty of the final decoder fit
    threshold_ema: float = 0.99  # running estimate of the batch's k-th activation


def jumprelu(pre: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    return pre * (pre > threshold)


def batch_topk(pre: torch.Tensor, k: int, stride: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep about the k * B largest positive pre-activations of the batch; also return the cutoff.
    The cutoff comes from a strided 1/stride sample of the batch (a full top-k over B*F values is
    what made training slow on CPU)."""
    acts = pre.relu()
    sample = acts.flatten()[::stride]
    cutoff = sample.topk(max(1, k * acts.shape[0] // stride)).values[-1]
    return acts * (acts >= cutoff), cutoff


def fvu(y: torch.Tensor, recon: torch.Tensor) -> float:
    """Fraction of variance unexplained: residual energy over the energy around the mean."""
    return float(((y - recon) ** 2).sum() / ((y - y.mean(0)) ** 2).sum())


def _ridge(Z: torch.Tensor, Y: torch.Tensor, lam_rel: float) -> torch.Tensor:
    """argmin_W |[Z 1] W - Y|^2 + lam |W|^2, lam relative to the mean diagonal of Z^T Z."""
    Z = torch.cat([Z, torch.ones(len(Z), 1)], 1).double()
    G = Z.T @ Z
    lam = lam_rel * G.diagonal().mean()
    return torch.linalg.solve(G + lam * torch.eye(len(G), dtype=G.dtype), Z.T @ Y.double()).float()


@dataclass
class PerLayerTranscoders:
    W_enc: list[torch.Tensor]       # per layer (F, D)
    b_enc: list[torch.Tensor]       # (F,)
    W_dec: list[torch.Tensor]       # (F, D)
    b_dec: list[torch.Tensor]       # (D,)
    threshold: list[torch.Tensor]   # (F,)

    def encode(self, layer: int, x: torch.Tensor) -> torch.Tensor:
        return jumprelu(x @ self.W_enc[layer].T + self.b_enc[layer], self.threshold[layer])

    def reconstruct(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        return [self.encode(l, x) @ self.W_dec[l] + self.b_dec[l] for l, x in enumerate(xs)]

    def write_direction(self, layer: int) -> torch.Tensor:
        """(F, D): what each feature adds to the residual stream."""
        return self.W_dec[layer]

    def save(self, folder: Path, scan: str) -> None:
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        for l in range(len(self.W_enc)):
            save_file({"W_enc": self.W_enc[l], "W_dec": self.W_dec[l], "b_enc": self.b_enc[l],
                       "b_dec": self.b_dec[l], "activation_function.threshold": self.threshold[l]},
                      str(folder / f"layer_{l}.safetensors"))
        _write_config(folder, {"model_kind": "transcoder_set", "scan": scan, **HOOKS})

    @classmethod
    def load(cls, folder: Path) -> PerLayerTranscoders:
        from safetensors.torch import load_file

        files = sorted(folder.glob("layer_*.safetensors"), key=lambda p: int(p.stem.split("_")[1]))
        sds = [{k: v.float() for k, v in load_file(str(f)).items()} for f in files]
        return cls(*[[sd[k] for sd in sds] for k in ("W_enc", "b_enc", "W_dec", "b_dec", "activation_function.threshold")])


@dataclass
class CrossLayerTranscoder:
    W_enc: list[torch.Tensor]       # per layer (F, D)
    b_enc: list[torch.Tensor]       # (F,)
    W_dec: list[torch.Tensor]       # layer i: (F, L-i, D)
    b_dec: list[torch.Tensor]       # bias of output layer i: (D,)
    threshold: list[torch.Tensor]   # (F,)

    def encode(self, layer: int, x: torch.Tensor) -> torch.Tensor:
        return jumprelu(x @ self.W_enc[layer].T + self.b_enc[layer], self.threshold[layer])

    def reconstruct(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        acts = [self.encode(l, x) for l, x in enumerate(xs)]
        return [sum(acts[i] @ self.W_dec[i][:, j - i] for i in range(j + 1)) + self.b_dec[j]
                for j in range(len(xs))]

    def write_direction(self, layer: int) -> torch.Tensor:
        """(F, D): what each feature adds to the residual stream, summed over the layers it writes to."""
        return self.W_dec[layer].sum(1)

    def save(self, folder: Path, scan: str) -> None:
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        for i in range(len(self.W_enc)):
            save_file({f"W_enc_{i}": self.W_enc[i], f"b_enc_{i}": self.b_enc[i], f"b_dec_{i}": self.b_dec[i],
                       f"threshold_{i}": self.threshold[i]}, str(folder / f"W_enc_{i}.safetensors"))
            save_file({f"W_dec_{i}": self.W_dec[i]}, str(folder / f"W_dec_{i}.safetensors"))
        _write_config(folder, {"model_kind": "cross_layer_transcoder", "scan": scan, **HOOKS})

    @classmethod
    def load(cls, folder: Path) -> CrossLayerTranscoder:
        from safetensors.torch import load_file

        n = len(list(folder.glob("W_enc_*.safetensors")))
        enc = [{k: v.float() for k, v in load_file(str(folder / f"W_enc_{i}.safetensors")).items()} for i in range(n)]
        dec = [load_file(str(folder / f"W_dec_{i}.safetensors"))[f"W_dec_{i}"].float() for i in range(n)]
        return cls([e[f"W_enc_{i}"] for i, e in enumerate(enc)], [e[f"b_enc_{i}"] for i, e in enumerate(enc)],
                   dec, [e[f"b_dec_{i}"] for i, e in enumerate(enc)], [e[f"threshold_{i}"] for i, e in enumerate(enc)])


def load(folder: Path) -> PerLayerTranscoders | CrossLayerTranscoder:
    """Either kind, by its config.yaml."""
    import yaml

    kind = yaml.safe_load((folder / "config.yaml").read_text())["model_kind"]
    return (CrossLayerTranscoder if kind == "cross_layer_transcoder" else PerLayerTranscoders).load(folder)


def _write_config(folder: Path, cfg: dict) -> None:
    import yaml

    (folder / "config.yaml").write_text(yaml.safe_dump(cfg))


def _fp16_exact(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.float16).float()


def _fp16(ts: list[torch.Tensor]) -> list[torch.Tensor]:
    return [t.detach().to(torch.float16).contiguous() for t in ts]


def _train_encoders(X, Y, cfg: TranscoderConfig, seed: int, cross_layer: bool, log):
    """BatchTopK training of all layers at once. Returns encoders, biases and JumpReLU thresholds."""
    torch.manual_seed(seed)
    L, D, F = len(X), X[0].shape[1], cfg.n_features
    W_enc = [torch.nn.Parameter(torch.randn(F, D) / D ** 0.5) for _ in range(L)]
    b_enc = [torch.nn.Parameter(torch.zeros(F)) for _ in range(L)]
    # decoder j <- i: PLT uses only i == j; CLT all i <= j
    pairs = [(i, j) for j in range(L) for i in range(L) if i == j or (cross_layer and i < j)]
    W_dec = {(i, j): torch.nn.Parameter(W_enc[i].detach().clone() * (0.1 if i == j else 0.01)) for i, j in pairs}
    b_dec = [torch.nn.Parameter(Y[j].mean(0).clone()) for j in range(L)]
    var = [Y[j].var(0).sum() for j in range(L)]
    opt = torch.optim.Adam([*W_enc, *b_enc, *W_dec.values(), *b_dec], lr=cfg.lr)
    cutoff = [torch.tensor(0.0) for _ in range(L)]
    g = torch.Generator().manual_seed(seed)
    for step in range(cfg.steps):
        idx = torch.randint(len(X[0]), (cfg.batch_size,), generator=g)
        acts = []
        for i in range(L):
            a, c = batch_topk(X[i][idx] @ W_enc[i].T + b_enc[i], cfg.k)
            acts.append(a)
            cutoff[i] = c.detach() if step == 0 else cfg.threshold_ema * cutoff[i] + (1 - cfg.threshold_ema) * c.detach()
        loss = 0.0
        for j in range(L):
            recon = b_dec[j] + sum(acts[i] @ W_dec[i, jj] for i, jj in pairs if jj == j)
            loss = loss + ((recon - Y[j][idx]) ** 2).sum(1).mean() / var[j]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 500 == 0 or step == cfg.steps - 1:
            log(f"  {'clt' if cross_layer else 'plt'} step {step:5d}  mean normalised mse {loss.item() / L:.3f}")
    thresholds = [torch.full((F,), float(c)) for c in cutoff]
    # round to fp16 now, so the decoder fit below sees exactly the encoder that ships
    return [_fp16_exact(t.detach()) for t in W_enc], [_fp16_exact(t.detach()) for t in b_enc], list(map(_fp16_exact, thresholds))


def train_plt(X, Y, cfg: TranscoderConfig, seed: int, log=print) -> PerLayerTranscoders:
    W_enc, b_enc, thr = _train_encoders(X, Y, cfg, seed, cross_layer=False, log=log)
    W_dec, b_dec = [], []
    for l in range(len(X)):
        sol = _ridge(jumprelu(X[l] @ W_enc[l].T + b_enc[l], thr[l]), Y[l], cfg.ridge)
        W_dec.append(sol[:-1])
        b_dec.append(sol[-1])
    return PerLayerTranscoders(*map(_fp16, (W_enc, b_enc, W_dec, b_dec, thr)))


def train_clt(X, Y, cfg: TranscoderConfig, seed: int, log=print) -> CrossLayerTranscoder:
    L, F = len(X), cfg.n_features
    W_enc, b_enc, thr = _train_encoders(X, Y, cfg, seed + 1, cross_layer=True, log=log)
    acts = [jumprelu(X[i] @ W_enc[i].T + b_enc[i], thr[i]) for i in range(L)]
    W_dec = [torch.zeros(F, L - i, X[0].shape[1]) for i in range(L)]
    b_dec = []
    for j in range(L):  # output layer j is decoded from the features of layers 0..j
        sol = _ridge(torch.cat(acts[: j + 1], 1), Y[j], cfg.ridge)
        for i in range(j + 1):
            W_dec[i][:, j - i] = sol[i * F:(i + 1) * F]
        b_dec.append(sol[-1])
    return CrossLayerTranscoder(*map(_fp16, (W_enc, b_enc, W_dec, b_dec, thr)))
