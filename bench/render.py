"""Result-card rendering: the Django card against the Jinja2 card the site serves, same run.

Renders the 24 hits of real search pages (bench/search.py's catalogue) through the Django card the
site used before issue 13 (kept as tests/search/reference/_product_card.html) and through
`search.cards.render_card` (templates/jinja2/partials/_product_card.html), checks that both write
the same HTML, and reports CPU ms per 24 cards and the ratio.

    .venv/bin/python -m bench.render --products 100000 --pages 30
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import emit_json, machine, print_table  # noqa: E402

# The Django card the Jinja2 one replaced, kept as the reference tests/search/test_cards.py pins.
REFERENCE_CARD = ROOT / "tests" / "search" / "reference" / "_product_card.html"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--pages", type=int, default=30)
    parser.add_argument("--json", help="also write the JSON result here")
    return parser.parse_args()


def normalise(html: str) -> str:
    html = html.replace("&#x27;", "&#39;")
    html = re.sub(r"\{#.*?#\}", "", html)
    return re.sub(r"\s+", " ", html).replace("> <", "><").strip()


def pages(count: int) -> list[tuple]:
    from django.test import Client

    import search.views as views
    from bench.search import unique_queries

    captured = []
    real = views.render

    def capture(request, template, context=None, **kwargs):
        captured.append((request, context))
        return real(request, template, context, **kwargs)

    views.render = capture
    client = Client(HTTP_HOST="127.0.0.1")
    for query in unique_queries(count, seed=21):
        client.get("/search?" + urlencode({"q": query}))
    views.render = real
    return [(r, c) for r, c in captured if c.get("page") is not None and c["page"].hits]


def main() -> None:
    args = parse_args()
    from bench.search_cpu import setup

    setup(args.products, quantize=True)
    from django.template import engines

    from search.cards import render_card

    django_card = engines["django"].from_string(REFERENCE_CARD.read_text("utf-8"))
    samples = {"django": [], "jinja2": []}
    same = cards = 0
    for request, context in pages(args.pages):
        page = context["page"]
        for engine, render in (
            ("django", lambda h, c=context, r=request: django_card.render({**c, "hit": h}, r)),
            ("jinja2", lambda h, p=page: render_card(h, page=p)),
        ):
            start = time.process_time()
            for hit in page.hits:
                render(hit)
            samples[engine].append((time.process_time() - start) * 1000)
        for hit in page.hits:
            cards += 1
            a = normalise(django_card.render({**context, "hit": hit}, request))
            same += a == normalise(render_card(hit, page=page))
    rows = [
        {
            "engine": engine,
            "pages": len(v),
            "median ms / 24 cards": round(statistics.median(v), 2),
            "mean": round(statistics.fmean(v), 2),
        }
        for engine, v in samples.items()
    ]
    ratio = round(statistics.median(samples["django"]) / statistics.median(samples["jinja2"]), 2)
    print_table(rows)
    print(f"Django / Jinja2 (median): {ratio}; identical cards: {same} of {cards}")
    emit_json({"bench": "render", "rows": rows, "django_over_jinja2": ratio, "identical": same, "cards": cards, "machine": machine()}, args.json)  # fmt: skip


if __name__ == "__main__":
    main()
