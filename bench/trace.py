"""Speed and memory of tracer.trace against circuit-tracer 0.5.0 (both backends), same model and prompts.

    PYTHONPATH=. .venv/bin/python bench/trace.py                          # the toy: 9 and 32 tokens
    PYTHONPATH=. .venv/bin/python bench/trace.py --configs gpt2s-8k --kinds plt --tokens 32 128
    PYTHONPATH=. .venv/bin/python bench/trace.py --configs gpt2s-8k --tokens 512 --backends nnsight --repeats 1
    PYTHONPATH=. .venv/bin/python bench/trace.py --device cuda            # same table on a GPU
    PYTHONPATH=. .venv/bin/python bench/trace.py --report                 # reprint every saved cell + growth

Configs (models and transcoders built by ../shared/oracle/ct_oracle.py into bench/out/trace/<config>/build):
  toy        4 layers, d_model 128, 4 heads, d_mlp 256, F=1,024 per layer (fitted decoders, ~17% of features fire)
  gpt2s-8k   GPT-2-small shape: 12 layers, d_model 768, 12 heads, d_mlp 3,072, F=8,192 per layer
  gpt2s-16k  the same with F=16,384 per layer
The gpt2s sets have JumpReLU thresholds ~U[2.5, 3.5) (~18 of 8,192 features fire per token and layer, ~36 of
16,384; real sets fire tens) and random decoders (--fit none: the oracle's ridge fit of a 12-layer CLT would
need a (12F)^2 matrix); speed and memory do not depend on the fit. Each config has default cells
(`CELLS`: tokens -> max_feature_nodes and batch size; a batch of 512 copies of a 512-token prompt does not fit
circuit-tracer's forward cache in 24 GiB).

Every (implementation, transcoder kind, prompt) runs in its own process: ours with this interpreter,
circuit-tracer with the oracle venv's (bench/ct_runner.py). Each process times attribution + pruning + scores
`--repeats` times (we report the fastest) and reports its own peak resident memory: VmHWM from /proc/self/status
(the high-water mark of this process's address space, which exec resets; getrusage's ru_maxrss is inherited
across fork/exec, so it reported the benchmark parent's peak). The graphs are compared: same active features,
adjacency within 1e-4 (relative), same pruning masks. Targets: time <= 0.5x circuit-tracer's faster backend,
peak memory <= 1x.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHORT = {"transformerlens": "TL", "nnsight": "NNS"}
CONFIGS = {
    "toy": {"n_layers": 4, "d_model": 128, "n_heads": 4, "d_mlp": 256, "d_transcoder": 1024,
            "threshold_lo": 0.5, "fit": "lstsq"},
    "gpt2s-8k": {"n_layers": 12, "d_model": 768, "n_heads": 12, "d_mlp": 3072, "d_transcoder": 8192,
                 "threshold_lo": 2.5, "fit": "none"},
    "gpt2s-16k": {"n_layers": 12, "d_model": 768, "n_heads": 12, "d_mlp": 3072, "d_transcoder": 16384,
                  "threshold_lo": 2.5, "fit": "none"},
}
# tokens -> (max_feature_nodes (None: every active feature), batch size)
CELLS = {
    "toy": {9: (None, 512), 32: (None, 512)},
    "gpt2s-8k": {32: (None, 512), 128: (512, 64), 512: (256, 16)},
    "gpt2s-16k": {32: (None, 512), 128: (512, 64), 512: (256, 16)},
}
PROMPTS = {
    9: "The capital of the state containing Dallas is",
    32: "Fact: Michael Jordan plays the sport of basketball, and the capital of the state containing Dallas is "
        "Austin. The opposite of small is big, so the cat",
}
# longer prompts: words of the oracle tokenizer's vocabulary (one token each), cycled
PASSAGE = ("the capital of france is paris . the capital of germany is berlin . the capital of japan is tokyo . "
           "michael jordan played basketball ; he was one of the best . the opposite of hot is cold , and the "
           "opposite of fast is slow . the cat sat on the mat and the dog sat on the road . dallas is a city in "
           "texas , and the capital of texas is austin . we think that the sun is hot and the moon is cold . "
           "she said that the old man went home after the game . they want to know where the bird and the fish "
           "live . the capital of italy is rome , and the capital of spain is madrid . ").split()


def prompt(n_tokens: int) -> str:
    """A prompt of n_tokens tokens, the leading special token included."""
    if n_tokens in PROMPTS:
        return PROMPTS[n_tokens]
    words = [PASSAGE[i % len(PASSAGE)] for i in range(n_tokens - 1)]
    return " ".join(words)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--oracle", default=str(REPO.parent / "shared" / "oracle" / "ct_oracle.py"))
    p.add_argument("--venv", default=os.environ.get("ORACLE_VENV", str(Path.home() / ".cache" / "ct-oracle-venv")))
    p.add_argument("--outdir", default=str(REPO / "bench" / "out" / "trace"))
    p.add_argument("--configs", nargs="+", default=["toy"], choices=list(CONFIGS))
    p.add_argument("--tokens", type=int, nargs="+", help="token counts (default: the config's cells)")
    p.add_argument("--kinds", nargs="+", default=["plt", "clt"], choices=["plt", "plt-skip", "clt"])
    p.add_argument("--backends", nargs="+", default=["transformerlens", "nnsight"], choices=list(SHORT))
    p.add_argument("--batch-size", type=int, help="override the cells' batch size")
    p.add_argument("--max-feature-nodes", type=int, help="override the cells' max_feature_nodes (0: all)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs of ours per cell (fastest reported)")
    p.add_argument("--ct-repeats", type=int, help="timed runs of circuit-tracer per cell (default: --repeats)")
    p.add_argument("--threads", type=int, default=0, help="torch threads in every process (0: torch's default)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--dtype", default="float32", help="ours: precision transcoder weights are held in")
    p.add_argument("--lazy", action="store_true", help="ours: encoders left in their files")
    p.add_argument("--offload", action="store_true", help="ours: encoders and rows in CPU memory (GPU)")
    p.add_argument("--precision", action="store_true",
                   help="ours only: bfloat16 and float16 storage against float32 (adjacency error, memory)")
    p.add_argument("--report", action="store_true", help="reprint the table from the saved results and graphs")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--build", help=argparse.SUPPRESS)
    p.add_argument("--kind", help=argparse.SUPPRESS)
    p.add_argument("--prompt", help=argparse.SUPPRESS)
    p.add_argument("--save", help=argparse.SUPPRESS)
    return p.parse_args()


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM): its own, unlike ru_maxrss, which survives fork/exec."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM:"))


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:"))


def code_version(repo: Path = REPO) -> dict:
    """The commit a cell ran with, and whether the work tree differed from it (tracked or untracked files)."""
    git = lambda *args: subprocess.run(["git", "-C", str(repo), *args], capture_output=True,  # noqa: E731
                                       text=True, check=True).stdout.strip()
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}


def describe_version(settings: dict) -> str:
    """'414cce4', '414cce4+dirty', or 'unknown' for cells saved before commits were recorded."""
    if "commit" not in settings:
        return "unknown"
    return settings["commit"][:7] + ("+dirty" if settings.get("dirty") else "")


def worker(a) -> None:
    """Our side, in its own process: load, trace `repeats` times, print one JSON line."""
    import numpy as np
    import torch

    from circuit_atlas import tracer
    from circuit_atlas.tracer.attribution import attribute
    from circuit_atlas.tracer.tracing import prune_attribution, to_graph

    if a.threads:
        torch.set_num_threads(a.threads)
    build = Path(a.build)
    model = tracer.load(build / "model", build / "transcoders" / f"tiny-{a.kind}", device=a.device,
                        lazy=a.lazy, dtype=a.dtype, offload=a.offload)
    rss_before = rss_mb()
    config = tracer.TraceConfig(batch_size=a.batch_size, max_feature_nodes=a.max_feature_nodes or None)
    times = []
    for _ in range(a.repeats):
        start = time.perf_counter()
        with torch.inference_mode():  # tracer.trace, split open to keep the arrays for the comparison
            attribution = attribute(model, model.tokenize(a.prompt), config)
            pruned = prune_attribution(attribution, config)
        graph = to_graph(model, a.prompt, attribution, pruned, config)
        if a.device != "cpu":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    peak = peak_rss_mb()
    gpu_peak = torch.cuda.max_memory_allocated() / 2**20 if a.device != "cpu" else None
    np.savez(a.save, adjacency=attribution.adjacency.cpu().numpy(),
             active_features=attribution.active_features.cpu().numpy(),
             selected_features=attribution.selected.cpu().numpy(),
             node_mask=pruned.node_mask.cpu().numpy(), edge_mask=pruned.edge_mask.cpu().numpy())
    print(json.dumps({"times": times, "rss_before_mb": rss_before, "peak_rss_mb": peak, "gpu_peak_mb": gpu_peak,
                      "n_nodes": int(attribution.adjacency.shape[0]), "kept_nodes": len(graph.nodes),
                      "n_active": len(attribution.active_features),
                      "replacement": pruned.replacement, "completeness": pruned.completeness,
                      "threads": torch.get_num_threads()}))


def build(a, config: str) -> Path:
    """Model and transcoders from the oracle script (cached; its own attribution run is a one-token prompt)."""
    c = CONFIGS[config]
    out = Path(a.outdir) / config / "build"
    args = ["--outdir", str(out), "--n-layers", str(c["n_layers"]), "--d-model", str(c["d_model"]),
            "--n-heads", str(c["n_heads"]), "--d-mlp", str(c["d_mlp"]), "--d-transcoder", str(c["d_transcoder"]),
            "--threshold-lo", str(c["threshold_lo"]), "--fit", c["fit"], "--kinds", "plt", "clt",
            "--backends", "nnsight", "--prompts", "the", "--limited-max-feature-nodes", "0", "--no-npz"]
    key = out / "bench_build.json"
    if not (key.exists() and json.loads(key.read_text()) == args):
        print(f"building {config} model and transcoders with {a.oracle} (minutes)", flush=True)
        subprocess.run(["python3", a.oracle, *args], check=True, stdout=subprocess.DEVNULL)
        key.write_text(json.dumps(args))
    # the oracle's Llama says 128 positions; RoPE has no such limit, and 512-token prompts need more
    model_config = out / "model" / "config.json"
    settings = json.loads(model_config.read_text())
    if settings.get("max_position_embeddings", 0) < 1024:
        settings["max_position_embeddings"] = 1024
        model_config.write_text(json.dumps(settings, indent=2))
    return out


def run(cmd: list[str]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} ... failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(ours: Path, theirs: Path) -> dict:
    """Same features, adjacency within 1e-4 (relative), same kept nodes, kept edges equal up to float ties.

    On large graphs a few of ~10^5 kept edges sit exactly at the edge threshold, where 1e-7 differences
    decide; circuit-tracer's own two backends disagree there too, so the count is reported, and graphs
    count as equal when at most 1e-5 of the kept edges differ.
    """
    import numpy as np

    a, b = np.load(ours), np.load(theirs)
    same_features = (np.array_equal(a["active_features"], b["active_features"])
                     and np.array_equal(a["selected_features"], b["selected_features"]))
    same_shape = a["adjacency"].shape == b["adjacency"].shape
    rel = (float(np.abs(a["adjacency"] - b["adjacency"]).max() / np.abs(b["adjacency"]).max())
           if same_shape else float("inf"))
    node_diff = int((a["node_mask"] != b["node_mask"]).sum()) if same_shape else -1
    edge_diff = int((a["edge_mask"] != b["edge_mask"]).sum()) if same_shape else -1
    kept_edges = int(b["edge_mask"].sum())
    equal = same_features and rel <= 1e-4 and node_diff == 0 and 0 <= edge_diff <= 1e-5 * kept_edges
    return {"equal": bool(equal), "adjacency_rel_diff": rel, "same_features": bool(same_features),
            "node_mask_diff": node_diff, "edge_mask_diff": edge_diff, "kept_edges": kept_edges}


def peak_mb(r: dict) -> float:
    """The memory compared: GPU memory on a GPU (torch's peak allocation), else the process's peak RSS."""
    return r.get("gpu_peak_mb") or r["peak_rss_mb"]


def header() -> str:
    return (f"{'case':<24}{'nodes':>7}{'ours s':>9}{'TL s':>9}{'NNS s':>9}{'ratio':>7}"
            f"{'ours MB':>9}{'TL MB':>8}{'NNS MB':>8}{'ratio':>7}  equal graphs (adjacency rel. diff; kept edges differing)")


def row(result: dict) -> str:
    ours, theirs = result["ours"], result["circuit_tracer"]
    seconds = [f"{min(theirs[b]['times']):.2f}" if b in theirs else "-" for b in SHORT]
    megabytes = [f"{peak_mb(theirs[b]):.0f}" if b in theirs else "-" for b in SHORT]
    equal = ", ".join(f"{SHORT[b]}: {'yes' if r['comparison']['equal'] else 'NO'} "
                      f"({r['comparison']['adjacency_rel_diff']:.1e}; {r['comparison']['edge_mask_diff']}"
                      f"/{r['comparison']['kept_edges']})" for b, r in theirs.items())
    return (f"{result['case']:<24}{ours['n_nodes']:>7}{min(ours['times']):>9.2f}" + "".join(f"{s:>9}" for s in seconds)
            + f"{result['time_ratio']:>7.2f}{peak_mb(ours):>9.0f}" + "".join(f"{m:>8}" for m in megabytes)
            + f"{result['memory_ratio']:>7.2f}  {equal}")


def growth(results: list[dict]) -> list[str]:
    """How time and peak memory grow with tokens (same config and kind) and with features (same tokens)."""
    by = {(r["config"], r["kind"], r["tokens"]): r for r in results}
    best = lambda r: min(min(x["times"]) for x in r["circuit_tracer"].values())  # noqa: E731
    best_mb = lambda r: min(peak_mb(x) for x in r["circuit_tracer"].values())  # noqa: E731
    lines = []

    def line(label, r0, r1):
        time_ours = min(r1["ours"]["times"]) / min(r0["ours"]["times"])
        memory_ours = peak_mb(r1["ours"]) / peak_mb(r0["ours"])
        lines.append(f"  {label:<40} time x{time_ours:6.1f} ours, x{best(r1) / best(r0):6.1f} circuit-tracer; "
                     f"peak memory x{memory_ours:5.1f} ours, x{best_mb(r1) / best_mb(r0):5.1f} circuit-tracer")

    for (config, kind, tokens), r1 in sorted(by.items()):
        lower = sorted(t for (c, k, t) in by if (c, k) == (config, kind) and t < tokens)
        if lower:
            r0 = by[(config, kind, lower[-1])]
            line(f"{config} {kind}: {lower[-1]} -> {tokens} tokens", r0, r1)
    for (config, kind, tokens), r1 in sorted(by.items()):
        if config == "gpt2s-16k" and ("gpt2s-8k", kind, tokens) in by:
            line(f"{kind} {tokens} tokens: 8k -> 16k features", by[("gpt2s-8k", kind, tokens)], r1)
    return lines


def print_table(results: list[dict]) -> None:
    print(header())
    for result in results:
        print(row(result))
    print("ratio = ours / circuit-tracer's faster backend (targets: time <= 0.5, memory <= 1.0); "
          "memory = each process's own peak RSS (VmHWM), on a GPU torch's peak GPU allocation")
    lines = growth(results)
    if lines:
        print("growth (different cells may differ in max_feature_nodes and batch size; see results.json):")
        print("\n".join(lines))


def report(out: Path) -> None:
    """Print the table again from results.json, re-comparing the saved graphs."""
    results = json.loads((out / "results.json").read_text())
    for result in results:
        for backend, r in result["circuit_tracer"].items():
            folder = out / result["config"]
            ours, theirs = folder / f"{result['cell']}-ours.npz", folder / f"{result['cell']}-{SHORT[backend]}.npz"
            if ours.exists() and theirs.exists():
                r["comparison"] = compare(ours, theirs)
    print_table(results)
    for result in results:
        print(f"{result['case']}: commit {describe_version(result['settings'])}; {result['settings']}")


def _against(ref, got) -> tuple[float, str]:
    """Adjacency error of `got` against `ref` over the nodes both have (rounding can flip a few features
    across their JumpReLU threshold), and how many features and kept nodes/edges differ."""
    import numpy as np

    key = lambda f: {tuple(r): i for i, r in enumerate(f["active_features"][f["selected_features"]])}  # noqa: E731
    kr, kg = key(ref), key(got)
    common = sorted(set(kr) & set(kg))
    n_ref, n_got = len(ref["adjacency"]), len(got["adjacency"])
    if n_ref - len(kr) != n_got - len(kg):
        return float("nan"), "different error/token/logit nodes"
    rest = n_ref - len(kr)                      # errors, tokens and logits: the same, in the same order
    ir = np.array([kr[k] for k in common] + list(range(len(kr), n_ref)))
    ig = np.array([kg[k] for k in common] + list(range(len(kg), n_got)))
    A, B = ref["adjacency"][np.ix_(ir, ir)], got["adjacency"][np.ix_(ig, ig)]
    error = float(np.abs(A - B).max() / np.abs(ref["adjacency"]).max())
    nodes = int((ref["node_mask"][ir] != got["node_mask"][ig]).sum())
    edges = int((ref["edge_mask"][np.ix_(ir, ir)] != got["edge_mask"][np.ix_(ig, ig)]).sum())
    return error, (f"{len(kr) - len(common)} + {len(kg) - len(common)} of {len(kr)} features differ; kept nodes "
                   f"differ at {nodes}, kept edges at {edges} of {int(ref['edge_mask'].sum())} ({rest} other nodes)")


def precision(a, out: Path) -> None:
    """Ours with transcoder weights held in bfloat16 / float16 against float32: adjacency error, masks, memory."""
    import numpy as np

    print(f"{'case':<24}{'dtype':>10}{'seconds':>9}{'peak MB':>9}  adjacency error vs float32 (max |diff| / max |A|); "
          "active features, node and edge masks")
    rows = []
    for config in a.configs:
        build_dir = build(a, config)
        for kind in a.kinds:
            for n_tokens in a.tokens or sorted(CELLS[config]):
                max_features, batch = CELLS[config].get(n_tokens, (None, 512))
                runs = {}
                for dtype in ("float32", "bfloat16", "float16"):
                    npz = out / config / f"{kind}-{n_tokens}tok-ours-{dtype}.npz"
                    runs[dtype] = run([sys.executable, __file__, "--worker", "--build", str(build_dir), "--kind", kind,
                                       "--prompt", prompt(n_tokens), "--save", str(npz), "--repeats", "1",
                                       "--batch-size", str(a.batch_size or batch), "--threads", str(a.threads),
                                       "--device", a.device, "--max-feature-nodes", str(max_features or 0),
                                       "--dtype", dtype])
                    ref, got = np.load(out / config / f"{kind}-{n_tokens}tok-ours-float32.npz"), np.load(npz)
                    error, masks = _against(ref, got)
                    rows.append({"case": f"{config}/{kind}-{n_tokens}tok", "dtype": dtype, "error": error,
                                 "masks": masks, "seconds": min(runs[dtype]["times"]),
                                 "peak_rss_mb": runs[dtype]["peak_rss_mb"]})
                    print(f"{rows[-1]['case']:<24}{dtype:>10}{rows[-1]['seconds']:>9.2f}{rows[-1]['peak_rss_mb']:>9.0f}  "
                          f"{error:.1e}; {masks}", flush=True)
    (out / "precision.json").write_text(json.dumps(rows, indent=1))


def main() -> None:
    a = parse_args()
    if a.worker:
        return worker(a)
    out = Path(a.outdir)
    if a.report:
        return report(out)
    if a.precision:
        return precision(a, out)
    venv_python = str(Path(a.venv) / "bin" / "python")
    version = code_version()
    results = []
    for config in a.configs:
        build_dir = build(a, config)
        c = CONFIGS[config]
        print(f"{config}: {c['n_layers']} layers, d_model {c['d_model']}, F={c['d_transcoder']}; "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
              f"commit {describe_version(version)}", flush=True)
        print(header(), flush=True)
        for kind in a.kinds:
            for n_tokens in a.tokens or sorted(CELLS[config]):
                max_features, batch = CELLS[config].get(n_tokens, (None, 512))
                if a.max_feature_nodes is not None:
                    max_features = a.max_feature_nodes or None
                batch = a.batch_size or batch
                text = prompt(n_tokens)
                cell = f"{kind}-{n_tokens}tok"
                common = ["--batch-size", str(batch), "--threads", str(a.threads), "--device", a.device,
                          "--max-feature-nodes", str(max_features or 0)]
                ours_only = ["--dtype", a.dtype] + ["--lazy"] * a.lazy + ["--offload"] * a.offload
                load = [os.getloadavg()[0]]
                ours_npz = out / config / f"{cell}-ours.npz"
                ours = run([sys.executable, __file__, "--worker", "--build", str(build_dir), "--kind", kind,
                            "--prompt", text, "--save", str(ours_npz), "--repeats", str(a.repeats), *common, *ours_only])
                theirs = {}
                for backend in a.backends:
                    npz = out / config / f"{cell}-{SHORT[backend]}.npz"
                    theirs[backend] = run([venv_python, str(REPO / "bench" / "ct_runner.py"), "--oracle", a.oracle,
                                           "--build", str(build_dir), "--kind", kind, "--backend", backend,
                                           "--prompt", text, "--save", str(npz),
                                           "--repeats", str(a.ct_repeats or a.repeats), *common])
                    theirs[backend]["comparison"] = compare(ours_npz, npz)
                load.append(os.getloadavg()[0])
                result = {"case": f"{config}/{cell}", "config": config, "cell": cell, "kind": kind,
                          "tokens": n_tokens, "ours": ours, "circuit_tracer": theirs,
                          "settings": {"max_feature_nodes": max_features, "batch_size": batch,
                                       "repeats": a.repeats, "ct_repeats": a.ct_repeats or a.repeats,
                                       "device": a.device, "threads": ours["threads"], "dtype": a.dtype,
                                       "lazy": a.lazy, "offload": a.offload, **version,
                                       "load_average": load, "date": datetime.date.today().isoformat()},
                          "time_ratio": min(ours["times"]) / min(min(r["times"]) for r in theirs.values()),
                          "memory_ratio": peak_mb(ours) / min(peak_mb(r) for r in theirs.values())}
                print(row(result), flush=True)
                results.append(result)
                _save(out, [result])
    print_table(results)
    print(f"details in {out / 'results.json'} (`--report` reprints every saved cell)")


def _save(out: Path, results: list[dict]) -> None:
    """Merge into results.json (cells of earlier runs stay), atomically."""
    path = out / "results.json"
    merged = {r["case"]: r for r in (json.loads(path.read_text()) if path.exists() else [])}
    merged.update({r["case"]: r for r in results})
    order = {name: i for i, name in enumerate(CONFIGS)}
    ordered = sorted(merged.values(), key=lambda r: (order.get(r["config"], 99), r["kind"], r["tokens"]))
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(ordered, indent=1))
    tmp.replace(path)


if __name__ == "__main__":
    main()
