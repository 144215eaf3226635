# The circuit-atlas app image: CLI, trace workers (GPU) and ingest workers.
# PyPI's torch 2.13.0 wheel for Linux x86_64 bundles CUDA, so the same image traces on GPUs.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

# dependencies first, so code edits do not reinstall torch
COPY pyproject.toml README.md ./
RUN mkdir -p circuit_atlas tracer ingest queries workers organisms \
 && touch circuit_atlas/__init__.py tracer/__init__.py ingest/__init__.py queries/__init__.py \
          workers/__init__.py organisms/__init__.py \
 && pip install . && pip uninstall -y circuit-atlas

COPY . .
RUN pip install --no-deps . \
 && useradd --create-home --uid 1000 atlas \
 && mkdir -p /artifacts && chown atlas /artifacts
USER atlas

CMD ["circuit-atlas", "--help"]
