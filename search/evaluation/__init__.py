"""Search-quality evaluation: judged or weak-label queries through the real ranking path.

`run_evaluation` is the one entry point (`manage.py evaluate` calls it): load the queries, run
each through `search.services.text_signals`, score keyword, visual and fused rankings (recall@k,
MRR, nDCG@10, zero-result rate) per store and overall with bootstrap intervals, optionally
compare with a previous report and grid-search the fusion weights (printed, never applied), and
write report.json / report.txt / report.html under `MEEPO_DATA_DIR/evaluation/`. When products
have zero-shot attributes, their agreement with the stores' own words is reported too.
Read-only towards the catalogue and the index; safe to run while the site serves.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

from search.evaluation.queries import EvalQuery, JudgedSetError, load_judged, weak_label_queries
from search.evaluation.report import compare, load_report, to_json, write_report
from search.evaluation.runner import evaluate_queries, tune_fusion


@dataclass
class EvaluationRun:
    report: dict[str, Any]
    directory: Path | None  # where it was written; None with write=False


def _attribute_section(*, resamples: int, seed: int) -> dict[str, Any] | None:
    """Zero-shot attributes against the stores' words, when products have been labelled."""
    from catalog.models import ProductAttributes
    from search.attributes import TaxonomyError, load_taxonomy
    from search.evaluation.attributes import evaluate_attributes

    if not ProductAttributes.objects.exists():
        return None
    try:
        taxonomy = load_taxonomy()
    except TaxonomyError:
        return None
    return evaluate_attributes(taxonomy, resamples=resamples, seed=seed)


def run_evaluation(
    *,
    queries: list[EvalQuery],
    depth: int = 120,
    resamples: int = 1000,
    seed: int = 0,
    previous: dict[str, Any] | None = None,
    tune_metric: str | None = None,
    write: bool = True,
) -> EvaluationRun:
    """Evaluate `queries`, compare with `previous`, tune when asked; write the report files."""
    from search.services import _index_version

    if not queries:
        raise ValueError("no queries to evaluate")
    evaluation, runs = evaluate_queries(queries, depth=depth, resamples=resamples, seed=seed)
    tune = tune_fusion(runs, metric=tune_metric) if tune_metric else None
    report = to_json(
        evaluation, model=settings.MEEPO_CLIP_MODEL, index_version=_index_version(), tune=tune
    )
    report["attributes"] = _attribute_section(resamples=resamples, seed=seed)
    if previous is not None:
        report["compare"] = compare(report, previous)
    return EvaluationRun(report, write_report(report) if write else None)


__all__ = [
    "EvalQuery",
    "EvaluationRun",
    "JudgedSetError",
    "load_judged",
    "load_report",
    "run_evaluation",
    "weak_label_queries",
]
