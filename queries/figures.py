"""Figures drawn from query rows, and how they are saved (PNG for reading, SVG for papers).

The common-paths diagram (`plot_paths`) draws the paths into a logit as a small circuit. Columns left
to right: start tokens, the features of each hop, end tokens. A node is drawn once per column however
many paths pass it, so paths that share a feature merge, as a researcher draws a circuit by hand. Each path is a polyline; an edge is blue when it excites and red when it inhibits;
the line width grows with |mean strength|. Nodes are ordered by the first (highest ranked) path through
them, so the top of the figure is the most common, strongest path.
"""
from __future__ import annotations

from pathlib import Path

from circuit_atlas.queries.analyses import short_key
from circuit_atlas.queries.labels import token_text

EXCITES, INHIBITS = "#2a6fdb", "#d62728"
MAX_LABEL = 32         # characters of a label drawn in a node (the rest is cut with "…")


def _cells(rows: list[dict]) -> list[str]:
    """The columns of a common-paths row along its path: start_token, f1 .. f<hops-1>, end_token."""
    return ["start_token", *(f"f{i}" for i in range(1, len(rows[0]["signs"]))), "end_token"]


def path_columns(rows: list[dict]) -> list[list[str]]:
    """Per column, the node keys of `rows` in the order of their first path: start token, f1 .., end token."""
    return [list(dict.fromkeys(r[c] for r in rows)) for c in _cells(rows)]


def _node_text(rows: list[dict], column: int, key: str, last: int) -> str:
    if column in (0, last):
        return token_text(key)
    label = next(r[f"f{column}_label"] for r in rows if r[f"f{column}"] == key)
    label = label if len(label) <= MAX_LABEL else label[:MAX_LABEL - 1] + "…"
    return f"[{label}]\n{short_key(key)}" if label else short_key(key)


def paths_figure(rows: list[dict], title: str = ""):
    """The matplotlib figure of `plot_paths`. Node texts have gid "<column>:<key>", edges "<row>:<hop>"."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = path_columns(rows)
    last = len(columns) - 1
    tallest = max(len(c) for c in columns)
    fig, ax = plt.subplots(figsize=(2.2 + 2.6 * len(columns), 1.6 + 0.55 * tallest))
    y = {(i, key): 1 - (j + 0.5) / len(col) for i, col in enumerate(columns) for j, key in enumerate(col)}
    for i, col in enumerate(columns):
        for key in col:
            ax.text(i, y[i, key], _node_text(rows, i, key, last), ha="center", va="center", fontsize=7,
                    zorder=3, gid=f"{i}:{key}", bbox=dict(boxstyle="round,pad=0.3", fc="white", ec="0.6"))
    strongest = max(abs(r["mean_strength"]) for r in rows) or 1.0
    cells = _cells(rows)
    for n, r in reversed(list(enumerate(rows))):                 # the top-ranked path is drawn last, on top
        width = 0.8 + 5.2 * abs(r["mean_strength"]) / strongest
        for i, sign in enumerate(r["signs"]):
            a, b = (i, r[cells[i]]), (i + 1, r[cells[i + 1]])
            ax.plot([a[0], b[0]], [y[a], y[b]], color=EXCITES if sign == "+" else INHIBITS, lw=width,
                    alpha=0.55, solid_capstyle="round", zorder=2, gid=f"{n}:{i}")
    ax.plot([], [], color=EXCITES, lw=3, label="excites")
    ax.plot([], [], color=INHIBITS, lw=3, label="inhibits")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, -0.02), ncol=2, fontsize=7, frameon=False)
    ax.set_xlim(-0.6, last + 0.6)
    ax.set_ylim(-0.08, 1.02)
    ax.axis("off")
    ax.set_title(title or default_title(rows), fontsize=9)
    fig.tight_layout()
    return fig


def default_title(rows: list[dict]) -> str:
    """E.g. 'Common paths into " Austin": 10 paths, 3 hops, in up to 4 graphs (width: |mean strength|)'."""
    ends = sorted({r["end_token"] for r in rows})
    into = token_text(ends[0]) if len(ends) == 1 else f"{len(ends)} logits"
    most = max(r["n_graphs"] for r in rows)
    return (f"Common paths into {into}: {len(rows)} path{'s' * (len(rows) != 1)}, {len(rows[0]['signs'])} hops, "
            f"{f'in up to {most} graphs' if most > 1 else 'each in 1 graph'} (width: |mean strength|)")


def plot_paths(rows: list[dict], out_stem: str | Path, title: str = "") -> list[Path]:
    """Draw common-paths rows (see the module docstring); writes <out_stem>.png and .svg, returns both."""
    if not rows:
        raise ValueError("no paths to draw")
    return save_figure(paths_figure(rows, title), out_stem)


def save_figure(fig, out_stem: str | Path) -> list[Path]:
    """Write `fig` as <out_stem>.png and <out_stem>.svg (folders made as needed), close it, return both paths."""
    import matplotlib.pyplot as plt

    stem = Path(out_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    for path in paths:
        fig.savefig(path, dpi=150)
    plt.close(fig)
    return paths
