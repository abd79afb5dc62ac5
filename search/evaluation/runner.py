"""Run queries through the real search path and score each signal alone and fused.

For every query, `search.services.text_signals` gives the visual, keyword and exact lists that
text search fuses; the visual list and the keyword list are scored alone, and
`search.services.fuse` (with the site's weights unless told otherwise) gives the fused ranking,
minus-words applied as on the site. Nothing is written; the catalogue and index are only read.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from search import services
from search.evaluation.metrics import METRICS, Estimate, bootstrap_estimate, query_metrics
from search.evaluation.queries import EvalQuery
from search.relevance import FloorParams
from search.selectors import SearchFilters

logger = logging.getLogger(__name__)

SIGNALS = ("keyword", "visual", "fused")
OVERALL = "overall"
WEIGHT_GRID = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0)
# Relevance-floor settings tried by --tune: percentile of the noise queries' best scores, and
# margin below the query's own best visual hit (0 disables either test).
FLOOR_PERCENTILES = (0.0, 90.0, 95.0, 99.0)
FLOOR_MARGINS = (0.0, 0.04, 0.08, 0.12)


@dataclass
class QueryRun:
    """What each signal ranked for one query (product ids, best first)."""

    query: EvalQuery
    signals: services.TextSignals  # visual: the list as the site serves it (floor applied)
    raw_visual: list[services.Candidate] = field(default_factory=list)  # before the floor
    rankings: dict[str, list[int]] = field(default_factory=dict)


@dataclass
class Evaluation:
    """Per-query metric values and their bootstrap summaries, per group and signal."""

    queries: list[EvalQuery]
    per_query: dict[str, list[dict[str, float]]]  # signal -> one dict of METRICS per query
    summary: dict[str, dict[str, dict[str, Estimate]]]  # group -> signal -> metric -> estimate
    visual_status: str  # "ok", or "not_ready" when any query ran without the visual side
    settings: dict[str, object]


def fused_ranking(
    signals: services.TextSignals,
    *,
    visual_weight: float | None = None,
    keyword_weight: float | None = None,
    visual: list[services.Candidate] | None = None,
) -> list[int]:
    """The site's fusion of one query's lists (optionally another visual list or weights)."""
    fused = services.fuse(
        signals.visual if visual is None else visual,
        signals.keyword,
        signals.exact,
        visual_weight=visual_weight,
        keyword_weight=keyword_weight,
    )
    fused = services.drop_negatives(fused, signals.negatives, {})
    return [c.product_id for c in fused]


def run_queries(queries: Iterable[EvalQuery], *, depth: int) -> list[QueryRun]:
    """Each query through `services.text_signals`, inside its store when it names one.

    The visual list is fetched without the relevance floor, then floored with the site's
    settings (`services.above_floor`), so `--tune` can try other floors without searching again.
    """
    runs = []
    for query in queries:
        filters = SearchFilters(stores=(query.store,)) if query.store else SearchFilters()
        signals = services.text_signals(
            services.normalise_query(query.query),
            filters=filters,
            depth=depth,
            floor=FloorParams(enabled=False),
        )
        raw = signals.visual
        if signals.status == "ok":
            signals = replace(signals, visual=services.above_floor(raw))
        rankings = {
            "keyword": [pid for pid, _ in signals.keyword],
            "visual": [c.product_id for c in signals.visual],
            "fused": fused_ranking(signals),
        }
        runs.append(QueryRun(query, signals, raw, rankings))
    return runs


def _groups(queries: Sequence[EvalQuery]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {OVERALL: list(range(len(queries)))}
    for i, query in enumerate(queries):
        groups.setdefault(query.group, []).append(i)
    return groups


def summarise(
    queries: Sequence[EvalQuery],
    per_query: dict[str, list[dict[str, float]]],
    *,
    resamples: int,
    seed: int,
) -> dict[str, dict[str, dict[str, Estimate]]]:
    """Bootstrap estimates of every metric, per group (overall and each store) and signal."""
    summary: dict[str, dict[str, dict[str, Estimate]]] = {}
    for group, members in _groups(queries).items():
        summary[group] = {
            signal: {
                metric: bootstrap_estimate(
                    [rows[i][metric] for i in members], resamples=resamples, seed=seed
                )
                for metric in METRICS
            }
            for signal, rows in per_query.items()
        }
    return summary


def evaluate_queries(
    queries: Sequence[EvalQuery],
    *,
    depth: int = services.CANDIDATE_DEPTH,
    resamples: int = 1000,
    seed: int = 0,
) -> tuple[Evaluation, list[QueryRun]]:
    """Score every signal on every query; the runs are returned for tuning without re-searching."""
    runs = run_queries(queries, depth=depth)
    per_query = {
        signal: [query_metrics(run.rankings[signal], run.query.grades) for run in runs]
        for signal in SIGNALS
    }
    status = "ok" if all(run.signals.status == "ok" for run in runs) else "not_ready"
    evaluation = Evaluation(
        queries=list(queries),
        per_query=per_query,
        summary=summarise(queries, per_query, resamples=resamples, seed=seed),
        visual_status=status,
        settings={
            "depth": depth,
            "resamples": resamples,
            "seed": seed,
            "visual_weight": services.VISUAL_WEIGHT,
            "keyword_weight": services.KEYWORD_WEIGHT,
            "rrf_k": services.RRF_K,
            "floor": FloorParams.from_settings().__dict__,
        },
    )
    return evaluation, runs


@dataclass(frozen=True)
class TuneResult:
    metric: str
    baseline: dict[str, float]  # the site's current setting and its score
    best: dict[str, float]
    gain: float
    grid: list[dict[str, float]]  # every setting tried with its score, best first


def _mean_metric(
    runs: Sequence[QueryRun], visuals: Sequence[list], metric: str, **weights: float
) -> float:
    values = [
        query_metrics(fused_ranking(run.signals, visual=visual, **weights), run.query.grades)[
            metric
        ]
        for run, visual in zip(runs, visuals, strict=True)
    ]
    return sum(values) / len(values) if values else 0.0


def _log_ratio(visual_weight: float, keyword_weight: float) -> float:
    if keyword_weight == 0 or visual_weight == 0:
        return math.copysign(1e9, visual_weight - keyword_weight)
    return math.log(visual_weight / keyword_weight)


def _weight_settings(grid: Sequence[float]) -> list[tuple[float, float]]:
    """One (visual, keyword) pair per distinct ratio: reciprocal-rank fusion depends only on
    the ratio of the weights (the exact-match boost aside)."""
    seen: dict[float | None, tuple[float, float]] = {}
    for visual_weight, keyword_weight in itertools.product(grid, grid):
        if visual_weight == keyword_weight == 0:
            continue
        ratio = None if keyword_weight == 0 else round(visual_weight / keyword_weight, 6)
        seen.setdefault(ratio, (visual_weight, keyword_weight))
    return list(seen.values())


def _floor_settings(tune_floor: bool) -> list[FloorParams]:
    current = FloorParams.from_settings()
    if not tune_floor:
        return [current]
    grid = [
        FloorParams(percentile=p, margin=m, enabled=bool(p or m))
        for p in FLOOR_PERCENTILES
        for m in FLOOR_MARGINS
    ]
    return [current, *(f for f in grid if f != current)]


def _floored(runs: Sequence[QueryRun], floor: FloorParams) -> list[list]:
    return [
        services.above_floor(run.raw_visual, floor) if run.signals.status == "ok" else []
        for run in runs
    ]


def _describe(visual_weight: float, keyword_weight: float, floor: FloorParams) -> dict:
    return {
        "visual_weight": visual_weight,
        "keyword_weight": keyword_weight,
        "floor_enabled": floor.enabled,
        "floor_percentile": floor.percentile,
        "floor_margin": floor.margin,
    }


def tune_fusion(
    runs: Sequence[QueryRun],
    *,
    metric: str = "ndcg@10",
    grid: Sequence[float] = WEIGHT_GRID,
    tune_floor: bool = True,
) -> TuneResult:
    """Grid search over the fusion weights and the relevance floor on already-run queries.

    Nothing is applied: the result says which setting scored best on these queries and by how
    much it beats the current one. Ties go to the setting nearest the current one.
    """
    if metric not in METRICS or metric == "zero_result":
        raise ValueError(f"cannot tune for {metric!r}")
    current_floor = FloorParams.from_settings()
    weights = (services.VISUAL_WEIGHT, services.KEYWORD_WEIGHT)
    baseline = {
        **_describe(*weights, current_floor),
        metric: _mean_metric(runs, _floored(runs, current_floor), metric),
    }
    base_ratio = _log_ratio(*weights)
    tried = []
    for floor in _floor_settings(tune_floor):
        visuals = _floored(runs, floor)
        for visual_weight, keyword_weight in _weight_settings(grid):
            score = _mean_metric(
                runs, visuals, metric, visual_weight=visual_weight, keyword_weight=keyword_weight
            )
            distance = abs(_log_ratio(visual_weight, keyword_weight) - base_ratio) + (
                floor != current_floor
            )
            tried.append((-score, distance, _describe(visual_weight, keyword_weight, floor), score))
    tried.sort(key=lambda row: (row[0], row[1]))
    ordered = [{**row[2], metric: row[3]} for row in tried]
    best = ordered[0] if ordered and ordered[0][metric] > baseline[metric] else baseline
    return TuneResult(
        metric=metric,
        baseline=baseline,
        best=best,
        gain=best[metric] - baseline[metric],
        grid=ordered,
    )
