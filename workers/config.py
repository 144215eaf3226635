"""Worker settings and the Celery configuration, in one commented block.

Values come from the environment (CIRCUIT_ATLAS_<NAME>) or the config file, through the same
lookup as `circuit_atlas.settings`, so a worker, the CLI and compose.yaml all agree.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

from circuit_atlas.settings import Settings, lookup

TRACE_QUEUE = "trace"
INGEST_QUEUE = "ingest"


@dataclass(frozen=True)
class WorkerConfig:
    torch_threads: int = 1            # intra-op threads per trace process; 1 lets N processes share N cores
    visibility_timeout: int = 7200    # s before an unacked task of a dead worker is redelivered; > prefetch x longest trace
    prefetch: int = 2                 # messages a worker holds: the next trace starts without a broker round trip
    restore_interval: int = 10        # s between sweeps that redeliver such tasks
    trace_time_limit: int = 3600      # s a single trace may run before its process is killed and it fails
    max_deliveries: int = 3           # a prompt whose worker died this often fails (poison) instead of looping
    max_retries: int = 10             # retries with exponential backoff for transient errors (broker, store)
    ingest_batch: int = 32            # graphs stored per store transaction when the ingest queue backs up
    lost_task_check: int = 30         # s between sweeps for items whose message the broker lost (see tasks.py)
    heartbeat: float = 10.0           # s between a worker's liveness beats; it counts as gone after 3 missed

    @classmethod
    def load(cls) -> "WorkerConfig":
        def get(name: str, default):
            value = lookup(name)
            return default if value is None else type(default)(value)
        return cls(**{f.name: get(f.name, f.default) for f in fields(cls)})


def celery_config(settings: Settings, cfg: WorkerConfig) -> dict:
    """Every Celery setting we rely on, with the reason for it."""
    transport = {
        "visibility_timeout": cfg.visibility_timeout,     # redelivery after worker death (see WorkerConfig)
        "unacked_restore_interval": cfg.restore_interval,
        "unacked_restore_throttle": 1,                    # sweep every interval, not every 10th
        # The sweep holds a mutex key in redis. If redis restarts mid-sweep, the key comes back from
        # the AOF with no holder; kombu's default expiry (300 s) would then block redelivery for 5 min.
        "unacked_mutex_expire": max(30, 3 * cfg.restore_interval),
    }
    return {
        "broker_url": settings.redis_url,
        "result_backend": settings.redis_url,
        "broker_transport_options": transport,
        "result_backend_transport_options": transport,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,            # a redis restart never stops a worker
        # JSON only: task arguments are ids, never pickles
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        # at-least-once delivery; tasks are idempotent (see workers/tasks.py)
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,               # a killed pool process requeues its task
        "task_acks_on_failure_or_timeout": True,          # a task that raised is done (its error is recorded)
        "worker_prefetch_multiplier": cfg.prefetch,       # 2: one running + one ready (1 for very long traces)
        "task_ignore_result": True,                       # job state lives in redis hashes, not results
        "task_time_limit": cfg.trace_time_limit,
        "task_publish_retry": True,
        "task_publish_retry_policy": {"max_retries": 20, "interval_start": 0.5,
                                      "interval_step": 1.0, "interval_max": 5.0},
        "task_routes": {"workers.trace": {"queue": TRACE_QUEUE},
                        "workers.ingest": {"queue": INGEST_QUEUE}},
        "task_default_queue": TRACE_QUEUE,
        "worker_hijack_root_logger": False,
        "worker_cancel_long_running_tasks_on_connection_loss": False,  # let a trace finish; its ack is idempotent
    }
