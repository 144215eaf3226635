# The circuit-atlas app image: CLI, trace workers (GPU) and ingest workers.
# PyPI's torch 2.13.0 wheel for Linux x86_64 bundles CUDA, so the same image traces on GPUs.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

# dependencies first (read from pyproject.toml), so code edits do not reinstall torch
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml','rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt

COPY . .
RUN pip install --no-deps . \
 && useradd --create-home --uid 1000 atlas \
 && mkdir -p /artifacts && chown atlas /artifacts
USER atlas

CMD ["circuit-atlas", "--help"]
