"""Prompt-set files for an audit: one prompt per line (.txt), JSON lines ({"prompt": ...}) or a JSON list."""
from __future__ import annotations

import json
from pathlib import Path


class AuditInputError(ValueError):
    """An audit input (prompt file, corpus, option) cannot be used; the message names the file and the fix."""


def read_prompts(path: str | Path) -> list[str]:
    """The prompts in `path`; blank lines and lines starting with '#' are skipped in .txt files."""
    path = Path(path)
    if not path.is_file():
        raise AuditInputError(f"{path}: no such prompt file")
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        prompts = []
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise AuditInputError(f"{path} line {n}: not JSON ({e.msg})") from None
            prompt = row.get("prompt") if isinstance(row, dict) else row
            if not isinstance(prompt, str):
                raise AuditInputError(f'{path} line {n}: expected {{"prompt": "..."}} or a JSON string')
            prompts.append(prompt)
    elif suffix == ".json":
        try:
            prompts = json.loads(text)
        except json.JSONDecodeError as e:
            raise AuditInputError(f"{path}: not JSON ({e.msg})") from None
        if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
            raise AuditInputError(f"{path}: expected a JSON list of prompt strings")
    else:
        prompts = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not prompts:
        raise AuditInputError(f"{path}: no prompts in the file")
    return prompts


def read_corpus(path: str | Path) -> list[str]:
    """Documents of a text corpus: paragraphs separated by blank lines (a .jsonl of {"text": ...} also works)."""
    path = Path(path)
    if not path.is_file():
        raise AuditInputError(f"{path}: no such corpus file")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        docs = []
        for n, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    docs.append(json.loads(line)["text"])
                except (json.JSONDecodeError, KeyError, TypeError):
                    raise AuditInputError(f'{path} line {n}: expected {{"text": "..."}}') from None
    else:
        docs = [d.strip() for d in text.split("\n\n") if d.strip()]
    if not docs:
        raise AuditInputError(f"{path}: the corpus is empty")
    return docs
