"""`manage.py index_status`: what index is published, for which model, how good and how fresh.

Read-only. Exit code 0 when an index for the current model is published, 1 otherwise (so
monitoring can call it).
"""

from datetime import UTC, datetime

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from pipeline.indexing.catalogue import load_state
from search.index import index_root, published_dir, read_manifest


class Command(BaseCommand):
    help = "Show the published search index and whether the catalogue has changed since."

    def handle(self, *args, **opts):
        current = published_dir()
        if current is None:
            raise CommandError(f"no index published under {index_root()}; run manage.py pipeline")
        m = read_manifest(current)
        created = datetime.fromisoformat(m["created_at"])
        age_h = (datetime.now(UTC) - created).total_seconds() / 3600
        state = load_state(settings.MEEPO_CLIP_MODEL)
        fresh = m["catalogue"]["digest"] == state.digest and m["model"] == state.model
        lat = m.get("latency_ms", {})
        lines = [
            f"version:   {m['version']} ({current})",
            f"built:     {m['created_at']} ({age_h:.1f} h ago) in {m['build']['seconds']} s, {m['build']['mode']}",
            f"model:     {m['model']} (dim {m['dim']})",
            f"index:     {m['index_type']} {m['factory']} {m.get('params', {})}",
            f"vectors:   {m['count']}",
            f"recall@10: {m['recall_at_10']} (target {m['target_recall']})",
            f"latency:   p50 {lat.get('p50')} ms, p99 {lat.get('p99')} ms (1 query, 1 thread)",
            f"catalogue: {state.count} indexable images now; "
            + ("index is up to date" if fresh else "CHANGED since this index: run build_index"),
        ]
        self.stdout.write("\n".join(lines))
        if m["model"] != settings.MEEPO_CLIP_MODEL:
            raise CommandError(
                f"published index is for {m['model']!r}, settings say {settings.MEEPO_CLIP_MODEL!r}"
            )
