"""Query results to the terminal: table, JSON or CSV. Shared by `cypher` and `query`.

    @output_options            # adds --format table|json|csv
    def command(fmt, ...):
        emit(rows, fmt)
`--format json` prints one JSON array of row objects; csv has a header row and full-precision numbers;
table is for eyes: 6 significant digits, tokens quoted so that leading spaces show, rows with nested
values (dicts, lists of rows) as vertical cards.
"""
from __future__ import annotations

import csv
import io
import json
import math

import click

FORMATS = ("table", "json", "csv")
UNCUT = ("path",)        # table columns never shortened: a path is read whole


def output_options(func):
    return click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
                        help="table for reading, json (one array of row objects) or csv for programs.")(func)


def _cell(value, full: bool = False) -> str:
    """A value as text: 6 significant digits for people, full precision (`full`) for programs (CSV)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if full else f"{value:.6g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _csv_value(value):
    """Numbers as numbers (full precision: csv writes repr), everything else as text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return _cell(value, full=True)


def _is_token(column: str) -> bool:
    return column == "token" or column.endswith("_token")


def _shown(column: str, value) -> str:
    """A table cell: tokens quoted so that leading spaces show (' Austin' -> '" Austin"')."""
    if _is_token(column) and isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return _cell(value)


def _card_value(value, indent: str = "  ") -> list[str]:
    """A nested value as lines: a dict one 'key: value' a line, a list of dicts one '- k=v, ...' an item
    (blank fields left out: an embedding neighbour has no fkey or label)."""
    if isinstance(value, dict):
        return [f"{indent}{k}: {_shown(k, v)}" for k, v in value.items()]
    if isinstance(value, list) and any(isinstance(v, dict) for v in value):
        return [f"{indent}- " + ", ".join(f"{k}={_shown(k, x)}" for k, x in v.items() if x not in (None, ""))
                if isinstance(v, dict)
                else f"{indent}- {_cell(v)}" for v in value] or [f"{indent}(none)"]
    return []


def format_cards(rows: list[dict]) -> str:
    """Rows with nested values (dicts, lists of dicts) as vertical cards, one 'column  value' a line."""
    width = max(len(c) for c in _columns(rows))
    out = []
    for i, row in enumerate(rows, 1):
        out.append(f"-[ row {i} ]" + "-" * max(0, width - 8))
        for column, value in row.items():
            nested = _card_value(value)
            if nested:
                out.append(column)
                out += nested
            else:
                text = _shown(column, value) if not isinstance(value, list) else ", ".join(_shown(column, v) for v in value)
                out.append(f"{column.ljust(width)}  {text}")
    out.append(f"({len(rows)} row{'s' * (len(rows) != 1)})")
    return "\n".join(out)


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
        csv.writer(buf, lineterminator="\n").writerow(cols)
        # every text value quoted (a token's leading space survives any reader); numbers bare
        csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC).writerows(
            [[_csv_value(r.get(c)) for c in cols] for r in rows])
        return buf.getvalue().rstrip("\n")
    if not rows:
        return "(no rows)"
    if any(_card_value(v) for r in rows for v in r.values()):
        return format_cards(rows)
    cells = [[_shown(c, r.get(c)) for c in cols] for r in rows]
    cells = [[v if len(v) <= max_width or c in UNCUT else v[: max_width - 1] + "…" for c, v in zip(cols, line)]
             for line in cells]
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(cols)]
    fmt_line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths)).rstrip()
    out = [fmt_line(cols), fmt_line(["-" * w for w in widths])] + [fmt_line(line) for line in cells]
    out.append(f"({len(rows)} row{'s' * (len(rows) != 1)})")
    return "\n".join(out)


def emit(rows: list[dict], fmt: str = "table") -> None:
    click.echo(format_rows(rows, fmt))


def parse_param(text: str, as_string: bool = False) -> tuple[str, object]:
    """'k=v' -> (k, typed v), the rule of every KEY=VALUE option (--param, --option, --tag):

    - VALUE is read as JSON when it is exactly one JSON value: 42, -1.5, 1e3, true, false, null,
      "text", [1, "a"], {"x": 1};
    - anything else is the text itself: gid=abc -> "abc", id=00123 -> "00123", and a value with
      spaces around it stays text (t=' 1984' -> " 1984"), as do NaN and Infinity;
    - as_string=True (`--param-str` of `cypher`) keeps the text as it is: id=42 -> "42".
    The JSON spelling of a string also forces one: k='"42"'.
    """
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise click.BadParameter(f"{text!r}: expected key=value, e.g. layer=3 or names='[\"a\", \"b\"]'")
    if as_string or raw != raw.strip():
        return key, raw
    try:
        value = json.loads(raw, parse_constant=_not_json)
    except (json.JSONDecodeError, _NotJSON):
        return key, raw
    except ValueError as e:              # e.g. an integer of more than 4300 digits
        raise click.BadParameter(f"{key}: {e}") from None
    if not _finite(value):               # 1e400 reads as inf: say so rather than query with Infinity
        raise click.BadParameter(f"{key}: {raw} is beyond the float range (about 1.8e308)")
    return key, value


def _finite(value) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(map(_finite, value))
    if isinstance(value, dict):
        return all(map(_finite, value.values()))
    return True


class _NotJSON(Exception):
    pass


def _not_json(name: str):
    raise _NotJSON(name)                 # NaN, Infinity: not JSON, so text


def parse_params(pairs: tuple[str, ...], strings: tuple[str, ...] = ()) -> dict:
    """Repeated `k=v` options (--param, --option, --tag) -> {k: typed v}, as `parse_param` reads each;
    `strings` (--param-str) are kept as text. A key given twice is an error."""
    out: dict = {}
    for text, as_string in [(p, False) for p in pairs] + [(p, True) for p in strings]:
        key, value = parse_param(text, as_string)
        if key in out:
            raise click.BadParameter(f"{key!r} is given twice")
        out[key] = value
    return out
