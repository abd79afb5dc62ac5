"""An evaluation as JSON, a plain-text table and an HTML page with plots; runs compared.

Reports are written to `MEEPO_DATA_DIR/evaluation/<UTC stamp>/` (report.json, report.txt,
report.html) and never overwritten; the admin links the newest. The JSON keeps every query's
metric values, so `--compare previous.json` can bootstrap the paired difference on the queries
both runs share.
"""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings

from search.evaluation.metrics import METRICS, paired_difference
from search.evaluation.runner import OVERALL, SIGNALS, Evaluation, TuneResult

FORMAT_VERSION = 1
WEAK_NOTE = (
    "Weak labels (a store's own categories, tags or title words used as queries) measure "
    "agreement with how each store labels its products, not truth: stores label "
    "inconsistently, and keyword search reads these very fields, so its scores on them are "
    "inflated by construction. Compare runs with each other, not with other systems."
)
TABLE_METRICS = ("recall@1", "recall@10", "recall@50", "mrr", "ndcg@10", "zero_result")


def reports_root() -> Path:
    return Path(settings.MEEPO_DATA_DIR) / "evaluation"


def _key(query: dict[str, Any]) -> tuple:
    return (query["query"], query.get("store"), query.get("source", "judged"))


def to_json(
    evaluation: Evaluation,
    *,
    model: str,
    index_version: str | None,
    tune: TuneResult | None = None,
) -> dict[str, Any]:
    sources = sorted({q.source for q in evaluation.queries})
    return {
        "format": FORMAT_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": model,
        "index_version": index_version,
        "visual_status": evaluation.visual_status,
        "settings": evaluation.settings,
        "sources": sources,
        "note": WEAK_NOTE if set(sources) - {"judged"} else "",
        "queries": [
            {
                "query": q.query,
                "store": q.store,
                "source": q.source,
                "relevant": len(q.relevant),
                "unresolved": list(q.unresolved),
            }
            for q in evaluation.queries
        ],
        "per_query": evaluation.per_query,
        "summary": {
            group: {
                signal: {metric: est.as_dict() for metric, est in metrics.items()}
                for signal, metrics in signals.items()
            }
            for group, signals in evaluation.summary.items()
        },
        "tune": None if tune is None else tune.__dict__,
    }


def compare(current: dict[str, Any], previous: dict[str, Any]) -> dict[str, Any]:
    """Differences current - previous per group, signal and metric.

    On the queries both runs share (same text, store and source) the difference is paired and
    bootstrapped with the current run's seed; groups with no shared queries get the difference
    of the means only (`paired: false`, no interval).
    """
    seed = int(current["settings"].get("seed", 0))
    resamples = int(current["settings"].get("resamples", 1000))
    old_index = {_key(q): i for i, q in enumerate(previous.get("queries", []))}
    pairs = [
        (i, old_index[_key(q)]) for i, q in enumerate(current["queries"]) if _key(q) in old_index
    ]
    diffs: dict[str, Any] = {}
    for group, signals in current["summary"].items():
        members = [
            (i, j)
            for i, j in pairs
            if group == OVERALL or (current["queries"][i]["store"] or "(all stores)") == group
        ]
        diffs[group] = {}
        for signal in signals:
            diffs[group][signal] = {}
            for metric in METRICS:
                old = previous.get("summary", {}).get(group, {}).get(signal, {}).get(metric)
                if members and signal in previous.get("per_query", {}):
                    est = paired_difference(
                        [current["per_query"][signal][i][metric] for i, _ in members],
                        [previous["per_query"][signal][j][metric] for _, j in members],
                        resamples=resamples,
                        seed=seed,
                    )
                    diffs[group][signal][metric] = {**est.as_dict(), "paired": True}
                elif old is not None:
                    delta = signals[signal][metric]["mean"] - old["mean"]
                    diffs[group][signal][metric] = {"mean": delta, "paired": False, "n": 0}
    return {
        "previous_created_at": previous.get("created_at"),
        "previous_model": previous.get("model"),
        "shared_queries": len(pairs),
        "diff": diffs,
    }


def _cell(est: dict[str, Any]) -> str:
    return f"{est['mean']:.3f} ({est['low']:.2f}-{est['high']:.2f})"


def _delta_cell(d: dict[str, Any] | None) -> str:
    if d is None:
        return "-"
    if not d.get("paired"):
        return f"{d['mean']:+.3f} (unpaired)"
    sure = "*" if d["low"] > 0 or d["high"] < 0 else " "
    return f"{d['mean']:+.3f}{sure}({d['low']:+.2f},{d['high']:+.2f})"


def render_text(report: dict[str, Any]) -> str:
    """The table an operator reads in a terminal: mean (95 % bootstrap interval)."""
    width = 19
    lines = [
        f"Model {report['model']}, index {report['index_version'] or '(none)'}, "
        f"{len(report['queries'])} queries ({', '.join(report['sources']) or 'none'}); "
        "mean (95% bootstrap interval).",
    ]
    if report["visual_status"] != "ok":
        lines.append("Visual search was NOT available: visual rows are empty, fused = keyword.")
    header = f"{'group / signal':<32}{'n':>5}  " + "".join(f"{m:<{width}}" for m in TABLE_METRICS)
    lines += ["", header, "-" * len(header)]
    for group, signals in report["summary"].items():
        for signal in SIGNALS:
            metrics = signals[signal]
            n = metrics["mrr"]["n"]
            row = f"{group[:22] + ' ' + signal:<32}{n:>5}  "
            lines.append(row + "".join(f"{_cell(metrics[m]):<{width}}" for m in TABLE_METRICS))
    if report.get("compare"):
        cmp = report["compare"]
        lines += [
            "",
            f"Difference to the run of {cmp['previous_created_at']} "
            f"({cmp['shared_queries']} shared queries; * = interval excludes 0):",
            header,
            "-" * len(header),
        ]
        for group, signals in cmp["diff"].items():
            for signal in SIGNALS:
                cells = signals.get(signal, {})
                row = f"{group[:22] + ' ' + signal:<32}{'':>5}  "
                lines.append(
                    row + "".join(f"{_delta_cell(cells.get(m)):<{width}}" for m in TABLE_METRICS)
                )
    if report.get("tune"):
        lines += ["", render_tune(report["tune"])]
    if report.get("attributes"):
        from search.evaluation.attributes import render_attributes

        lines += ["", render_attributes(report["attributes"])]
    if report.get("note"):
        lines += ["", "Note: " + report["note"]]
    return "\n".join(lines) + "\n"


def _setting(row: dict[str, Any], metric: str) -> str:
    floor = (
        f"floor percentile={row['floor_percentile']:g} margin={row['floor_margin']:g}"
        if row.get("floor_enabled")
        else "floor off"
    )
    return (
        f"visual_weight={row['visual_weight']:g} keyword_weight={row['keyword_weight']:g} "
        f"{floor}  {metric}={row[metric]:.4f}"
    )


def render_tune(tune: dict[str, Any]) -> str:
    metric = tune["metric"]
    return "\n".join(
        [
            f"Tuning fusion weights and relevance floor on {metric} (nothing applied):",
            f"  current  {_setting(tune['baseline'], metric)}",
            f"  best     {_setting(tune['best'], metric)}  gain {tune['gain']:+.4f}",
            f"  ({len(tune['grid'])} settings tried; MEEPO_RELEVANCE_* and "
            "search.services weights are yours to change)",
        ]
    )


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _bars(ax, labels, series: dict[str, list[dict[str, Any]]]) -> None:
    import numpy as np

    x = np.arange(len(labels))
    width = 0.8 / max(1, len(series))
    for i, (name, estimates) in enumerate(series.items()):
        means = [e["mean"] for e in estimates]
        low = [e["mean"] - e.get("low", e["mean"]) for e in estimates]
        high = [e.get("high", e["mean"]) - e["mean"] for e in estimates]
        ax.bar(x + i * width, means, width, yerr=[low, high], capsize=3, label=name)
    ax.set_xticks(x + width * (len(series) - 1) / 2, labels, rotation=20, ha="right")
    ax.legend()


def plots(report: dict[str, Any]) -> list[tuple[str, str]]:
    """(title, base64 PNG) figures: overall metrics per signal, nDCG@10 per store, differences."""
    import matplotlib

    matplotlib.use("Agg")  # no display on a server; must precede pyplot
    from matplotlib import pyplot as plt

    figures = []
    overall = report["summary"][OVERALL]
    metrics = ["recall@10", "recall@50", "mrr", "ndcg@10", "zero_result"]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    _bars(ax, metrics, {s: [overall[s][m] for m in metrics] for s in SIGNALS})
    ax.set_ylim(0, 1.05)
    figures.append(("All queries, each signal (95 % bootstrap intervals)", _png(fig)))
    plt.close(fig)
    groups = [g for g in report["summary"] if g != OVERALL]
    if groups:
        fig, ax = plt.subplots(figsize=(8, 0.4 * len(groups) + 2.5))
        _bars(
            ax, groups, {s: [report["summary"][g][s]["ndcg@10"] for g in groups] for s in SIGNALS}
        )
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("nDCG@10")
        figures.append(("nDCG@10 per store", _png(fig)))
        plt.close(fig)
    if report.get("compare"):
        diff = report["compare"]["diff"].get(OVERALL, {})
        fig, ax = plt.subplots(figsize=(8, 3.5))
        empty = {"mean": 0.0}
        _bars(ax, metrics, {s: [diff.get(s, {}).get(m, empty) for m in metrics] for s in SIGNALS})
        ax.axhline(0, color="black", linewidth=0.8)
        figures.append(("Difference to the previous run, all queries", _png(fig)))
        plt.close(fig)
    return figures


_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Meepo search evaluation {{ report.created_at }}</title>
<style>body{font-family:sans-serif;margin:2rem;max-width:80rem}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:right}th:first-child,td:first-child{text-align:left}
pre{background:#f5f5f5;padding:1rem;overflow:auto}</style></head><body>
<h1>Search evaluation</h1>
<p>{{ report.created_at }} &middot; model <code>{{ report.model }}</code> &middot; index
{{ report.index_version|default:"(none)" }} &middot; {{ report.queries|length }} queries
({{ report.sources|join:", " }}) &middot; visual search {{ report.visual_status }}</p>
{% if report.note %}<p><strong>Read with care:</strong> {{ report.note }}</p>{% endif %}
{% for title, png in figures %}<h2>{{ title }}</h2><img alt="{{ title }}" src="data:image/png;base64,{{ png }}">{% endfor %}
<h2>Table</h2><pre>{{ text }}</pre>
</body></html>"""


def render_html(report: dict[str, Any], text: str) -> str:
    from django.template import Context, Engine

    template = Engine(autoescape=True).from_string(_HTML)
    return template.render(Context({"report": report, "figures": plots(report), "text": text}))


def write_report(report: dict[str, Any], *, root: Path | None = None) -> Path:
    """Write report.json, report.txt and report.html into a new stamped directory; return it."""
    root = root or reports_root()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    out = root / stamp
    out.mkdir(parents=True, exist_ok=False)
    text = render_text(report)
    (out / "report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    (out / "report.txt").write_text(text, encoding="utf-8")
    (out / "report.html").write_text(render_html(report, text), encoding="utf-8")
    return out


def latest_report(root: Path | None = None) -> Path | None:
    """The newest report directory that has an HTML page, or None."""
    root = root or reports_root()
    if not root.is_dir():
        return None
    runs = sorted(p for p in root.iterdir() if (p / "report.html").is_file())
    return runs[-1] if runs else None


def load_report(path: str | Path) -> dict[str, Any]:
    """A previous report.json (or the directory holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / "report.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "summary" not in data:
        raise ValueError(f"{path} is not an evaluation report")
    return data
