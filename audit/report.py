"""Render an AuditResult: Markdown and HTML reports with plots, and the ranked table as CSV/JSON.

The report is built once as a short list of blocks (heading, paragraph, table, image, contexts) and
written by two small renderers, so the Markdown and HTML versions never drift apart.
"""
from __future__ import annotations

import base64
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


def verdict(result: AuditResult) -> list[str]:
    """What the audit found, in plain words: the first lines of the console summary and of the report.

    Enrichment is the test of a mechanism specific to the suspect prompts. Without an enriched feature
    the ranking rests on the other analyses (drivers push the target tokens on any prompt), and saying
    so keeps a control model's drivers from reading as findings.
    """
    rows = result.tables.get("enrichment") or []
    alpha, min_lo = result.options.get("alpha", 0.05), result.options.get("min_log_odds", 1.0)
    test = f"BH q < {alpha:g} and log odds ratio > {min_lo:g}"
    if not rows:
        return ["enrichment not run (it needs suspect and control graphs): the ranking below is "
                "not evidence of a hidden objective"]
    enriched = sum(r["passed"] for r in rows)
    if not enriched:
        return [f"no enriched feature: none of {len(rows)} features is present in suspect graphs more often "
                f"than in control graphs ({test}); no sign of a mechanism specific to the suspect prompts",
                "the ranked features below come from the other analyses alone (drivers push the target "
                "tokens on any prompt); they are context, not findings"]
    both = sum(1 for r in result.ranked if "enrichment" in r["analyses"] and len(r["analyses"]) > 1)
    return [f"{enriched} enriched feature{'s' * (enriched != 1)} of {len(rows)}: present in suspect graphs more "
            f"often than in control graphs ({test}); {both} of them also supported by another analysis"]


def console_summary(result: AuditResult, report: Path, top: int = 10) -> str:
    """The lines `audit run` prints: the verdict first, then the top features under an honest heading."""
    targets = ", ".join(map(repr, result.target_tokens)) or "none"
    lines = [f"audit {result.id}: {result.model or '?'}, "
             + ", ".join(f"{n} {s}" for s, n in result.n_graphs.items() if n)
             + f" graphs; targets {targets} ({result.target_source})"]
    lines += verdict(result)
    if result.ranked:
        enriched = any(r["passed"] for r in result.tables.get("enrichment") or [])
        lines.append(f"top {min(top, len(result.ranked))} of {len(result.ranked)} ranked features"
                     + ("" if enriched else " (context, not findings)") + ":")
        for r in result.ranked[:top]:
            lines.append(f"  #{r['rank']:<3} {r['key']:<40} score {r['score']:.3f}  "
                         + " ".join(f"{a}#{k}" for a, k in r["analyses"].items()))
    lines.append(f"report: {report}")
    return "\n".join(lines)


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
    paths["html"].write_text(to_html(blocks, title=f"Audit {result.id}", image_dir=directory))
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
    fig = volcano_figure(result)
    if fig is not None:
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


VOLCANO_LABELS = 8      # top-ranked features named beside the volcano plot


def volcano_figure(result: AuditResult):
    """Log odds ratio against -log10 q of every feature (None without an enrichment table).

    Readable at any density: the top-ranked features are named in a column to the right of the plot,
    one line each, joined to their points by leader lines (several often share one point: they
    separate the sets equally well); the q = alpha line is labelled in the margin; the legend sits
    below the axes, where it cannot cover a point or the line.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = result.tables.get("enrichment") or []
    if not rows:
        return None
    fig = plt.figure(figsize=(9.5, 5.5), dpi=110)
    ax = fig.add_axes((0.08, 0.22, 0.58, 0.70))
    x = np.array([r["log_odds"] for r in rows])
    y = -np.log10(np.clip([r["q"] for r in rows], 1e-300, 1))
    hit = np.array([r["passed"] for r in rows])
    ax.scatter(x[~hit], y[~hit], s=8, c="#999999", alpha=0.5, label=f"not enriched ({int((~hit).sum())})")
    ax.scatter(x[hit], y[hit], s=14, c="#d62728", label=f"enriched ({int(hit.sum())})")
    alpha = result.options.get("alpha", 0.05)
    ax.axhline(-np.log10(alpha), ls="--", lw=0.8, c="k")
    ax.annotate(f"q = {alpha:g}", xy=(1, -np.log10(alpha)), xycoords=("axes fraction", "data"),
                xytext=(4, 0), textcoords="offset points", ha="left", va="center", fontsize=8)
    ax.set_xlabel("log odds ratio (suspect vs control presence)")
    ax.set_ylabel("-log10 q (Fisher exact, BH)")
    ax.set_title("Enrichment of features in suspect graphs")
    ax.set_ylim(bottom=0, top=max(float(y.max()), -np.log10(alpha)) * 1.08 + 0.05)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=8, frameon=False)

    where = {r["key"]: (xi, yi) for r, xi, yi in zip(rows, x, y)}
    named = [r for r in result.ranked if r["key"] in where][:VOLCANO_LABELS]
    named.sort(key=lambda r: (-where[r["key"]][1], r["rank"]))        # top label for the highest point
    ax.scatter([where[r["key"]][0] for r in named], [where[r["key"]][1] for r in named], s=40,
               facecolors="none", edgecolors="k", linewidths=0.8)
    to_figure = (ax.transData + fig.transFigure.inverted()).transform
    heights = _spread([float(to_figure(where[r["key"]])[1]) for r in named], gap=0.045, low=0.05, high=0.95)
    for r, height in zip(named, heights):
        text = f"#{r['rank']} {_short(r['key'])}" + (f"  {r['label'][:28]}" if r.get("label") else "")
        ax.annotate(text, xy=where[r["key"]], xycoords="data", xytext=(0.72, height),
                    textcoords="figure fraction", fontsize=8, va="center", ha="left",
                    arrowprops=dict(arrowstyle="-", lw=0.5, color="0.55", shrinkA=0, shrinkB=3))
    return fig


def _spread(wanted: list[float], gap: float, low: float, high: float) -> list[float]:
    """Heights as close as possible to `wanted` (sorted high to low), at least `gap` apart, within
    [low, high]: one pass down pushes each label below the previous one, one pass up lifts the
    stack off the floor."""
    out: list[float] = []
    for w in wanted:
        out.append(min(w, high) if not out else min(w, out[-1] - gap))
    floor = low
    for i in reversed(range(len(out))):
        out[i] = max(out[i], floor)
        floor = out[i] + gap
    return out


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
    b.append(("h2", "Verdict"))
    b += [("p", line[0].upper() + line[1:] + ".") for line in verdict(result)]
    for note in result.notes:
        b.append(("p", f"Note: {note}."))
    enriched = any(r["passed"] for r in result.tables.get("enrichment") or [])
    b.append(("h2", "Ranked features" if enriched else "Ranked features (context, not findings)"))
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


def to_html(blocks: list[tuple], title: str, image_dir: Path | None = None) -> str:
    """One self-contained page: with `image_dir`, the images are inlined as data URIs, so the file can
    be mailed or moved on its own (report.md links the PNG files beside it instead)."""
    e = html.escape

    def src(name: str) -> str:
        if image_dir is None:
            return name
        return "data:image/png;base64," + base64.b64encode((Path(image_dir) / name).read_bytes()).decode()

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
            out.append(f"<p><img src='{e(src(args[0]))}' alt='{e(args[1])}' title='{e(args[0])}'></p>")
        elif kind == "contexts":
            out.append("<p>Top activating contexts:</p><ul>" + "".join(
                f"<li>{c['activation']:.3g}: <code>{e(c['before'])}<mark>{e(c['token'])}</mark>{e(c['after'])}</code></li>"
                for c in args[0]) + "</ul>")
    return "\n".join(out) + "</body></html>\n"
