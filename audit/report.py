"""Render an AuditResult: Markdown and HTML reports with plots, and the ranked table as CSV/JSON.

The report is built once as a short list of blocks (heading, paragraph, table, image, contexts) and
written by two small renderers, so the Markdown and HTML versions never drift apart.
"""
from __future__ import annotations

import csv
import html
import json
from pathlib import Path

from circuit_atlas.audit.result import AuditResult

RANKED_COLUMNS = ["rank", "key", "layer", "feature", "label", "score", "analyses", "q", "log_odds",
                  "rate_suspect", "rate_control", "control_fraction", "influence", "direct",
                  "ablation", "mean_act_suspect", "mean_act_control", "mean_act_generic",
                  "steer_drop", "steer_removed"]
TOP_IN_REPORT = 20      # rows of the ranked table shown in the report (the CSV has all)
PLOTTED_FEATURES = 10   # features in the activation-by-set plot

METHOD = (
    "Ranking: weighted reciprocal-rank fusion. Each analysis ranks the features that pass its own test "
    "(enrichment: BH q < alpha and log odds ratio > min; control tokens: active on >= 90% of control-token "
    "positions and at most half of the other positions; drivers: positive influence on the target logits "
    "and non-negative direct effect, and, when the model is at hand, a drop of the target margin when the "
    "feature is ablated in the model (column ablation; drivers are then ranked by it); label search: a term "
    "matches). A feature scores "
    "sum_a w_a / (k + rank_a) with w = 1 for enrichment and drivers, 0.5 for control tokens and labels. "
    "Enrichment is Fisher's exact test (one-sided) on presence in suspect vs control graphs with "
    "Benjamini-Hochberg correction; the effect size is the Haldane-corrected log odds ratio.")


def write_report(result: AuditResult, directory: Path) -> dict[str, Path]:
    """Write report.md, report.html, ranked.csv, ranked.json and the plots into `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"csv": directory / "ranked.csv", "json": directory / "ranked.json"}
    _write_csv(result.ranked, paths["csv"])
    paths["json"].write_text(json.dumps(result.ranked, indent=1, ensure_ascii=False))
    paths.update(plot(result, directory))
    blocks = _blocks(result, {name: p.name for name, p in paths.items() if p.suffix == ".png"})
    paths["md"] = directory / "report.md"
    paths["md"].write_text(to_markdown(blocks))
    paths["html"] = directory / "report.html"
    paths["html"].write_text(to_html(blocks, title=f"Audit {result.id}"))
    return paths


def _write_csv(rows: list[dict], path: Path) -> None:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=RANKED_COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({**r, "analyses": ";".join(f"{a}:{k}" for a, k in r["analyses"].items())})


# ---------------------------------------------------------------------------------------------- plots

def plot(result: AuditResult, directory: Path) -> dict[str, Path]:
    """The enrichment volcano plot and the top features' mean activation per prompt set (PNG)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    out = {}
    rows = result.tables.get("enrichment") or []
    if rows:
        fig, ax = plt.subplots(figsize=(7, 5), dpi=110)
        x = np.array([r["log_odds"] for r in rows])
        y = -np.log10(np.clip([r["q"] for r in rows], 1e-300, 1))
        hit = np.array([r["passed"] for r in rows])
        ax.scatter(x[~hit], y[~hit], s=8, c="#999999", alpha=0.5, label="not enriched")
        ax.scatter(x[hit], y[hit], s=14, c="#d62728", label="enriched (passed)")
        top = {r["key"]: r["rank"] for r in result.ranked[:5]}
        for r, xi, yi in zip(rows, x, y):
            if r["key"] in top:
                ax.annotate(f"#{top[r['key']]} {_short(r['key'])}", (xi, yi), fontsize=8,
                            xytext=(4, 4), textcoords="offset points")
        alpha = result.options.get("alpha", 0.05)
        ax.axhline(-np.log10(alpha), ls="--", lw=0.8, c="k")
        ax.set_xlabel("log odds ratio (suspect vs control presence)")
        ax.set_ylabel("-log10 q (Fisher exact, BH)")
        ax.set_title("Enrichment of features in suspect graphs")
        ax.legend(loc="upper left", fontsize=8)
        fig.tight_layout()
        out["volcano"] = directory / "volcano.png"
        fig.savefig(out["volcano"])
        plt.close(fig)
    top = result.ranked[:PLOTTED_FEATURES]
    if top:
        fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
        sets = [s for s in ("suspect", "control", "generic") if result.n_graphs.get(s)]
        width = 0.8 / len(sets)
        for i, s in enumerate(sets):
            ax.bar(np.arange(len(top)) + i * width, [r[f"mean_act_{s}"] or 0 for r in top], width, label=s)
        ax.set_xticks(np.arange(len(top)) + width * (len(sets) - 1) / 2)
        ax.set_xticklabels([f"#{r['rank']}\n{_short(r['key'])}" for r in top], fontsize=7)
        ax.set_ylabel("mean max activation per graph")
        ax.set_title("Top features' activation by prompt set")
        ax.legend(fontsize=8)
        fig.tight_layout()
        out["activation"] = directory / "activation_by_set.png"
        fig.savefig(out["activation"])
        plt.close(fig)
    checked = [r for r in result.ranked if r.get("steer_drop") is not None]
    if checked:
        out["steering"] = _plot_steering(result, checked, directory, plt, np)
    return out


STEERING = ("Each top feature scaled by {factor:g} (0: ablated) at every position of every suspect prompt, "
            "in the real model with live attention (tracer.intervene): steer_drop is the mean drop of the "
            "target token's probability, steer_removed the share of the prompts that answered a target "
            "token and no longer do. A feature the behaviour relies on shows a large drop; redundant ones "
            "do not, whatever attribution says.")


def _plot_steering(result: AuditResult, rows: list[dict], directory: Path, plt, np) -> Path:
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r["steer_drop"] for r in rows], 0.4, label="drop of target probability", color="#d62728")
    ax.bar(x + 0.2, [r["steer_removed"] for r in rows], 0.4, label="share of answers removed", color="#1f77b4")
    ax.set_xticks(x)
    ax.set_xticklabels([f"#{r['rank']}\n{_short(r['key'])}" for r in rows], fontsize=7)
    ax.set_ylim(min(0.0, min(r["steer_drop"] for r in rows)), 1.0)
    factor = result.options.get("steer_factor", 0.0)
    ax.set_title(f"Steering checks on the suspect prompts ({'ablated' if factor == 0 else f'scaled by {factor:g}'}; "
                 f"targets {', '.join(result.target_tokens)})", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = directory / "steering.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def _short(key: str) -> str:
    return "/".join(key.rsplit("/", 2)[-2:])


# --------------------------------------------------------------------------------------------- blocks

def _fmt(x) -> str:
    if x is None:
        return ""
    if isinstance(x, float):
        return f"{x:.3g}"
    if isinstance(x, dict):
        return ", ".join(f"{k} #{v}" for k, v in x.items())
    return str(x)


def _blocks(result: AuditResult, images: dict[str, str]) -> list[tuple]:
    b: list[tuple] = [("h1", f"Audit {result.id}")]
    targets = ", ".join(repr(t) for t in result.target_tokens) or "none"
    b.append(("p", f"Model {result.model or '?'} with transcoders {result.transcoder_set or '?'}; "
                   f"created {result.created}. Graphs: "
                   + ", ".join(f"{n} {s}" for s, n in result.n_graphs.items())
                   + f". Target tokens: {targets} ({result.target_source})."))
    for note in result.notes:
        b.append(("p", f"Note: {note}."))
    b.append(("h2", "Ranked features"))
    cols = ["rank", "key", "label", "score", "analyses", "q", "log_odds", "rate_suspect", "rate_control",
            "control_fraction", "influence", "direct", "ablation", "steer_drop", "steer_removed"]
    b.append(("table", cols, [[_fmt(r.get(c)) for c in cols] for r in result.ranked[:TOP_IN_REPORT]]))
    b.append(("p", f"All {len(result.ranked)} ranked features: ranked.csv / ranked.json. {METHOD}"))
    if "volcano" in images:
        b += [("h2", "Enrichment"), ("img", images["volcano"], "enrichment volcano plot")]
    if "activation" in images:
        b += [("h2", "Activation by prompt set"), ("img", images["activation"], "activation by set")]
    if "steering" in images:
        b += [("h2", "Steering checks"), ("p", STEERING.format(factor=result.options.get("steer_factor", 0.0))),
              ("img", images["steering"], "steering checks")]
    for r in result.ranked[:TOP_IN_REPORT]:
        profile, contexts = result.profiles.get(r["key"]), result.contexts.get(r["key"])
        if not profile and not contexts:
            continue
        b.append(("h3", f"#{r['rank']} {r['key']}" + (f" — {r['label']}" if r.get("label") else "")))
        if profile:
            b.append(("table", ["property", "value"], [[k, _fmt(v)] for k, v in profile.items()]))
        if contexts:
            b.append(("contexts", contexts))
    return b


def to_markdown(blocks: list[tuple]) -> str:
    out = []
    for kind, *args in blocks:
        if kind in ("h1", "h2", "h3"):
            out.append("#" * int(kind[1]) + " " + args[0])
        elif kind == "p":
            out.append(args[0])
        elif kind == "table":
            cols, rows = args
            cell = lambda s: str(s).replace("|", "\\|").replace("\n", " ")
            out.append("\n".join(["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
                                 + ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]))
        elif kind == "img":
            out.append(f"![{args[1]}]({args[0]})")
        elif kind == "contexts":
            out.append("Top activating contexts:\n\n" + "\n".join(
                f"- {c['activation']:.3g}: `{c['before']}[[{c['token']}]]{c['after']}`".replace("\n", "⏎")
                for c in args[0]))
    return "\n\n".join(out) + "\n"


CSS = ("body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
       "table{border-collapse:collapse;font-size:13px;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 6px}"
       "th{background:#f3f3f3}img{max-width:100%;border:1px solid #eee}mark{background:#ffd54f}"
       "code{font-size:12px}li{margin:2px 0}")


def to_html(blocks: list[tuple], title: str) -> str:
    e = html.escape
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title>"
           f"<style>{CSS}</style></head><body>"]
    for kind, *args in blocks:
        if kind in ("h1", "h2", "h3", "p"):
            out.append(f"<{kind}>{e(args[0])}</{kind}>")
        elif kind == "table":
            cols, rows = args
            out.append("<table><tr>" + "".join(f"<th>{e(c)}</th>" for c in cols) + "</tr>"
                       + "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>" for row in rows)
                       + "</table>")
        elif kind == "img":
            out.append(f"<p><img src='{e(args[0])}' alt='{e(args[1])}'></p>")
        elif kind == "contexts":
            out.append("<p>Top activating contexts:</p><ul>" + "".join(
                f"<li>{c['activation']:.3g}: <code>{e(c['before'])}<mark>{e(c['token'])}</mark>{e(c['after'])}</code></li>"
                for c in args[0]) + "</ul>")
    return "\n".join(out) + "</body></html>\n"
