"""Whole-catalogue counts written with each index version, so no request groups the catalogue.

The home page's browse links and example queries, the empty-results page's examples and every
browse page with one facet chosen (its disjunctive counts are the unfiltered catalogue's) need
the catalogue's facet counts: GROUP BYs over every active product. At 1 M products on SQLite
they cost ≈ 3.6 s (examples), 3.9 s (facets) of CPU, once per request (browse pages) or per
worker every 10 minutes (home page), and concurrent requests paid them together. The index
builder now counts once, offline, and writes `catalogue_summary.json` beside the version; the
web reads it with the version (search.per_version) in microseconds.

The counts are as of the build, like the version's vectors: products added since are found by
keyword search but not counted beside the browse links until the next build (cron rebuilds
after every crawl). A version without the file (written before it, or no index yet: small and
test catalogues) is answered from the database as before.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from search.per_version import PerVersion

logger = logging.getLogger(__name__)

SUMMARY_FILE = "catalogue_summary.json"
FORMAT = 1


def compute() -> dict[str, Any]:
    """The catalogue's facet counts with no filter and its example queries, from the database."""
    from search import facets
    from search.filters import SearchFilters

    counted = facets.catalogue_facets_from_db(SearchFilters())  # the GROUP BYs, once
    return {
        "format": FORMAT,
        "facets": {name: [list(row) for row in rows] for name, rows in counted.items()},
        "examples": facets.examples_from(counted),
    }


def write(version_dir: Path) -> dict[str, Any]:
    """Count and write the summary into a version being built (published whole with it)."""
    summary = compute()
    (Path(version_dir) / SUMMARY_FILE).write_text(json.dumps(summary), "utf-8")
    return summary


def _load(version_dir: Path) -> dict[str, Any] | None:
    path = version_dir / SUMMARY_FILE
    if not path.is_file():
        return None
    summary = json.loads(path.read_text("utf-8"))
    if summary.get("format") != FORMAT:
        return None
    from search.facets import FacetRow

    summary["facets"] = {
        name: [FacetRow(str(v), str(label), int(n)) for v, label, n in rows]
        for name, rows in summary["facets"].items()
    }
    summary["examples"] = [str(e) for e in summary["examples"]]
    return summary


_versions: PerVersion[dict[str, Any]] = PerVersion(_load, "catalogue summary")


def served() -> dict[str, Any] | None:
    """The served version's summary ({"facets": Facets, "examples": [...]}), or None when no
    version is served or it has none. Read-only: callers copy what they change."""
    from search.exceptions import IndexNotReady, ModelNotAvailable
    from search.index import get_index

    try:
        path = get_index().path
    except (IndexNotReady, ModelNotAvailable):
        return None
    return _versions.get(Path(path))


def forget_loaded() -> None:
    """Drop the loaded summaries (tests)."""
    _versions.forget()
