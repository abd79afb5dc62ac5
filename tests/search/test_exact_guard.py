"""search.exact_guard: exact_match_ids skips its query only when it would find nothing, and a
product changed or deleted since the build, or a version without identifier hashes, still
goes to the database."""

import random
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from catalog.models import Product, ProductVariant
from search import exact_guard, fts, selectors
from search.selectors import SearchFilters
from search.snapshot import SNAPSHOT_DIR, Snapshot
from search.snapshot_write import write_row_columns
from tests.search.test_snapshot import catalogue, snapshot

pytestmark = pytest.mark.django_db
ANY = SearchFilters()


def titles(text):
    """exact_title_lookup as a keyword index of this catalogue would answer (no index here)."""
    return [p.pk for p in Product.objects.all() if p.title.lower() == text.lower()], None


def built(tmp_path):
    ids = catalogue(n=24)
    for i, p in enumerate(Product.objects.order_by("pk")):
        p.sku, p.mpn, p.gtin = f"Sku-{i}", f"MPN{i}" if i % 2 else "", f"{400638133393 + i:013d}"
        p.save()
        if i % 5 == 0:
            ProductVariant.objects.create(product=p, external_id=f"v{i}", sku=f"vsku-{i}", gtin=f"{5000000000000 + i}")  # fmt: skip
    Product.objects.update(updated_at=timezone.now() - timedelta(hours=1))
    return snapshot(tmp_path, ids)


def queries():
    out = ["no such thing", "walnut desk", "x", "0 12345 67890 5", "SKU-1 ", "mpn3"]
    for p in Product.objects.all():
        out += [p.external_id, p.sku, p.sku.upper(), p.sku.lower(), p.mpn, p.gtin, p.gtin[1:], p.title, p.title.upper()]  # fmt: skip
    for v in ProductVariant.objects.all():
        out += [v.sku, v.sku.upper(), v.gtin]
    return [q.strip() for q in out if q.strip()]


def test_skipped_only_where_the_lookup_finds_nothing(tmp_path):
    snap = built(tmp_path)
    skipped = 0
    for text in queries():
        found = fts.exact_match_ids(query=text, filters=ANY, limit=100)
        if not exact_guard.may_match(snap, text, titles):
            skipped += 1
            assert found == [], text
    for text in [*Product.objects.values_list("sku", "gtin"), *ProductVariant.objects.values_list("sku", "gtin")]:  # fmt: skip
        assert all(exact_guard.may_match(snap, t, titles) for t in text), text
    assert skipped >= 3
    assert not exact_guard.may_match(snap, "walnut desk", titles)
    rng = random.Random(1)
    for _ in range(200):
        text = "".join(rng.choice("abcXYZ019- ") for _ in range(rng.randrange(1, 12))).strip()
        if text and not exact_guard.may_match(snap, text, titles):
            assert fts.exact_match_ids(query=text, filters=ANY) == [], text


def test_a_product_changed_or_deleted_since_the_build_is_still_found(tmp_path, monkeypatch):
    snap = built(tmp_path)
    monkeypatch.setattr(selectors, "_served_snapshot", lambda: snap)
    monkeypatch.setattr(exact_guard.keyword_engine, "exact_title_lookup", titles)
    assert selectors.exact_match_ids(query="NEW-SKU-7", filters=ANY) == []
    product = Product.objects.order_by("pk").first()
    product.sku = "NEW-SKU-7"
    product.save()  # updated_at: now
    assert exact_guard.may_match(snap, "NEW-SKU-7", titles)
    assert selectors.exact_match_ids(query="NEW-SKU-7", filters=ANY) == [product.pk]
    assert selectors.exact_match_ids(query="new-sku-7", filters=ANY) == [product.pk]
    Product.objects.filter(pk=product.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    Product.objects.exclude(pk=product.pk).first().delete()  # a tombstone since the build
    assert exact_guard.may_match(snap, "nothing at all", titles)


def test_a_version_without_identifier_hashes_asks_the_database(tmp_path):
    snap = built(tmp_path)
    (tmp_path / SNAPSHOT_DIR / "identifiers.npy").unlink()
    old = Snapshot.load(tmp_path)
    assert exact_guard.IDENTIFIERS not in old.cols
    assert exact_guard.may_match(old, "walnut desk", titles)
    assert write_row_columns(tmp_path)  # the bench's way to add them
    again = Snapshot.load(tmp_path)
    assert np.array_equal(again.cols["identifiers"], snap.cols["identifiers"])
    assert not exact_guard.may_match(again, "walnut desk", titles)
    assert not write_row_columns(tmp_path)


def test_a_damaged_identifier_file_leaves_the_version_to_the_database(tmp_path):
    """A torn identifiers.npy (disk full mid-write, a bad copy) makes the version's snapshot
    unloadable: logged once, and every search of it asks the database, exact matches included."""
    from search.per_version import PerVersion

    built(tmp_path)
    assert PerVersion(Snapshot.load, "snapshot").get(tmp_path) is not None
    (tmp_path / SNAPSHOT_DIR / "identifiers.npy").write_bytes(b"\x93NUMPY\x01\x00garbage")
    assert PerVersion(Snapshot.load, "snapshot").get(tmp_path) is None
