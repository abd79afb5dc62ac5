"""The keyword index is part of every built version: written by build_index, listed (sha256 per
file) in the manifest, shipped by `manage.py sync_index`, and answering on the web node; a
version too far behind the catalogue's text is rebuilt even when no embedding changed."""

import pytest

from pipeline.index_sync import sync_index
from pipeline.indexing import build_index
from search import keyword_engine, keyword_index, selectors
from search.index import published_dir
from search.keyword_index import KEYWORD_DIR, META_FILE
from search.manifest import read_manifest
from search.models import Embedding
from search.selectors import SearchFilters
from tests.factories import ProductFactory, ProductImageFactory
from tests.search.test_sync_index import DIM, MODEL, nodes, server, units  # noqa: F401

pytestmark = pytest.mark.django_db


def build_catalogue():
    titles = ["Walnut desk lamp", "Linen pillow", "Oak table"]
    products = []
    for seed, title in enumerate(titles):
        image = ProductImageFactory(product=ProductFactory(title=title))
        vector = units(1, seed=seed)[0]
        Embedding.objects.create(asset=image.asset, model_name=MODEL, dim=DIM, vector=vector.tobytes())  # fmt: skip
        products.append(image.product)
    return products


def test_a_synced_version_carries_the_keyword_index(nodes, server, settings):  # noqa: F811
    _, node, switch = nodes
    settings.MEEPO_SEARCH_KEYWORD_ENGINE = "auto"
    lamp, *_ = build_catalogue()
    assert build_index().status == "published"
    source = published_dir()
    listed = read_manifest(source).files
    keyword_files = {name for name in listed if name.startswith(f"{KEYWORD_DIR}/")}
    assert f"{KEYWORD_DIR}/{META_FILE}" in keyword_files
    assert f"{KEYWORD_DIR}/meta.json" in keyword_files  # tantivy's own
    assert not any(name.endswith(".lock") for name in keyword_files)
    # The builder's nginx never serves a dot file (deploy/nginx/meepo-builder.conf): one listed
    # would fail every sync (tantivy's .managed.json did, caught by tests/cluster).
    assert not [name for name in listed if any(p.startswith(".") for p in name.split("/"))]

    switch(node)
    assert sync_index(server.url).status == "synced"
    assert (published_dir() / KEYWORD_DIR / META_FILE).is_file()
    assert keyword_engine.current() is not None
    hits = selectors.keyword_hits(query="walnut lamp", filters=SearchFilters(), limit=5)
    assert [pid for pid, _ in hits] == [lamp.pk]


def test_build_index_republishes_when_the_keyword_index_is_missing_or_behind(nodes, monkeypatch):  # noqa: F811
    build_catalogue()
    first = build_index()
    assert first.status == "published"
    assert build_index().status == "nothing to do"
    monkeypatch.setattr(keyword_index, "REBUILD_AFTER_CHANGES", 1)
    ProductFactory(title="Brass kettle")
    ProductFactory(title="Brass bowl")
    second = build_index()
    assert second.status == "published"
    assert second.version != first.version
    written = keyword_index.KeywordIndex.load(published_dir())
    assert written.meta["documents"] == 5
