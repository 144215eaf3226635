"""Bulk tracing throughput: graphs per hour with 1 and 2 trace workers on the same job, and the queue
overhead per task (wall time per task per worker vs the trace time measured inside the task).

Targets: 2 workers >= 1.7x one worker on 2 cores; overhead <= 5%. Each run gets a fresh redis,
store and artifact directory (workers/testing.py), and warms its workers up (model load) on other
prompts before the timed job. Needs redis-server.

    PYTHONPATH=$PWD python bench/jobs.py [--prompts 60] [--workers 1 2] [--layers 2 --d-model 64 --features 384]
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from circuit_atlas.workers.testing import LocalStack

WORDS = ["the", "cat", "dog", "sat", "on", "a", "mat", "and", "bird", "fish", "big", "red", "old", "tree"]


def prompts(n: int, offset: int, length: int = 16) -> list[str]:
    """n prompts of `length` words plus a number spelled digit by digit, so their tokens differ."""
    return [" ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(length)) + " " + " ".join(str(i + offset))
            for i in range(n)]


def write_job(path: Path, model: tuple[str, str], texts: list[str], options: dict) -> Path:
    lines = [json.dumps({"job": {"model": model[0], "transcoders": model[1], "options": options}})]
    lines += [json.dumps({"prompt": t}) for t in texts]
    path.write_text("\n".join(lines) + "\n")
    return path


def run(root: Path, model, n_workers: int, n_prompts: int, options: dict, words: int) -> dict:
    stack = LocalStack(root, visibility_timeout=3600)
    try:
        stack.start_workers(n_trace=n_workers)
        warm = stack.submit(write_job(root / "warmup.jsonl", model, prompts(3 * n_workers, 10_000, words), options))
        stack.wait(warm, timeout=600)
        job_id = stack.submit(write_job(root / "job.jsonl", model, prompts(n_prompts, 0, words), options))
        st = stack.wait(job_id, timeout=3600)
        assert st.counts == {"done": n_prompts}, (st.counts, st.errors)
        wall = st.finished - st.started                   # first trace began -> last graph stored
        trace_s = stack.jobs.trace_seconds(job_id)
        per_task = wall * n_workers / n_prompts           # wall seconds one worker spent per task
        mean_trace = statistics.mean(trace_s)
        return {"workers": n_workers, "prompts": n_prompts, "wall_s": wall,
                "graphs_per_hour": n_prompts / wall * 3600, "trace_s": mean_trace,
                "wall_per_task_s": per_task, "overhead": per_task / mean_trace - 1}
    finally:
        stack.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=60)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--d-model", type=int, default=64)
    ap.add_argument("--features", type=int, default=384, help="transcoder features per layer")
    ap.add_argument("--words", type=int, default=30, help="words per prompt (the tiny model attends over 64)")
    ap.add_argument("--options", default='{"max_n_logits": 5}', help="JSON tracing options")
    args = ap.parse_args()

    from circuit_atlas.tracer.testing import DEFAULT_HOOKS, build_model, build_transcoders

    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as tmp:
        tmp = Path(tmp)
        # a model where one trace takes ~0.5 s on one thread, so that queue overhead is measurable
        hooks = DEFAULT_HOOKS.get("llama", ("mlp.hook_in", "mlp.hook_out"))
        net = build_model(tmp / "model", "llama", 0, n_layers=args.layers, d_model=args.d_model)
        build_transcoders(tmp / "transcoders", net, "plt", 0, d_transcoder=args.features,
                          input_hook=hooks[0], output_hook=hooks[1])
        model = (str(tmp / "model"), str(tmp / "transcoders"))
        print(f"[bench] model: {args.layers} layers, d_model {args.d_model}, {args.features} features/layer; "
              f"prompts of {args.words} words", flush=True)
        results = []
        for k in args.workers:
            t0 = time.time()
            results.append(run(tmp / f"run{k}", model, k, args.prompts, json.loads(args.options), args.words))
            print(f"[bench] {k} trace worker(s) done in {time.time() - t0:.0f}s", flush=True)

    print(f"\n{'workers':>7} {'prompts':>7} {'wall s':>8} {'graphs/h':>9} {'trace s':>8} {'wall/task s':>11} {'overhead':>9}")
    for r in results:
        print(f"{r['workers']:>7} {r['prompts']:>7} {r['wall_s']:>8.1f} {r['graphs_per_hour']:>9.0f} "
              f"{r['trace_s']:>8.3f} {r['wall_per_task_s']:>11.3f} {r['overhead']:>9.1%}")
    base = results[0]
    for r in results[1:]:
        print(f"speed-up {r['workers']} vs {base['workers']} worker(s): "
              f"{r['graphs_per_hour'] / base['graphs_per_hour']:.2f}x (target >= 1.7x for 2 vs 1)")
    overheads = ", ".join(f"{r['overhead']:.1%}" for r in results)
    print(f"queue overhead: {overheads} (target <= 5%)")


if __name__ == "__main__":
    main()
