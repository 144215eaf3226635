"""Speed and memory of tracer.trace against circuit-tracer 0.5.0 (both backends), same model and prompts.

    PYTHONPATH=. .venv/bin/python bench/trace.py            # 4 layers, d_model 128, F=1024; 9 and 32 tokens
    PYTHONPATH=. .venv/bin/python bench/trace.py --kinds plt --backends nnsight --repeats 1 --device cuda

The oracle script (../shared/oracle/ct_oracle.py) builds the tiny Llama and its transcoders once into
bench/out/trace/build. Every (implementation, transcoder kind, prompt) then runs in its own process:
ours with this interpreter, circuit-tracer with the oracle venv's (bench/ct_runner.py). Each process
times attribution + pruning + scores `--repeats` times (we report the fastest) and its peak RSS
(getrusage ru_maxrss: imports, model and trace together, measured the same way for both). The
graphs are compared: same active features, adjacency within 1e-4 (relative), same pruning masks.
Targets: time <= 0.5x circuit-tracer's faster backend, peak memory <= 1x.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROMPTS = {
    9: "The capital of the state containing Dallas is",
    32: "Fact: Michael Jordan plays the sport of basketball, and the capital of the state containing Dallas is "
        "Austin. The opposite of small is big, so the cat",
}
SHORT = {"transformerlens": "TL", "nnsight": "NNS"}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--oracle", default=str(REPO.parent / "shared" / "oracle" / "ct_oracle.py"))
    p.add_argument("--venv", default=os.environ.get("ORACLE_VENV", str(Path.home() / ".cache" / "ct-oracle-venv")))
    p.add_argument("--outdir", default=str(REPO / "bench" / "out" / "trace"))
    p.add_argument("--n-layers", type=int, default=4)
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--d-transcoder", type=int, default=1024)
    p.add_argument("--tokens", type=int, nargs="+", default=[9, 32], choices=sorted(PROMPTS))
    p.add_argument("--kinds", nargs="+", default=["plt", "clt"], choices=["plt", "plt-skip", "clt"])
    p.add_argument("--backends", nargs="+", default=["transformerlens", "nnsight"], choices=list(SHORT))
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="torch threads in every process (0: torch's default)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--report", action="store_true", help="reprint the table from the saved results and graphs")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--kind", help=argparse.SUPPRESS)
    p.add_argument("--prompt", help=argparse.SUPPRESS)
    p.add_argument("--save", help=argparse.SUPPRESS)
    return p.parse_args()


def worker(a) -> None:
    """Our side, in its own process: load, trace `repeats` times, print one JSON line."""
    import numpy as np
    import torch

    from circuit_atlas import tracer
    from circuit_atlas.tracer.attribution import attribute
    from circuit_atlas.tracer.tracing import prune_attribution, to_graph

    if a.threads:
        torch.set_num_threads(a.threads)
    build = Path(a.outdir) / "build"
    model = tracer.load(build / "model", build / "transcoders" / f"tiny-{a.kind}", device=a.device)
    rss_before = _rss_mb()
    config = tracer.TraceConfig(batch_size=a.batch_size)
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
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    np.savez_compressed(a.save, adjacency=attribution.adjacency.cpu().numpy(),
                        active_features=attribution.active_features.cpu().numpy(),
                        selected_features=attribution.selected.cpu().numpy(),
                        node_mask=pruned.node_mask.cpu().numpy(), edge_mask=pruned.edge_mask.cpu().numpy())
    print(json.dumps({"times": times, "rss_before_mb": rss_before, "peak_rss_mb": peak,
                      "n_nodes": int(attribution.adjacency.shape[0]), "kept_nodes": len(graph.nodes),
                      "replacement": pruned.replacement, "completeness": pruned.completeness,
                      "threads": torch.get_num_threads()}))


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:"))


def build(a) -> Path:
    """Model and transcoders from the oracle script (cached; its own attribution run is a one-token prompt)."""
    out = Path(a.outdir) / "build"
    args = ["--outdir", str(out), "--n-layers", str(a.n_layers), "--d-model", str(a.d_model),
            "--d-transcoder", str(a.d_transcoder), "--kinds", *a.kinds, "--backends", "nnsight",
            "--prompts", "the", "--limited-max-feature-nodes", "0", "--no-npz"]
    key = out / "bench_build.json"
    if key.exists() and json.loads(key.read_text()) == args:
        return out
    print("building model and transcoders with", a.oracle, flush=True)
    subprocess.run(["python3", a.oracle, *args], check=True,
                   stdout=subprocess.DEVNULL)
    key.write_text(json.dumps(args))
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


def header(backends) -> str:
    return (f"{'case':<14}{'ours s':>8}" + "".join(f"{SHORT[b] + ' s':>8}" for b in backends)
            + f"{'ratio':>7}{'ours MB':>9}" + "".join(f"{SHORT[b] + ' MB':>8}" for b in backends)
            + f"{'ratio':>7}  equal graphs (adjacency rel. diff; kept edges differing)")


def row(result: dict) -> str:
    ours, theirs = result["ours"], result["circuit_tracer"]
    equal = ", ".join(f"{SHORT[b]}: {'yes' if r['comparison']['equal'] else 'NO'} "
                      f"({r['comparison']['adjacency_rel_diff']:.1e}; {r['comparison']['edge_mask_diff']}"
                      f"/{r['comparison']['kept_edges']})" for b, r in theirs.items())
    return (f"{result['case']:<14}{min(ours['times']):>8.2f}" + "".join(f"{min(r['times']):>8.2f}" for r in theirs.values())
            + f"{result['time_ratio']:>7.2f}{ours['peak_rss_mb']:>9.0f}"
            + "".join(f"{r['peak_rss_mb']:>8.0f}" for r in theirs.values()) + f"{result['memory_ratio']:>7.2f}  {equal}")


def report(out: Path) -> None:
    """Print the table again from results.json, re-comparing the saved graphs."""
    results = json.loads((out / "results.json").read_text())
    print(header(list(results[0]["circuit_tracer"])))
    for result in results:
        for backend, r in result["circuit_tracer"].items():
            r["comparison"] = compare(out / f"{result['case']}-ours.npz", out / f"{result['case']}-{SHORT[backend]}.npz")
        print(row(result))
    (out / "results.json").write_text(json.dumps(results, indent=1))


def main() -> None:
    a = parse_args()
    if a.worker:
        return worker(a)
    out = Path(a.outdir)
    if a.report:
        return report(out)
    build(a)
    venv_python = str(Path(a.venv) / "bin" / "python")
    common = ["--batch-size", str(a.batch_size), "--repeats", str(a.repeats), "--threads", str(a.threads),
              "--device", a.device]
    print(f"model: {a.n_layers} layers, d_model {a.d_model}, F={a.d_transcoder}; batch {a.batch_size}; "
          f"fastest of {a.repeats}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(header(a.backends))
    results = []
    for kind in a.kinds:
        for n_tokens in a.tokens:
            prompt = PROMPTS[n_tokens]
            case = f"{kind}-{n_tokens}tok"
            ours_npz = out / f"{case}-ours.npz"
            ours = run([sys.executable, __file__, "--worker", "--outdir", str(out), "--kind", kind,
                        "--prompt", prompt, "--save", str(ours_npz), *common])
            theirs = {}
            for backend in a.backends:
                npz = out / f"{case}-{SHORT[backend]}.npz"
                theirs[backend] = run([venv_python, str(REPO / "bench" / "ct_runner.py"), "--oracle", a.oracle,
                                       "--build", str(out / "build"), "--kind", kind, "--backend", backend,
                                       "--prompt", prompt, "--save", str(npz), *common])
                theirs[backend]["comparison"] = compare(ours_npz, npz)
            result = {"case": case, "ours": ours, "circuit_tracer": theirs,
                      "time_ratio": min(ours["times"]) / min(min(r["times"]) for r in theirs.values()),
                      "memory_ratio": ours["peak_rss_mb"] / min(r["peak_rss_mb"] for r in theirs.values())}
            print(row(result), flush=True)
            results.append(result)
    results_path = out / "results.json"   # merged with earlier runs' cases
    merged = {r["case"]: r for r in (json.loads(results_path.read_text()) if results_path.exists() else [])}
    merged.update({r["case"]: r for r in results})
    results_path.write_text(json.dumps(list(merged.values()), indent=1))
    print(f"ratio = ours / circuit-tracer's better backend (targets: time <= 0.5, memory <= 1.0); "
          f"details in {results_path}")


if __name__ == "__main__":
    main()
