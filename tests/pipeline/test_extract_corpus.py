"""The extraction corpus (tests/pipeline/corpus) and its scorer (bench/extract.py).

The scorer is checked on a tiny synthetic corpus whose right answers are known; the corpus is
checked for shape (every file present, every expectation in the documented vocabulary); and the
parsers must keep the corpus scores at or above the floors below (raise them as extraction
improves, never lower them to make a change pass).
"""

import json
from decimal import Decimal

import pytest

from bench import extract as bench

# Floors (precision, F1) the parsers must keep on the corpus. Issue 9's "done when" was title,
# price, currency, availability and image at precision >= 0.97 and F1 >= 0.95, SKU/GTIN >= 0.9;
# raised as extraction improved (blind batches 9 and 9b, 2026-12-02: 267 pages, no wrong price,
# currency, availability or list price). A wrong price is worse than a missing one, so those
# fields keep precision 1.0. The scores reached are in docs/benchmarks.md, "Extraction"; raise
# these, never lower them.
FLOORS = {
    "title": (0.99, 0.99),
    "price": (1.0, 0.99),
    "currency": (1.0, 0.99),
    "availability": (1.0, 0.99),
    "image": (0.99, 0.99),
    "sku": (0.98, 0.98),
    "gtin": (0.98, 0.98),
    "list_price": (1.0, 0.97),
    "brand": (0.99, 0.98),
}
MIN_PAGES = 60


def _page(name, price, currency="EUR", extra=""):
    offer = {"@type": "Offer", "price": price, "priceCurrency": currency}
    data = {"@context": "https://schema.org", "@type": "Product", "name": name, "offers": offer}
    return (
        f"<html><head><meta charset='utf-8'></head><body><h1>{name}</h1>{extra}"
        f"<script type='application/ld+json'>{json.dumps(data)}</script></body></html>"
    ).encode()


def _write(tmp_path, pages):
    lines = []
    for file, body, expected in pages:
        (tmp_path / file).write_bytes(body)
        lines.append(json.dumps({"file": file, "url": f"https://t.example/{file}", "expected": expected}))  # fmt: skip
    (tmp_path / "manifest.jsonl").write_text("\n".join(lines) + "\n")


def test_scorer_counts_right_wrong_and_missing_values(tmp_path):
    _write(
        tmp_path,
        [
            (
                "right.html",
                _page("Mug", "12.50"),
                {"title": "Mug", "price": "12.5", "currency": "EUR"},
            ),
            (
                "wrong.html",
                _page("Bowl", "99.00"),
                {"title": "bowl", "price": "9.90", "currency": "EUR"},
            ),
            # The page states no price: extracting one would be wrong, extracting none is right.
            (
                "none.html",
                _page("Cup", None, None),
                {"title": "Cup", "price": None, "currency": None},
            ),
            # The page states a price the parser cannot see (no markup): a miss for recall only.
            (
                "hidden.html",
                b"<html><body><p>Jug</p></body></html>",
                {"title": "Jug", "price": "5"},
            ),
        ],
    )
    result = bench.score(tmp_path)
    price = result["fields"]["price"]
    assert (price["expected"], price["extracted"], price["correct"]) == (3, 2, 1)
    assert price["precision"] == pytest.approx(0.5)
    assert price["recall"] == pytest.approx(1 / 3)
    assert price["f1"] == pytest.approx(0.4)
    title = result["fields"]["title"]
    assert (title["expected"], title["extracted"], title["correct"]) == (4, 3, 3)
    assert result["fields"]["sku"] == {
        "expected": 0,
        "extracted": 0,
        "correct": 0,
        "precision": None,
        "recall": None,
        "f1": None,
    }
    table = bench.markdown_table(result).splitlines()
    assert len(table) == 2 + len(bench.FIELDS)
    assert table[3] == "| price | 3 | 2 | 1 | 0.500 | 0.333 | 0.400 |"
    missed = {(m["file"], m["field"]) for m in result["misses"]}
    assert missed == {("wrong.html", "price"), ("hidden.html", "title"), ("hidden.html", "price")}


@pytest.mark.parametrize(
    ("name", "expected", "got", "ok"),
    [
        ("price", "12.5", Decimal("12.50"), True),
        ("price", "24990", Decimal("24.99"), False),
        ("list_price", "79.90", Decimal("79.9"), True),
        ("currency", "EUR", "eur", True),
        ("currency", "RUB", "RUR", False),
        ("availability", "in_stock", "in_stock", True),
        ("availability", "out_of_stock", "unknown", False),
        ("gtin", "036163192290", "0036163192290", True),
        ("gtin", "4006381333931", "4006381333932", False),
        ("image", "https://a.example/x.jpg?v=1", "http://A.example/x.jpg?width=640", True),
        ("image", "https://a.example/x.jpg", "https://a.example/y.jpg", False),
        ("image", "https://a.example/x.jpg", "https://a.example/x.jpg?auto=format&w=1200", True),
        ("image", "https://a.example/x.jpg?id=1", "https://a.example/x.jpg?id=2", False),
        (
            "image",
            ["https://a.example/x.jpg", "https://a.example/z.jpg"],
            "//a.example/z.jpg",
            True,
        ),
        ("title", "Linen  Apron", "linen apron", True),
        ("sku", "AB-1", " ab-1 ", True),
        ("sku", "AB-1", None, False),
    ],
)
def test_scorer_normalises_before_comparing(name, expected, got, ok):
    assert bench.matches(name, expected, got) is ok


def test_corpus_manifest_is_complete_and_in_vocabulary():
    entries = bench.load_manifest(bench.CORPUS)
    assert len(entries) >= MIN_PAGES
    assert len({e.file for e in entries}) == len(entries)
    listed = {e.file for e in entries} | {"manifest.jsonl", "README.md"}
    assert {p.name for p in bench.CORPUS.iterdir()} == listed
    assert sum(p.stat().st_size for p in bench.CORPUS.iterdir()) < 1_000_000
    for e in entries:
        assert e.kind in ("html", "shopify", "woocommerce"), e.file
        assert set(e.expected) == set(bench.FIELDS), e.file
        # A list holds several equally right answers (a value or None each).
        want = {k: v if isinstance(v, list) else [v] for k, v in e.expected.items()}
        assert all(v in (None, *bench.AVAILABILITY) for v in want["availability"]), e.file
        assert all(v is None or len(v) == 3 for v in want["currency"]), e.file
        for key in ("price", "list_price"):
            assert all(v is None or Decimal(v) > 0 for v in want[key]), e.file
        assert all(v is None or v.isdigit() for v in want["gtin"]), e.file


def test_corpus_scores_stay_above_the_floors():
    result = bench.score(bench.CORPUS)
    crashed = [m for m in result["misses"] if m["field"] == "*"]
    assert not crashed
    below = {}
    for name, (min_precision, min_f1) in FLOORS.items():
        row = result["fields"][name]
        if (row["precision"] or 0) < min_precision or (row["f1"] or 0) < min_f1:
            below[name] = (row["precision"], row["f1"])
    misses = [m for m in result["misses"] if m["field"] in below]
    assert not below, (below, misses)
