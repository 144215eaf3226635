"""The Celery application: `celery -A workers.app worker -Q trace` (GPU) / `-Q ingest` (store writer).

Configuration is in workers/config.py; the tasks are in workers/tasks.py. Nothing heavy is imported
here, so a worker's main process stays small and each pool process loads the model on first use.
"""
from __future__ import annotations

from celery import Celery

from circuit_atlas.settings import Settings
from circuit_atlas.workers.config import WorkerConfig, celery_config

settings = Settings.load()
config = WorkerConfig.load()

app = Celery("circuit_atlas", include=["circuit_atlas.workers.tasks"])
app.conf.update(celery_config(settings, config))
