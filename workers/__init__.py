"""Celery workers for bulk tracing jobs: trace queue -> artifact -> ingest queue -> store."""
