"""The queries an evaluation runs: a judged set from a JSONL file, or weak labels from the catalogue.

Judged set, one JSON object a line:

    {"query": "navy linen shirt", "relevant": [12, "4006381333931", "https://shop/p/1"],
     "graded": {"12": 3, "https://shop/p/2": 1}, "store": "shop-slug"}

`relevant` and the keys of `graded` name products by primary key, GTIN, product URL or
"store-slug:external-id". A product listed in `relevant` without a grade has grade 1; grade 0
means judged not relevant. `store` (optional) runs the query inside that store only.

Weak labels: a store's own category, tag or title words become queries and the store's products
carrying them the relevant set, searched inside that store. Stores label inconsistently and
keyword search reads these very fields, so weak labels measure agreement with the stores' own
labelling, not truth; keyword scores on them are inflated by construction.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from catalog.models import Product, Store
from search.selectors import STOPWORDS

logger = logging.getLogger(__name__)

WEAK_SOURCES = ("category", "tag", "title")
GTIN_LENGTHS = (8, 12, 13, 14)
_WORD = re.compile(r"[^\W\d_]{3,}", re.UNICODE)


class JudgedSetError(ValueError):
    """A judged-set file that cannot be read (the message names the line)."""


@dataclass(frozen=True)
class EvalQuery:
    query: str
    grades: dict[int, int]  # product id -> grade 0-3 (0: judged not relevant)
    store: str | None = None  # slug: the query runs inside this store only
    source: str = "judged"  # "judged", "category", "tag" or "title"
    unresolved: tuple[str, ...] = field(default=())

    @property
    def relevant(self) -> frozenset[int]:
        return frozenset(pid for pid, grade in self.grades.items() if grade > 0)

    @property
    def group(self) -> str:
        return self.store or "(all stores)"


class _Resolver:
    """Product ids for the identifiers a judged set may use, a few queries per file."""

    def __init__(self, identifiers: set[str]):
        self.map: dict[str, int] = {}
        digits = {i for i in identifiers if i.isdigit()}
        self.map.update({i: int(i) for i in digits})
        has_gtin = any(f.name == "gtin" for f in Product._meta.get_fields())
        gtins = {i for i in digits if len(i) in GTIN_LENGTHS}
        if has_gtin and gtins:
            for pk, gtin in Product.objects.filter(gtin__in=gtins).values_list("pk", "gtin"):
                self.map[gtin] = pk
        urls = {i for i in identifiers if i.startswith(("http://", "https://"))}
        for pk, url in Product.objects.filter(url__in=urls).values_list("pk", "url"):
            self.map[url] = pk
        pairs = [i.split(":", 1) for i in identifiers if ":" in i and i not in urls]
        for slug, external_id in pairs:
            pk = (
                Product.objects.filter(store__slug=slug, external_id=external_id)
                .values_list("pk", flat=True)
                .first()
            )
            if pk is not None:
                self.map[f"{slug}:{external_id}"] = pk
        known = set(
            Product.objects.filter(pk__in=set(self.map.values())).values_list("pk", flat=True)
        )
        self.map = {k: v for k, v in self.map.items() if v in known}

    def __call__(self, identifier: str) -> int | None:
        return self.map.get(identifier)


def _parse_line(number: int, line: str) -> dict:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise JudgedSetError(f"line {number}: not JSON ({exc.msg})") from exc
    if not isinstance(row, dict) or not str(row.get("query", "")).strip():
        raise JudgedSetError(f'line {number}: needs a non-empty "query"')
    relevant, graded = row.get("relevant", []), row.get("graded", {})
    if not isinstance(relevant, list) or not isinstance(graded, dict):
        raise JudgedSetError(f'line {number}: "relevant" is a list, "graded" an object')
    for key, grade in graded.items():
        if not isinstance(grade, int) or not 0 <= grade <= 3:
            raise JudgedSetError(f"line {number}: grade of {key!r} must be an integer 0-3")
    if not relevant and not any(graded.values()):
        raise JudgedSetError(f"line {number}: no relevant product")
    return row


def load_judged(path: str | Path) -> list[EvalQuery]:
    """Queries of a JSONL judged set, with identifiers resolved to product ids.

    Raises JudgedSetError for a malformed line; identifiers that match no product are kept in
    `unresolved` (and logged) rather than failing the run.
    """
    rows = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            rows.append(_parse_line(number, line))
    identifiers = {
        str(i) for row in rows for i in [*row.get("relevant", []), *row.get("graded", {})]
    }
    resolve = _Resolver(identifiers)
    queries = []
    for row in rows:
        grades: dict[int, int] = {}
        missing = []
        wanted = {str(i): 1 for i in row.get("relevant", [])}
        wanted.update({str(k): int(v) for k, v in row.get("graded", {}).items()})
        for identifier, grade in wanted.items():
            pid = resolve(identifier)
            if pid is None:
                missing.append(identifier)
            else:
                grades[pid] = max(grade, grades.get(pid, 0))
        if missing:
            logger.warning("query %r: %d identifiers match no product", row["query"], len(missing))
        queries.append(
            EvalQuery(
                query=str(row["query"]).strip(),
                grades=grades,
                store=row.get("store") or None,
                unresolved=tuple(missing),
            )
        )
    return queries


def _labels(product: dict, source: str) -> set[str]:
    if source == "category":
        category = product["category"].strip()
        return {category} if category else set()
    if source == "tag":
        tags = product["tags"] if isinstance(product["tags"], list) else []
        return {str(t).strip() for t in tags if str(t).strip()}
    return {w.lower() for w in _WORD.findall(product["title"])} - STOPWORDS


def _query_text(label: str, source: str) -> str:
    # "Home > Kitchen > Mugs" is searched as "Mugs": shoppers type the leaf, not the path.
    return re.split(r"\s*[>/|]\s*", label)[-1] if source == "category" else label


def weak_label_queries(
    *,
    sources: tuple[str, ...] = ("category", "tag"),
    stores: tuple[str, ...] = (),
    per_source: int = 20,
    min_products: int = 2,
    max_share: float = 0.5,
) -> list[EvalQuery]:
    """Queries from each store's own labels, the products carrying them relevant (grade 1).

    Per store and source, the `per_source` most used labels carried by at least `min_products`
    and at most `max_share` of the store's active products (a label on everything says nothing).
    """
    unknown = set(sources) - set(WEAK_SOURCES)
    if unknown:
        raise ValueError(f"unknown weak-label source(s): {', '.join(sorted(unknown))}")
    queries: list[EvalQuery] = []
    store_qs = Store.objects.filter(slug__in=stores) if stores else Store.objects.all()
    for store in store_qs.order_by("slug"):
        products = list(
            Product.objects.active().filter(store=store).values("pk", "title", "category", "tags")
        )
        for source in sources:
            carriers: dict[str, set[int]] = defaultdict(set)
            for product in products:
                for label in _labels(product, source):
                    carriers[label].add(product["pk"])
            counts = Counter({label: len(ids) for label, ids in carriers.items()})
            limit = max(min_products, int(max_share * len(products)))
            kept = [
                label
                for label, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
                if min_products <= n <= limit
            ][:per_source]
            queries += [
                EvalQuery(
                    query=_query_text(label, source),
                    grades=dict.fromkeys(sorted(carriers[label]), 1),
                    store=store.slug,
                    source=source,
                )
                for label in kept
            ]
    return queries
