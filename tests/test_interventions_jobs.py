"""An intervention job on the real stack: (prompt, supernode) pairs run by Celery workers, every result stored once.

The planted organism's two-hop graphs are traced into the stack's store and each country's supernode is
found there (contrast-supernode); then a job ablates every country's supernode on 13 held-out two-hop
prompts (104 pairs) on two worker processes, which are killed (kill -9) mid-job so that items are
retried, and is submitted again (nothing runs twice).
"""
from __future__ import annotations

import json

import pytest

from circuit_atlas.workers.jobfile import JobFileError, read_job_file
from circuit_atlas.workers.testing import LocalStack
from tests.test_workers import _kill_pool_process, needs_redis

N_PROMPTS = 13


@pytest.fixture
def stack(tmp_path):
    s = LocalStack(tmp_path)
    yield s
    s.close()


def test_intervention_job_header_is_checked(tmp_path):
    path = tmp_path / "job.jsonl"
    path.write_text('{"job": {"kind": "intervene", "model": "/m", "transcoders": "/t"}}\n{"prompt": "a"}\n')
    with pytest.raises(JobFileError, match="needs \"intervene\": a list of targets"):
        read_job_file(path)
    path.write_text('{"job": {"kind": "steer", "model": "/m", "transcoders": "/t"}}\n{"prompt": "a"}\n')
    with pytest.raises(JobFileError, match="use \"trace\" or \"intervene\""):
        read_job_file(path)


@needs_redis
def test_job_of_104_prompt_supernode_pairs_stores_every_result_once(stack, tmp_path):
    from circuit_atlas import organisms, queries, tracer
    from circuit_atlas.organisms import corpus as C
    from circuit_atlas.organisms.experiments import country_supernodes, trace_two_hop
    from circuit_atlas.store import open_store

    root = organisms.zoo_path("planted")
    model = tracer.load(root / "model", root / "transcoders" / "plt")
    with open_store(stack.store) as store:
        trace_two_hop(model, store)
        supernodes = country_supernodes(store)
    truth = organisms.truth("planted")
    rows = [r for r in truth["heldout"] if r["task"] == "twohop"][:N_PROMPTS]
    targets = [f"supernode:{s['id']}" for s in supernodes.values()]
    header = {"job": {"kind": "intervene", "model": str(root / "model"), "transcoders": str(root / "transcoders" / "plt"),
                      "intervene": targets, "options": {"op": "ablate", "freeze_attention": False}}}
    job = tmp_path / "job.jsonl"
    job.write_text("\n".join(json.dumps(x) for x in [header] + [{"prompt": r["prompt"], "target": r["answer"],
                                                                  "lang": r["lang"]} for r in rows]) + "\n")
    n = N_PROMPTS * len(targets)
    assert n >= 100

    stack.start_workers(n_trace=2)
    job_id = stack.submit(job)
    st = stack.wait(job_id, until=lambda st: st.counts.get("done", 0) >= 1, timeout=600)
    assert st.pending >= 20, st.counts                 # the kills below land mid-job: its items are retried
    stack.kill_worker("trace1")
    stack.kill_worker("ingest1")
    _kill_pool_process(stack.workers["trace2"].pid)    # the worker survives; reject_on_worker_lost requeues
    stack.start_worker("ingest", "ingest2")
    st = stack.wait(job_id, timeout=600)
    assert st.counts == {"done": n}, (st.errors, stack.log_tails())
    status = stack.cli("jobs", "status", job_id).stdout
    assert f"done {n}" in status
    again = stack.submit(job)                                  # every pair is known: nothing runs again
    assert stack.jobs.status(again).counts == {"skipped": n}
    stack.stop_workers()

    ids = set(stack.jobs.r.hgetall(f"ca:job:{job_id}:graph").values())
    with open_store(stack.store, read_only=True) as store:
        stored = store.query("MATCH (i:Intervention) RETURN i.id AS id, i.prompt AS prompt, i.job AS job, "
                             "i.target_token AS token, i.prob_after AS p")
        links = store.query("MATCH (i:Intervention)-[x:ON_SUPERNODE]->(s:Supernode) "
                            "RETURN i.id AS id, s.id AS supernode, x.role AS role")
        ranked = queries.run(store, "causal-supernodes", role="ablate")
    assert len(stored) == n and {r["id"] for r in stored} == ids              # each result once
    assert {r["job"] for r in stored} == {job_id}
    assert len(links) == n and {r["role"] for r in links} == {"ablate"}
    assert {r["supernode"] for r in ranked} == {s["id"] for s in supernodes.values()}
    assert all(r["n_prompts"] == N_PROMPTS for r in ranked)

    # a worker's result is what the library computes in this process
    first = rows[0]
    country = next(c for c, cs in zip(C.COUNTRIES, C.CITIES) if C.city(cs[0], C.EN) == first["answer"]
                   or any(C.city(x, lang) == first["answer"] for x in cs[:1] for lang in C.LANGUAGES))
    link = {r["id"]: r["supernode"] for r in links}
    mine = next(r for r in stored if r["prompt"] == first["prompt"] and link[r["id"]] == supernodes[country]["id"])
    from circuit_atlas.queries import interventions as evidence
    with open_store(stack.store, read_only=True) as store:
        ivs, _ = evidence.resolve(evidence.Spec("ablate", f"supernode:{supernodes[country]['id']}", None), model, store)
    want = tracer.intervene(model, first["prompt"], ivs, targets=[first["answer"]], freeze_attention=False)
    assert mine["token"] == first["answer"]
    assert mine["p"] == pytest.approx(want.targets[0].prob_after, abs=1e-6)
