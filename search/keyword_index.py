"""A tantivy keyword index beside each published index version: `<version>/keyword/`.

Written by `pipeline.indexing` before the version's manifest (so every file is listed, hashed
and shipped by `manage.py sync_index`), from the products' text in CHUNK-row queries (bounded
memory, SQLite or PostgreSQL alike), then opened read-only once per process per version
(`for_index`). `search.keyword_engine` queries it; `search.fts` dispatches to it.

Fields (nothing stored: hits are mapped to product ids through the `id` fast field):

    id            i64, indexed + fast   the product id
    title, brand, category, tags, description
                  text, analyzer "meepo": simple tokenizer -> lowercase -> ascii_fold -> English
                  stemmer (FTS5's `porter unicode61 remove_diacritics 2`, near enough)
    exact_title   raw, the whole title lowercased (exact_match_ids' whole-title match)
    store         i64, indexed          store id (a store filter pushed into the query)
    brand_exact, category_exact
                  raw, the values as stored (brand / category filters)
    active        i64 1/0, as of the build (changes since: search.keyword_delta)

`keyword.json` (tantivy owns `meta.json`) records `written_at`: products whose `updated_at` is
later are the version's *delta*, matched outside the index (search.keyword_delta); taken a
margin (search.live_rows.CHANGE_MARGIN, as for the snapshot) before the first row is read, so
a product written during the build is in the delta.
The writer's lock files are removed before the manifest lists the directory; a reader opening
it creates tantivy's empty `.tantivy-meta.lock` there, which no manifest or sync looks at.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.db import connection

from search import live_rows
from search.durable import fsync_path
from search.per_version import PerVersion

KEYWORD_DIR = "keyword"
META_FILE = "keyword.json"
FORMAT = 1
ANALYZER = "meepo"
TEXT_FIELDS = ("title", "brand", "category", "tags", "description")
# Field boosts, as FTS5's bm25() column weights (search.keyword.sqlite.BM25_WEIGHTS).
BOOSTS = {"title": 10.0, "brand": 6.0, "category": 3.0, "tags": 3.0, "description": 1.0}
CHUNK = 5_000
# The writer's memory (tantivy flushes a segment when it is full): bounded whatever N.
WRITER_HEAP = 128_000_000
# build_index republishes (same vectors, new keyword index) past this many changed products.
REBUILD_AFTER_CHANGES = 500
# Field lengths are averaged over every Nth product (BM25 of delta products, keyword_delta).
LENGTH_SAMPLE = 16


def analyzer():
    """The "meepo" text analyzer: the index's and the query words' (search.keyword_engine)."""
    import tantivy

    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )


def schema():
    import tantivy

    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("id", indexed=True, fast=True)
    for name in TEXT_FIELDS:
        builder.add_text_field(name, tokenizer_name=ANALYZER)
    for name in ("exact_title", "brand_exact", "category_exact"):
        builder.add_text_field(name, tokenizer_name="raw", index_option="basic")
    builder.add_integer_field("store", indexed=True)
    builder.add_integer_field("active", indexed=True)
    return builder.build()


def tags_text(tags: Any) -> str:
    """A tags column as words: a JSON list (text on SQLite, a list on PostgreSQL)."""
    if isinstance(tags, str):
        try:
            tags = json.loads(tags)
        except ValueError:
            return tags
    if isinstance(tags, list):
        return " ".join(str(t) for t in tags)
    return "" if tags is None else str(tags)


def iter_products(after: int = 0, ids: list[int] | None = None) -> Iterator[tuple]:
    """(id, title, brand, category, tags text, description, store id, is_active), by id, in
    CHUNK-row queries (keyset pagination: each one an index range, memory bounded); only `ids`
    when given."""
    columns = "id, title, brand, category, tags, description, store_id, is_active"
    if ids is not None:
        for start in range(0, len(ids), CHUNK):
            part = ids[start : start + CHUNK]
            marks = ", ".join(["%s"] * len(part))
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT {columns} FROM catalog_product WHERE id IN ({marks})", part)
                rows = cursor.fetchall()
            yield from (_row(r) for r in rows)
        return
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {columns} FROM catalog_product WHERE id > %s ORDER BY id LIMIT %s",
                [after, CHUNK],
            )
            rows = cursor.fetchall()
        if not rows:
            return
        yield from (_row(r) for r in rows)
        after = rows[-1][0]


def _row(row: tuple) -> tuple:
    pid, title, brand, category, tags, description, store, active = row
    return (
        int(pid), title or "", brand or "", category or "", tags_text(tags), description or "",
        int(store), bool(active),
    )  # fmt: skip


def write_keyword_index(version_dir: Path) -> dict[str, Any]:
    """Write `<version_dir>/keyword/` for every product, active or not (queries leave out the
    inactive; one reactivated since moved its `updated_at` and is found in the delta). Returns
    its meta."""
    import tantivy

    # A product written just before the read may have committed after it: within the margin
    # it counts as changed (matched outside the index), never as missed (the snapshot's rule).
    written_at = datetime.now(UTC) - live_rows.CHANGE_MARGIN  # read now: tests set it
    out = Path(version_dir) / KEYWORD_DIR
    out.mkdir()
    index = tantivy.Index(schema(), path=str(out), reuse=False)
    index.register_tokenizer(ANALYZER, analyzer())
    writer = index.writer(heap_size=WRITER_HEAP, num_threads=1)
    lengths = _LengthSample(analyzer())
    documents = 0
    for row in iter_products():
        writer.add_document(_document(row))
        lengths.add(row)
        documents += 1
    writer.commit()
    writer.wait_merging_threads()
    del writer
    # The writer's locks and its file bookkeeping (.managed.json, for its own garbage collection)
    # are nothing a reader needs, and dot files are never served to web nodes (the builder's
    # nginx answers 404 for them), so a listed one would fail every `sync_index`.
    for path in [*out.glob(".tantivy-*.lock"), out / ".managed.json"]:
        path.unlink(missing_ok=True)
    meta = {
        "format": FORMAT,
        "documents": documents,
        "written_at": written_at.isoformat(),
        "average_tokens": lengths.averages(),
    }
    (out / META_FILE).write_text(json.dumps(meta), "utf-8")
    for path in out.iterdir():
        fsync_path(path)
    fsync_path(out)
    return meta


def _document(row: tuple):
    import tantivy

    pid, title, brand, category, tags, description, store, active = row
    doc = tantivy.Document(id=pid, store=store, active=int(active))
    for name, value in zip(TEXT_FIELDS, (title, brand, category, tags, description), strict=True):
        if value:
            doc.add_text(name, value)
    doc.add_text("exact_title", title.lower())
    if brand:
        doc.add_text("brand_exact", brand)
    if category:
        doc.add_text("category_exact", category)
    return doc


class _LengthSample:
    """Average tokens per field over every LENGTH_SAMPLE-th product (the first one included)."""

    def __init__(self, analyze) -> None:
        self.analyze = analyze.analyze
        self.totals = dict.fromkeys(TEXT_FIELDS, 0)
        self.rows = self.seen = 0

    def add(self, row: tuple) -> None:
        self.rows += 1
        if (self.rows - 1) % LENGTH_SAMPLE:
            return
        self.seen += 1
        for name, value in zip(TEXT_FIELDS, row[1:6], strict=True):
            self.totals[name] += len(self.analyze(value)) if value else 0

    def averages(self) -> dict[str, float]:
        return {name: total / max(1, self.seen) for name, total in self.totals.items()}


@dataclass
class KeywordIndex:
    """One version's keyword index, open read-only (its searcher is shared by all threads)."""

    path: Path
    index: Any = field(repr=False)
    searcher: Any = field(repr=False)
    schema: Any = field(repr=False)
    meta: dict[str, Any] = field(repr=False)

    @property
    def written_at(self) -> datetime:
        return datetime.fromisoformat(self.meta["written_at"])

    @classmethod
    def load(cls, version_dir: Path) -> KeywordIndex | None:
        """The keyword index beside a version, or None when it has none (older versions)."""
        import tantivy

        path = Path(version_dir) / KEYWORD_DIR
        if not (path / META_FILE).is_file():
            return None
        meta = json.loads((path / META_FILE).read_text("utf-8"))
        if meta.get("format") != FORMAT:
            return None
        index = tantivy.Index.open(str(path))
        index.register_tokenizer(ANALYZER, analyzer())
        return cls(path, index, index.searcher(), index.schema, meta)


def is_current(version_dir: Path | None) -> bool:
    """Whether a version's keyword index exists and at most REBUILD_AFTER_CHANGES products
    changed since it was written (else build_index publishes a new version even though no
    embedding changed: keyword search would otherwise fall back to the database for good)."""
    from catalog.models import Product

    meta_path = Path(version_dir or "") / KEYWORD_DIR / META_FILE
    if version_dir is None or not meta_path.is_file():
        return False
    meta = json.loads(meta_path.read_text("utf-8"))
    if meta.get("format") != FORMAT:
        return False
    since = datetime.fromisoformat(meta["written_at"])
    changed = Product.objects.filter(updated_at__gt=since)[: REBUILD_AFTER_CHANGES + 1].count()
    return changed <= REBUILD_AFTER_CHANGES


_versions: PerVersion[KeywordIndex] = PerVersion(KeywordIndex.load, "keyword index")


def for_index(index) -> KeywordIndex | None:
    """The keyword index of a loaded `SearchIndex`'s version, None when the version has none or
    MEEPO_SEARCH_KEYWORD_ENGINE is "database" (callers then ask the database). Loaded once per
    version per process; only the newest two versions are kept open."""
    from django.conf import settings

    if settings.MEEPO_SEARCH_KEYWORD_ENGINE != "auto":
        return None
    return _versions.get(index.path)


def forget_loaded() -> None:
    """Close every loaded keyword index (tests)."""
    _versions.forget()
