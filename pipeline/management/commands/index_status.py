"""`manage.py index_status`: what index is published, for which model, how good and how fresh.

Read-only. Exit code 0 when an index for the current model is published, 1 otherwise (so
monitoring can call it).
"""

from datetime import UTC, datetime

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from pipeline.indexing.catalogue import load_state
from search.index import index_root, published_dir
from search.manifest import Manifest, read_manifest


class Command(BaseCommand):
    help = "Show the published search index and whether the catalogue has changed since."

    def handle(self, *args, **opts):
        current = published_dir()
        if current is None:
            raise CommandError(f"no index published under {index_root()}; run manage.py pipeline")
        m = read_manifest(current)
        state = load_state(settings.MEEPO_CLIP_MODEL)
        fresh = m.catalogue.digest == state.digest and m.model == state.model
        lines = [
            f"version:   {m.version or current.name} ({current})",
            f"built:     {_built(m)}",
            f"model:     {m.model} (dim {m.dim})",
            f"index:     {m.index_type} {m.factory} {m.params}",
            f"vectors:   {m.count}",
            f"recall@10: {m.recall_at_10} (target {m.target_recall})",
            f"latency:   p50 {m.latency_ms.get('p50')} ms, p99 {m.latency_ms.get('p99')} ms"
            " (1 query, 1 thread)",
            f"catalogue: {state.count} indexable images now; "
            + ("index is up to date" if fresh else "CHANGED since this index: run build_index"),
        ]
        self.stdout.write("\n".join(lines))
        if m.model != settings.MEEPO_CLIP_MODEL:
            raise CommandError(
                f"published index is for {m.model!r}, settings say {settings.MEEPO_CLIP_MODEL!r}"
            )


def _built(m: Manifest) -> str:
    """When and how; a version published from arrays (bench.planted_index) has no build record."""
    if not m.created_at:
        return "unknown"
    age_h = (datetime.now(UTC) - datetime.fromisoformat(m.created_at)).total_seconds() / 3600
    how = f" in {m.build.seconds} s, {m.build.mode}" if m.build.mode else ""
    return f"{m.created_at} ({age_h:.1f} h ago){how}"
