"""Job files: the prompts of a bulk tracing job, their tags, and what to trace them with.

JSONL — an optional header line `{"job": {...}}`, then one object per prompt; every key but
"prompt" is a tag (an intervention job, `"kind": "intervene"`, reads a row's "target" tag as the token
to measure; see workers/interventions.py):

    {"job": {"model": "/models/tiny", "transcoders": "/models/tiny-plt",
             "options": {"max_n_logits": 5}, "tags": {"set": "suspect"}}}
    {"prompt": "The capital of France is", "lang": "en", "concept": "capital"}
    {"prompt": "La capitale de la France est", "lang": "fr", "concept": "capital"}

CSV — a header row with a "prompt" column; every other column is a tag. Plain text (.txt) — one prompt
per line, blank lines skipped, no tags. With CSV and text the job settings come from CLI flags (`--model`, `--transcoders`, `--option k=v`, `--tag k=v`), which also override a
JSONL header.

A malformed row does not stop the job: it becomes a failed item whose error names the file and
line, so `jobs status` shows it next to the prompts that ran.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path


class JobFileError(ValueError):
    """The job file as a whole cannot be used (unknown format, no model, bad header)."""


@dataclass(frozen=True)
class JobSpec:
    model: str                                   # model reference given to tracer.load (a directory)
    transcoders: str                             # transcoder reference given to tracer.load
    options: dict = field(default_factory=dict)  # tracer.TraceConfig fields; unset ones take its defaults
    tags: dict = field(default_factory=dict)     # tags for every prompt of the job (a row's own win)
    kind: str = "trace"                          # "trace", or "intervene": every prompt x every `intervene` target
    intervene: list = field(default_factory=list)   # intervention targets (supernode:ID, L/F, feature keys)
    members: dict = field(default_factory=dict)  # target -> [(layer, feature)], resolved once at submission


@dataclass(frozen=True)
class Row:
    line: int                    # 1-based line in the file, for error messages
    prompt: str | None           # None when the row is malformed
    tags: dict[str, str]
    error: str | None = None     # "<file> line <n>: <problem>" for a malformed row
    target: str | None = None    # an intervention job's item: the target this row is paired with


def trace_key(spec: JobSpec, prompt: str) -> str:
    """The identity of one trace: same model, transcoders, prompt and options -> same key.

    `spec.options` must be complete (every TraceConfig field) so that an option left at its default
    and the same value written out give one key.
    """
    payload = [spec.model, spec.transcoders, prompt, sorted(spec.options.items())]
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode()).hexdigest()[:32]


def as_workers_see_it(path: str) -> str:
    """A relative model or transcoder path that exists from here, made absolute: a worker reads the path
    from its own working directory, and the submitter meant this one. Others are kept as given (the
    workers' own paths, e.g. /models in compose)."""
    return os.path.abspath(path) if not os.path.isabs(path) and os.path.exists(path) else path


def read_job_file(path: str | Path, overrides: dict | None = None) -> tuple[JobSpec, list[Row]]:
    """Parse a job file; `overrides` (model, transcoders, options, tags) come from CLI flags."""
    path = Path(path)
    if not path.is_file():
        raise JobFileError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        header, rows = _read_jsonl(path)
    elif suffix == ".csv":
        header, rows = {}, _read_csv(path)
    elif suffix == ".txt":
        header, rows = {}, _read_lines(path)
    else:
        raise JobFileError(f"{path}: unknown job file type {suffix!r}; use .jsonl, .csv or .txt (a prompt a line)")
    spec = _merge_spec(path, header, overrides or {})
    return spec, rows


def _merge_spec(path: Path, header: dict, overrides: dict) -> JobSpec:
    merged = {k: header.get(k) for k in ("model", "transcoders")}
    merged.update({k: v for k, v in overrides.items() if k in ("model", "transcoders") and v})
    for key in ("model", "transcoders"):
        if not merged[key] or not isinstance(merged[key], str):
            raise JobFileError(f"{path}: no {key} given; put it in the header line "
                               f'{{"job": {{"{key}": ...}}}} or pass --{key}')
    options = {**_dict(path, header, "options"), **(overrides.get("options") or {})}
    tags = {**_dict(path, header, "tags"), **(overrides.get("tags") or {})}
    kind = header.get("kind", "trace")
    if kind not in ("trace", "intervene"):
        raise JobFileError(f"{path}: header field \"kind\" is {kind!r}; use \"trace\" or \"intervene\"")
    targets = header.get("intervene") or []
    if kind == "intervene" and (not isinstance(targets, list) or not targets
                                or not all(isinstance(t, str) for t in targets)):
        raise JobFileError(f"{path}: an intervention job's header needs \"intervene\": a list of targets "
                           '(["supernode:ID", "L/F", ...])')
    return JobSpec(model=as_workers_see_it(merged["model"]), transcoders=as_workers_see_it(merged["transcoders"]),
                   options=options, tags={k: str(v) for k, v in tags.items()}, kind=kind, intervene=list(targets))


def _dict(path: Path, header: dict, key: str) -> dict:
    value = header.get(key) or {}
    if not isinstance(value, dict):
        raise JobFileError(f"{path}: header field {key!r} must be an object")
    return value


def _read_jsonl(path: Path) -> tuple[dict, list[Row]]:
    header: dict = {}
    rows: list[Row] = []
    with path.open(encoding="utf-8") as f:
        for line_no, text in enumerate(f, start=1):
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as e:
                rows.append(_bad(path, line_no, f"not valid JSON: {e.msg} (column {e.colno})"))
                continue
            if isinstance(obj, dict) and "job" in obj and not rows and not header:
                if not isinstance(obj["job"], dict):
                    raise JobFileError(f"{path} line {line_no}: the header's \"job\" must be an object")
                header = obj["job"]
                continue
            rows.append(_row(path, line_no, obj))
    return header, rows


def _read_csv(path: Path) -> list[Row]:
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        columns = next(reader, None)
        if not columns or "prompt" not in columns:
            raise JobFileError(f"{path}: the first row must be a header with a 'prompt' column")
        rows = []
        for values in reader:
            if not values:
                continue
            if len(values) != len(columns):
                rows.append(_bad(path, reader.line_num,
                                 f"expected {len(columns)} fields, found {len(values)}"))
            else:
                rows.append(_row(path, reader.line_num, dict(zip(columns, values))))
    return rows


def _read_lines(path: Path) -> list[Row]:
    """A prompt a line, as written but for the line break (a prompt's own spaces can matter to a tokenizer)."""
    lines = path.read_text(encoding="utf-8-sig").split("\n")     # "\n" only: a prompt may hold other breaks
    return [Row(line=i, prompt=text.removesuffix("\r"), tags={})
            for i, text in enumerate(lines, start=1) if text.strip()]


def _row(path: Path, line_no: int, obj) -> Row:
    if not isinstance(obj, dict):
        return _bad(path, line_no, f"expected an object with a \"prompt\", found {type(obj).__name__}")
    prompt = obj.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return _bad(path, line_no, "missing or empty \"prompt\"")
    tags = {}
    for key, value in obj.items():
        if key == "prompt" or value is None or value == "":
            continue
        if isinstance(value, (dict, list)):
            return _bad(path, line_no, f"tag {key!r} must be a string or number, not {type(value).__name__}")
        tags[str(key)] = str(value)
    return Row(line=line_no, prompt=prompt, tags=tags)


def _bad(path: Path, line_no: int, problem: str) -> Row:
    return Row(line=line_no, prompt=None, tags={}, error=f"{path.name} line {line_no}: {problem}")
