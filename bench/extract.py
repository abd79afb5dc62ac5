"""Extraction quality: field-level precision, recall and F1 of the product parsers over a corpus.

    .venv/bin/python -m bench.extract [--corpus DIR] [--json OUT] [--verbose]

A corpus is a directory with saved pages (or API payloads) and a `manifest.jsonl`, one JSON
object a line:

    {"file": "shop.html", "url": "https://…/p/1", "content_type": "text/html; charset=utf-8",
     "kind": "html" | "shopify" | "woocommerce", "currency": "EUR" (shopify: the store currency),
     "tags": ["json-ld", …],
     "expected": {"title": …, "price": "12.50", "currency": "EUR", "availability": "in_stock",
                  "image": "https://…", "sku": …, "gtin": …, "list_price": …, "brand": …}}

Expected values are what a careful person reads off the page; null where the page does not say
(an expected value may also be a list of equally right answers). HTML pages go through
`pipeline.platforms.structured.extract_products` (the main product is the first one), payloads
through `shopify.parse_product` / `woocommerce.parse_product`.

Scoring per field: an extracted value counts as correct when it matches the expected one after
normalisation (prices as Decimal, currency exact, availability exact with "unknown" = none,
image URLs without scheme/size parameters, GTINs as 14 digits, text case- and space-folded).
precision = correct / extracted (a wrong value, or a value where the page says none, counts
against it), recall = correct / expected non-null, F1 their harmonic mean. Deterministic: the
numbers depend only on the code and the corpus, not on the machine.
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import sys
import time
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "pipeline" / "corpus"
sys.path.insert(0, str(ROOT))

from bench.common import emit_json, machine, percentiles, print_table  # noqa: E402

FIELDS = (
    "title",
    "price",
    "currency",
    "availability",
    "image",
    "sku",
    "gtin",
    "list_price",
    "brand",
)
AVAILABILITY = {"in_stock", "out_of_stock", "preorder"}
# Query parameters that only pick a size, format or cache entry (Shopify, imgix, Squarespace…):
# the same picture either way.
IMAGE_NOISE = {
    *("width", "height", "w", "h", "size", "crop", "fit", "dpr"),
    *("format", "fm", "auto", "quality", "q"),
    *("v", "version", "ixlib"),
}


@dataclass
class Entry:
    file: str
    url: str
    expected: dict[str, Any]
    content_type: str = ""
    kind: str = "html"
    currency: str = ""
    tags: list[str] = field(default_factory=list)


@dataclass
class Tally:
    expected: int = 0
    extracted: int = 0
    correct: int = 0

    def row(self) -> dict[str, Any]:
        p = self.correct / self.extracted if self.extracted else None
        r = self.correct / self.expected if self.expected else None
        f1 = 2 * p * r / (p + r) if p is not None and r is not None and p + r else None
        if f1 is None and p is not None and r is not None:
            f1 = 0.0
        return {
            "expected": self.expected,
            "extracted": self.extracted,
            "correct": self.correct,
            "precision": p,
            "recall": r,
            "f1": f1,
        }


def load_manifest(corpus: Path) -> list[Entry]:
    entries = []
    for n, line in enumerate((corpus / "manifest.jsonl").read_text().splitlines(), 1):
        if not line.strip():
            continue
        raw = json.loads(line)
        try:
            entries.append(Entry(**raw))
        except TypeError as exc:
            raise ValueError(f"manifest.jsonl line {n}: {exc}") from exc
    return entries


# -- normalisation ------------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = " ".join(unicodedata.normalize("NFKC", str(value)).split()).casefold()
    return text or None


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _currency(value: Any) -> str | None:
    return str(value).strip().upper() or None if value else None


def _availability(value: Any) -> str | None:
    return value if value in AVAILABILITY else None


def _image(value: Any) -> str | None:
    if not value:
        return None
    parts = urlsplit(str(value).strip())
    host = (parts.hostname or "").lower()
    if parts.port and parts.port not in (80, 443):
        host = f"{host}:{parts.port}"
    query = sorted((k, v) for k, v in parse_qsl(parts.query) if k.lower() not in IMAGE_NOISE)
    path = unquote(parts.path) or "/"
    return f"//{host}{path}" + (f"?{urlencode(query)}" if query else "")


def _gtin(value: Any) -> str | None:
    digits = re.sub(r"\D", "", str(value or ""))
    return digits.zfill(14) if 8 <= len(digits) <= 14 else (digits or None)


def _sku(value: Any) -> str | None:
    text = str(value).strip().casefold() if value is not None else ""
    return text or None


NORMALISE = {
    "title": _text,
    "brand": _text,
    "price": _decimal,
    "list_price": _decimal,
    "currency": _currency,
    "availability": _availability,
    "image": _image,
    "gtin": _gtin,
    "sku": _sku,
}


def matches(name: str, expected: Any, got: Any) -> bool:
    """Whether an extracted value is right (`expected` may be a list of acceptable answers)."""
    norm = NORMALISE[name]
    options = expected if isinstance(expected, list) else [expected]
    value = norm(got)
    return value is not None and any(value == norm(option) for option in options)


# -- extraction ---------------------------------------------------------------------------------


def _html_products(body: bytes, entry: Entry) -> list:
    from pipeline.platforms.structured import extract_products

    if "content_type" in inspect.signature(extract_products).parameters:
        products, _ = extract_products(body, entry.url, content_type=entry.content_type)
    else:  # before issue 9: no charset from the HTTP header
        products, _ = extract_products(body, entry.url)
    return products


def _api_products(body: bytes, entry: Entry) -> list:
    data = json.loads(body)
    if isinstance(data, dict):
        data = data.get("products") or [data.get("product", data)]
    item = data[0] if data else {}
    base = "{0.scheme}://{0.netloc}".format(urlsplit(entry.url))
    if entry.kind == "shopify":
        from pipeline.platforms.shopify import parse_product

        return [parse_product(item, base, entry.currency)]
    from pipeline.platforms.woocommerce import parse_product

    return [parse_product(item, base)]


def extract(corpus: Path, entry: Entry) -> dict[str, Any]:
    """The fields the parsers read from one corpus file (the page's main product)."""
    body = (corpus / entry.file).read_bytes()
    products = _html_products(body, entry) if entry.kind == "html" else _api_products(body, entry)
    if not products:
        return dict.fromkeys(FIELDS)
    p = products[0]
    images = getattr(p, "image_urls", None) or []
    return {
        "title": p.title or None,
        "price": p.price,
        "currency": p.currency or None,
        "availability": _availability(p.availability),
        "image": images[0] if images else None,
        "sku": getattr(p, "sku", "") or None,
        "gtin": getattr(p, "gtin", "") or None,
        "list_price": getattr(p, "list_price", None),
        "brand": p.brand or None,
    }


# -- scoring ------------------------------------------------------------------------------------


def score(corpus: Path, entries: list[Entry] | None = None) -> dict[str, Any]:
    """Per-field tallies over a corpus, the misses page by page, and the time per page."""
    entries = load_manifest(corpus) if entries is None else entries
    tallies = {name: Tally() for name in FIELDS}
    groups: dict[str, dict[str, Tally]] = {}
    pages: dict[str, int] = {}
    misses, ms = [], []
    for entry in entries:
        t0 = time.perf_counter()
        try:
            got = extract(corpus, entry)
        except Exception as exc:  # one crashing page is a miss on every field, not a dead run
            got = dict.fromkeys(FIELDS)
            misses.append({"file": entry.file, "field": "*", "error": repr(exc)[:200]})
        ms.append((time.perf_counter() - t0) * 1000)
        pages[_group(entry)] = pages.get(_group(entry), 0) + 1
        for name in FIELDS:
            want, value = entry.expected.get(name), got[name]
            wanted = NORMALISE[name](want) is not None if not isinstance(want, list) else True
            extracted = NORMALISE[name](value) is not None
            ok = wanted and extracted and matches(name, want, value)
            group = groups.setdefault(_group(entry), {n: Tally() for n in FIELDS})
            for tally in (tallies[name], group[name]):
                tally.expected += wanted
                tally.extracted += extracted
                tally.correct += ok
            if (wanted or extracted) and not ok:
                misses.append(
                    {"file": entry.file, "field": name, "expected": want, "got": _plain(value)}
                )
    return {
        "corpus": str(corpus),
        "pages": len(entries),
        "fields": {name: t.row() for name, t in tallies.items()},
        "groups": {
            g: {"pages": pages[g], **{name: t.row() for name, t in fields.items()}}
            for g, fields in sorted(groups.items())
        },
        "misses": misses,
        "ms_per_page": percentiles(ms),
    }


def _group(entry: Entry) -> str:
    """The platform or structure a page stands for: its first tag, "api" payloads apart."""
    tag = entry.tags[0] if entry.tags else "untagged"
    return f"{tag}-api" if entry.kind != "html" else tag


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def _table(result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name, row in result["fields"].items():
        cells = {k: ("-" if v is None else v) for k, v in row.items()}
        rows.append({"field": name, **cells})
    return rows


def _group_table(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Precision/recall of the fields that matter most, per platform (first tag)."""
    rows = []
    for group, fields in result["groups"].items():
        row: dict[str, Any] = {"group": group, "pages": fields["pages"]}
        for name, short in (("price", "price"), ("availability", "stock"), ("sku", "sku"), ("gtin", "gtin")):  # fmt: skip
            for measure in ("precision", "recall"):
                value = fields[name][measure]
                row[f"{short} {measure[0].upper()}"] = "-" if value is None else value
        rows.append(row)
    return rows


def markdown_table(result: dict[str, Any]) -> str:
    """The per-field table as Markdown, for docs/benchmarks.md."""
    lines = ["| field | expected | extracted | correct | precision | recall | F1 |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, row in result["fields"].items():
        cells = [f"{v:.3f}" if isinstance(v, float) else "-" if v is None else str(v) for v in row.values()]  # fmt: skip
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="directory with manifest.jsonl")
    parser.add_argument("--json", help="also write the JSON result here")
    parser.add_argument("--verbose", action="store_true", help="list every miss, page by page")
    parser.add_argument(
        "--markdown", action="store_true", help="also print the field table as Markdown"
    )
    parser.add_argument(
        "--tag", help="score only the samples with this tag (no-markup, shopify, ja…)"
    )
    args = parser.parse_args()
    if not (args.corpus / "manifest.jsonl").is_file():
        parser.error(f"no manifest.jsonl in {args.corpus}")

    from bench.common import setup_django

    setup_django()
    entries = load_manifest(args.corpus)
    if args.tag:
        entries = [e for e in entries if args.tag in e.tags]
    result = score(args.corpus, entries)
    if args.verbose:
        for miss in result["misses"]:
            print(f"{miss['file']}: {miss['field']}: expected {miss.get('expected')!r}, "
                  f"got {miss.get('got', miss.get('error'))!r}")  # fmt: skip
        print()
    print(f"{result['pages']} pages from {args.corpus}")
    print_table(_table(result))
    print()
    print_table(_group_table(result))
    print()
    if args.markdown:
        print(markdown_table(result))
        print()
    emit_json({"machine": machine(), **result}, args.json)


if __name__ == "__main__":
    main()
