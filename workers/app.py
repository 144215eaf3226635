"""The Celery application: `celery -A workers.app worker -Q trace` (GPU) / `-Q ingest` (store writer).

Configuration is in workers/config.py; the tasks are in workers/tasks.py. Nothing heavy is imported
here, so a worker's main process stays small and each pool process loads the model on first use.
Importing the app reads no settings: they are read once per process when first needed (the worker's
start, or the first message a client sends) and passed down from here.
"""
from __future__ import annotations

import functools

from celery import Celery

from circuit_atlas.settings import Settings
from circuit_atlas.workers.config import WorkerConfig, celery_config


@functools.cache
def settings() -> Settings:
    """This process's settings, read once."""
    return Settings.load()


@functools.cache
def config() -> WorkerConfig:
    """This process's worker settings, read once."""
    return WorkerConfig.load()


app = Celery("circuit_atlas", include=["circuit_atlas.workers.tasks"])
app.add_defaults(lambda: celery_config(settings(), config()))   # called when Celery first reads its configuration
