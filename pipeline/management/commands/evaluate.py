"""`manage.py evaluate`: measure search quality on judged queries and/or the catalogue's own labels.

Runs every query through the site's real ranking code (keyword alone, visual alone, fused) and
prints recall@k, MRR, nDCG@10 and the zero-result rate per store and overall with 95 % bootstrap
intervals; writes report.json/.txt/.html under MEEPO_DATA_DIR/evaluation/<stamp>/ (not with
--dry-run). `--compare old.json` adds the differences; `--tune` grid-searches the fusion weights
and prints the best setting and its gain, applying nothing. Read-only otherwise.

Exit codes: 0 done; 1 nothing to evaluate; 2 unusable arguments (bad file, unknown source).
"""

from django.core.management.base import BaseCommand, CommandError

from search.evaluation import (
    JudgedSetError,
    load_judged,
    load_report,
    run_evaluation,
    weak_label_queries,
)
from search.evaluation.metrics import METRICS
from search.evaluation.queries import WEAK_SOURCES
from search.evaluation.report import render_text


class Command(BaseCommand):
    help = "Measure search quality (recall@k, MRR, nDCG@10) per ranking signal and store."

    def add_arguments(self, parser):
        parser.add_argument("--judged", metavar="JSONL", help="judged queries, one JSON a line")
        parser.add_argument(
            "--weak",
            action="store_true",
            help="add weak labels from the catalogue (the default without --judged)",
        )
        parser.add_argument(
            "--weak-sources",
            default="category,tag",
            help=f"comma-separated, of {', '.join(WEAK_SOURCES)} (default category,tag)",
        )
        parser.add_argument(
            "--per-source", type=int, default=20, help="weak queries per store and source"
        )
        parser.add_argument(
            "--store", action="append", default=[], help="weak labels of this store only"
        )
        parser.add_argument("--limit", type=int, default=0, help="evaluate at most N queries")
        parser.add_argument("--depth", type=int, default=120, help="results ranked per signal")
        parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
        parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
        parser.add_argument(
            "--compare", metavar="REPORT", help="a previous report.json (or its directory)"
        )
        parser.add_argument(
            "--tune",
            action="store_true",
            help="grid-search fusion weights and relevance floor (printed, never applied)",
        )
        parser.add_argument("--metric", default="ndcg@10", help="what --tune maximises")
        parser.add_argument("--dry-run", action="store_true", help="print only, write no report")

    def _queries(self, opts):
        queries = []
        if opts["judged"]:
            try:
                queries += load_judged(opts["judged"])
            except (OSError, JudgedSetError) as exc:
                raise CommandError(f"cannot read {opts['judged']}: {exc}", returncode=2) from exc
        if opts["weak"] or not opts["judged"]:
            sources = tuple(s.strip() for s in opts["weak_sources"].split(",") if s.strip())
            try:
                queries += weak_label_queries(
                    sources=sources, stores=tuple(opts["store"]), per_source=opts["per_source"]
                )
            except ValueError as exc:
                raise CommandError(str(exc), returncode=2) from exc
        return queries[: opts["limit"]] if opts["limit"] > 0 else queries

    def handle(self, *args, **opts):
        if opts["tune"] and (opts["metric"] not in METRICS or opts["metric"] == "zero_result"):
            raise CommandError(f"--metric must be one of {', '.join(METRICS[:-1])}", returncode=2)
        previous = None
        if opts["compare"]:
            try:
                previous = load_report(opts["compare"])
            except (OSError, ValueError) as exc:
                raise CommandError(f"cannot read {opts['compare']}: {exc}", returncode=2) from exc
        queries = self._queries(opts)
        if not queries:
            raise CommandError(
                "nothing to evaluate: no judged queries given and no store labels with at "
                "least two products (add --judged FILE)"
            )
        run = run_evaluation(
            queries=queries,
            depth=opts["depth"],
            resamples=opts["resamples"],
            seed=opts["seed"],
            previous=previous,
            tune_metric=opts["metric"] if opts["tune"] else None,
            write=not opts["dry_run"],
        )
        self.stdout.write(render_text(run.report))
        if run.directory is not None:
            self.stdout.write(
                self.style.SUCCESS(f"{len(queries)} queries evaluated; report in {run.directory}")
            )
