"""The job state machine in redis: its keys, its states, the Lua scripts that move an item between states
atomically, `connect`, the client that rides out a redis restart, and `ping_once` and `shown` for the commands
that must say at once that redis is not there. Jobs (workers/jobs.py) is its main user.

Why redis: the broker is already there, and with `appendonly yes` (compose.yaml, the tests) every
write survives a redis restart; worker death loses nothing because the state is outside the
workers. Layout (all keys under "ca:"):

    ca:jobs                 zset  job id -> submit time
    ca:job:<id>             hash  spec (JSON), file, created, n, pending, started, finished, cancelled
    ca:job:<id>:items       hash  index -> {"prompt", "tags", "key", "line"} or {"line", "error"}
    ca:job:<id>:state       hash  index -> queued | tracing | traced | done | skipped | failed | cancelled
    ca:job:<id>:error       hash  index -> one error line
    ca:job:<id>:attempts    hash  index -> deliveries of its trace task (poison detection)
    ca:job:<id>:trace_s     hash  index -> seconds spent inside tracer.trace
    ca:job:<id>:graph       hash  index -> graph id in the store
    ca:job:<id>:done        zset  index -> time it was stored (graphs per hour)
    ca:traced               hash  trace key -> graph id, for every graph the workers stored
    ca:artifact:<key>       string a traced graph not yet stored (gzip'd graph JSON): how it travels from
                                  the trace worker's host to an ingest worker's; deleted once stored
    ca:ingest:pending       set   "<job id>:<index>" traced and not yet stored (ingest batches take from it)
    ca:lost                 set   "<task>:<job id>:<index>" seen without a broker message at the last sweep

Terminal states (done, skipped, failed, cancelled) are final: a redelivered task that finds its
item terminal returns at once. Only `retry-failed` moves failed items back to queued.
"""
from __future__ import annotations

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

QUEUED, TRACING, TRACED = "queued", "tracing", "traced"
DONE, SKIPPED, FAILED, CANCELLED = "done", "skipped", "failed", "cancelled"
TERMINAL = (DONE, SKIPPED, FAILED, CANCELLED)
REGISTRY = "ca:traced"
ARTIFACT = "ca:artifact:"    # + trace key
INGEST_PENDING = "ca:ingest:pending"
TRACE_TASK, INGEST_TASK = "workers.trace", "workers.ingest"
MAX_ARTIFACT_BYTES = 512 * 1024**2   # redis's limit on one string value


# Move one item to a terminal state, once. KEYS: state, error, graph, done zset, job hash.
# ARGV: index, new state, error, graph id, now. Returns 1 if it moved, 0 if it was already terminal.
FINISH = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur == 'done' or cur == 'skipped' or cur == 'failed' or cur == 'cancelled' then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[2], ARGV[1], ARGV[3]) end
if ARGV[4] ~= '' then redis.call('HSET', KEYS[3], ARGV[1], ARGV[4]) end
if ARGV[2] == 'done' then redis.call('ZADD', KEYS[4], ARGV[5], ARGV[1]) end
if redis.call('HINCRBY', KEYS[5], 'pending', -1) <= 0 then redis.call('HSET', KEYS[5], 'finished', ARGV[5]) end
return 1
"""

# Keep a traced graph until it is stored, unless it is stored already (a late duplicate trace must not
# leave a copy behind that nothing deletes). KEYS: registry, artifact. ARGV: trace key, bytes.
PUT_ARTIFACT = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
return 1
"""

# Move one item between non-terminal states. KEYS: state. ARGV: index, new state.
ADVANCE = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur == 'done' or cur == 'skipped' or cur == 'failed' or cur == 'cancelled' then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""


def shown(redis_url: str) -> str:
    """The URL as messages show it: a password as ** (as Celery's banner shows it)."""
    from urllib.parse import urlsplit

    parts = urlsplit(redis_url)
    if not parts.password:
        return redis_url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":**@", 1)).geturl()


def ping_once(redis_url: str, timeout_s: float = 2.0) -> None:
    """One quick try, not connect()'s patient retries: for a command that is about to start work on redis
    and should say at once that redis is not there. Raises redis.RedisError."""
    redis.Redis.from_url(redis_url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s).ping()


def connect(redis_url: str, decode: bool = True) -> redis.Redis:
    """A client that rides out a short broker outage (a redis restart) instead of failing at once."""
    return redis.Redis.from_url(redis_url, decode_responses=decode, socket_connect_timeout=5,
                                retry=Retry(ExponentialBackoff(cap=2.0, base=0.1), 10),
                                retry_on_error=[redis.ConnectionError, redis.TimeoutError])

