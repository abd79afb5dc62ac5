"""Result-card rendering: Django templates against a Jinja2 port of the same card, same run.

Renders the 24 hits of real search pages (bench/search.py's catalogue) through
`templates/partials/_product_card.html` and through `CARD_JINJA` below (a line-by-line port:
same markup, `url()` for `{% url %}`, a macro for `_price.html`), checks that both write the same
HTML (whitespace and the two spellings of an escaped apostrophe aside), and reports CPU ms per
24 cards and the ratio. A measurement for issue 13's "Django templates vs Jinja2", not a port.

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

CARD_JINJA = """<li>
  <article class="card card-sm bg-base-100 shadow-sm h-full relative hover:shadow-md focus-within:ring-2 focus-within:ring-primary" data-product-id="{{ hit.product.pk }}">
    <figure class="relative aspect-square overflow-hidden bg-base-300 rounded-t-box">
      {% if hit.image %}
        {% if hit.image.asset.placeholder %}<img src="{{ hit.image.asset.placeholder }}" alt="" aria-hidden="true" class="absolute inset-0 h-full w-full object-cover blur-md scale-110">{% endif %}
        {% if hit.image.asset.thumbnail %}<img src="{{ hit.image.asset.thumbnail.url }}" alt="" loading="lazy" decoding="async" width="{{ hit.image.asset.width }}" height="{{ hit.image.asset.height }}" class="result-thumb absolute inset-0 h-full w-full object-contain">{% endif %}
      {% else %}
        <span class="text-base-content/60 text-sm">No photo yet</span>
      {% endif %}
    </figure>
    <div class="card-body gap-1">
      <h3 class="card-title text-sm leading-snug line-clamp-2 min-h-[2lh]">
        <a href="{{ url('search:product', hit.product.pk) }}{% if hit.variant %}?variant={{ hit.variant.external_id|urlencode }}{% endif %}" class="after:absolute after:inset-0 focus:outline-none"><bdi>{{ hit.product.title }}</bdi></a>
      </h3>
      <p class="text-xs text-base-content/70"><bdi>{{ hit.product.store.name }}</bdi>{% if hit.product.brand %} · <bdi>{{ hit.product.brand }}</bdi>{% endif %}</p>
      {% if hit.variant %}<p class="text-xs" data-variant="{{ hit.variant.external_id }}"><bdi>{{ hit.variant.label }}</bdi></p>{% endif %}
      <p class="font-semibold" data-price="{{ hit.product.price|amount(hit.product.currency) }}">{% if hit.variant and hit.variant.price is not none %}{{ price_html(hit.variant.price, None, hit.variant.list_price, hit.product.currency) }}{% elif hit.product.price is not none %}{{ price_html(hit.product.price, hit.product.price_max, hit.product.list_price, hit.product.currency) }}{% else %}Price at store{% endif %}</p>
      {% if hit.other_stores %}<p class="text-xs text-base-content/70" data-offers="{{ hit.other_stores }}">also at {{ hit.other_stores }} store{{ '' if hit.other_stores == 1 else 's' }}{% set offer = hit.cheapest_offer %}{% if offer %}, from {{ offer.price|money(offer.currency) }}{% endif %}</p>{% endif %}
      <div class="mt-auto flex flex-wrap items-center gap-1 text-xs">
        {% set availability = (hit.variant.availability if hit.variant else '') or hit.product.availability %}
        {% if availability == "in_stock" %}<span class="text-base-content/80">In stock</span>{% elif availability == "out_of_stock" %}<span class="badge badge-warning badge-sm">Out of stock</span>{% endif %}
        {% if page.mode == "text" %}<span class="text-base-content/70" data-match="{% if hit.matches_words %}words{% else %}looks{% endif %}">{% if hit.matches_words %}Matches your words{% else %}Looks similar{% endif %}</span>{% endif %}
        {% if debug %}{% for signal in hit.signals %}<span class="badge badge-outline badge-sm" data-signal="{{ signal }}">{{ signal }}</span>{% endfor %}
          <span class="text-base-content/70" data-score>{{ '%.4f'|format(hit.score) }}{% if hit.visual_score is not none %} v{{ '%.3f'|format(hit.visual_score) }}{% endif %}{% if hit.keyword_score is not none %} k{{ '%.2f'|format(hit.keyword_score) }}{% endif %}</span>{% endif %}
      </div>
    </div>
  </article>
</li>
"""

PRICE_JINJA = """{% macro price_html(price, price_max, list_price, currency) -%}
<span data-price-now>{{ price|money(currency) }}{% if price_max is not none and price_max > price %}\u2013{{ price_max|money(currency) }}{% endif %}</span>{% if list_price is not none and price is not none and list_price > price %} <del class="text-sm font-normal text-base-content/60" data-list-price="{{ list_price|amount(currency) }}"><span class="sr-only">was </span>{{ list_price|money(currency) }}</del>{% endif %}
{%- endmacro %}"""


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--pages", type=int, default=30)
    parser.add_argument("--json", help="also write the JSON result here")
    return parser.parse_args()


def jinja_card():
    import jinja2
    from django.urls import reverse

    from search import prices

    env = jinja2.Environment(autoescape=True, trim_blocks=False)
    env.globals["url"] = lambda name, *args: reverse(name, args=args)
    env.filters["money"] = lambda v, c="": prices.money(v, c)
    env.filters["amount"] = lambda v, c="": prices.amount(v, c) or ""
    macro = env.from_string(PRICE_JINJA).module.price_html
    env.globals["price_html"] = macro
    return env.from_string(CARD_JINJA)


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
    from django.template.loader import get_template

    django_card = get_template("partials/_product_card.html")
    jinja = jinja_card()
    samples = {"django": [], "jinja2": []}
    same = cards = 0
    for request, context in pages(args.pages):
        page = context["page"]
        for engine, render in (
            ("django", lambda h, c=context, r=request: django_card.render({**c, "hit": h}, r)),
            ("jinja2", lambda h, p=page: jinja.render(hit=h, page=p, debug=False)),
        ):
            start = time.process_time()
            for hit in page.hits:
                render(hit)
            samples[engine].append((time.process_time() - start) * 1000)
        for hit in page.hits:
            cards += 1
            a = normalise(django_card.render({**context, "hit": hit}, request))
            same += a == normalise(jinja.render(hit=hit, page=page, debug=False))
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
