"""`run_pipeline`: scrape -> embed -> attributes -> build_index in one go, for cron.

`scrape` fetches listings, product data and images (the one owner of image downloads, per store
and through each host's gate); `embed` only reads the stored thumbnails.

Each stage is idempotent and commits its own work, so the chain can stop anywhere and the next
run carries on. A stage that fails is logged and reported; the later stages still run on what is
already in the database (a store that cannot be crawled must not stop the others' new images from
being indexed). The caller holds the pipeline lock across the chain, as every command that
writes does (`manage.py pipeline`: pipeline.lock.command_lock).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Protocol

from pipeline.attributes import assign_attributes
from pipeline.embed import embed_images
from pipeline.indexing import build_index
from pipeline.scrape import scrape_stores

logger = logging.getLogger(__name__)


class StageReport(Protocol):
    """What every stage function returns (ScrapeReport, EmbedReport, AttributesReport,
    IndexReport): its outcome in words for the operator, starting with the stage's name."""

    def summary(self) -> str: ...


@dataclass
class PipelineReport:
    scrape: StageReport | None = None
    embed: StageReport | None = None
    attributes: StageReport | None = None
    index: StageReport | None = None
    failed_stages: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed_stages

    def summary(self) -> str:
        lines = []
        for stage in ("scrape", "embed", "attributes", "index"):
            report = getattr(self, stage)
            if stage in self.errors:
                lines.append(f"{stage}: FAILED: {self.errors[stage]}")
            elif report is not None:
                text = report.summary()
                lines.append(text if text.startswith(stage) else f"{stage}: {text}")
        lines.append(f"pipeline: {'ok' if self.ok else 'failed'} in {self.seconds:.1f} s")
        return "\n".join(lines)


def run_pipeline(
    *,
    store_slug: str | None = None,
    limit: int | None = None,
    dry_run: bool = False,
    force: bool = False,
    scrape: bool = True,
) -> PipelineReport:
    """Run the stages in order (the caller holds MEEPO_DATA_DIR/locks/pipeline.lock).

    `force` re-crawls and rebuilds the index from scratch; it never re-embeds (that costs hours on
    a CPU box; use `manage.py embed --force` for it).
    """
    started = time.monotonic()
    report = PipelineReport()
    if scrape:
        _stage(
            report,
            "scrape",
            scrape_stores,
            store_slug=store_slug,
            limit=limit,
            dry_run=dry_run,
            force=force,
        )
    _stage(report, "embed", embed_images, limit=limit, dry_run=dry_run)
    # Zero-shot labels from the stored vectors: no image forward pass, incremental.
    _stage(report, "attributes", assign_attributes, dry_run=dry_run)
    _stage(report, "index", build_index, dry_run=dry_run, force=force)
    report.seconds = time.monotonic() - started
    return report


def _stage(report: PipelineReport, name: str, func, **kwargs) -> None:
    try:
        setattr(report, name, func(**kwargs))
    except Exception as exc:  # reported, and the later stages still run
        logger.exception("pipeline stage %s failed", name)
        report.failed_stages.append(name)
        report.errors[name] = f"{type(exc).__name__}: {exc}"
