"""Query results to the terminal: table, JSON or CSV. Shared by `cypher` and `query`.

    @output_options            # adds --format table|json|csv
    def command(fmt, ...):
        emit(rows, fmt)
`--format json` prints one JSON array of row objects; csv has a header row; table is for eyes.
"""
from __future__ import annotations

import csv
import io
import json

import click

FORMATS = ("table", "json", "csv")


def output_options(func):
    return click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
                        help="table for reading, json (one array of row objects) or csv for programs.")(func)


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _columns(rows: list[dict]) -> list[str]:
    cols: dict[str, None] = {}
    for row in rows:
        cols.update(dict.fromkeys(row))
    return list(cols)


def format_rows(rows: list[dict], fmt: str = "table", max_width: int = 60) -> str:
    if fmt == "json":
        return json.dumps(rows, ensure_ascii=False, indent=2, default=str)
    cols = _columns(rows)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(cols)
        writer.writerows([[_cell(r.get(c)) for c in cols] for r in rows])
        return buf.getvalue().rstrip("\n")
    if not rows:
        return "(no rows)"
    cells = [[_cell(r.get(c)) for c in cols] for r in rows]
    cells = [[v if len(v) <= max_width else v[: max_width - 1] + "…" for v in line] for line in cells]
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(cols)]
    fmt_line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths)).rstrip()
    out = [fmt_line(cols), fmt_line(["-" * w for w in widths])] + [fmt_line(line) for line in cells]
    out.append(f"({len(rows)} row{'s' * (len(rows) != 1)})")
    return "\n".join(out)


def emit(rows: list[dict], fmt: str = "table") -> None:
    click.echo(format_rows(rows, fmt))


def parse_param(text: str) -> tuple[str, object]:
    """'k=v' -> (k, typed v). The value is read as JSON when it parses (42, 1.5, true, null,
    ["a", 2], {"x": 1}), else kept as a string: gid=abc -> "abc"; use k='"42"' for the string "42"."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise click.BadParameter(f"{text!r}: expected key=value, e.g. layer=3 or names='[\"a\", \"b\"]'")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def parse_params(pairs: tuple[str, ...]) -> dict:
    """Repeated `k=v` options (--param, --option, --tag) -> {k: typed v}, as `parse_param` reads each."""
    return dict(parse_param(p) for p in pairs)
