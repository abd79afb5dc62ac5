"""Rendering CPU, the way the site rendered before against the way it renders now, same run.

`--what page` (default): the results page as the view answers it, a full page, an htmx fragment
and a "more" fragment (page 2), for real searches of bench/search.py's catalogue. Per page, in
interleaved rounds (the order flips each round), CPU ms (`time.process_time`) of

  render           the page's HTML and HttpResponse from the view's context: the Django templates
                   the site used before (kept as tests/search/reference/search/, over the real
                   templates/base.html, with Django's context processors) against
                   search.page_render (Jinja2);
  view - search    the view with the search service answering the captured page (form, context,
                   render, headers): before (`view_before`, a copy of the view as it was) and now
                   (views._render_results);
  render, cold     search.page_render with the card cache emptied before each page (a page of
                   products no recent search showed).

and whether both ways wrote the same HTML (the Django templates use today's filters and cards,
so "before" is, if anything, cheaper than it was). `--what unique`: render CPU of the full page
for 120 unique queries in a fresh process (cards, prices, facet options mostly new: the 1 M
bench's prices are nearly all distinct), then of the same pages again. `--what cards`: the
Django card against the Jinja2 card (24 cards a page), as before issue 13's page work.

    .venv/bin/python -m bench.render --products 100000 --pages 30
    .venv/bin/python -m bench.render --what unique --products 1000000 --pages 20
    .venv/bin/python -m bench.render --what cards --products 100000 --pages 30
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

# The Django card and results templates the Jinja2 ones replaced, kept as the references
# tests/search/test_cards.py and tests/search/test_page_render.py pin.
REFERENCE = ROOT / "tests" / "search" / "reference"
REFERENCE_CARD = REFERENCE / "_product_card.html"
REFERENCE_PAGES = {
    "html": "search/results.html",
    "htmx": "search/_search_body.html",
    "more": "search/_more.html",
}
KINDS = {  # kind: (extra query parameters, headers)
    "html": ({}, {}),
    "htmx": ({}, {"HX-Request": "true"}),
    "more": ({"page": "2", "fragment": "more"}, {"HX-Request": "true"}),
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--what", choices=["page", "unique", "cards"], default="page")
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--pages", type=int, default=30, help="unique queries")
    parser.add_argument("--rounds", type=int, default=5, help="page mode: rounds over them all")
    parser.add_argument("--json", help="also write the JSON result here")
    return parser.parse_args()


def normalise(html: str) -> str:
    html = html.replace("&#x27;", "&#39;")
    html = re.sub(r"\{#.*?#\}", "", html)
    return re.sub(r"\s+", " ", html).replace("> <", "><").strip()


def reference_engine():
    from django.conf import settings
    from django.template.backends.django import DjangoTemplates

    options = settings.TEMPLATES[0]
    return DjangoTemplates(
        {
            "NAME": "reference",
            "DIRS": [REFERENCE, *options["DIRS"]],
            "APP_DIRS": True,
            "OPTIONS": dict(options["OPTIONS"]),
        }
    )


def captured_pages(count: int) -> list[dict]:
    """For `count` unique queries, each kind of results answer: request, kind, context, HTML."""
    from django.test import Client

    import search.views as views
    from bench.search import unique_queries

    captured, real_render, real_view = [], views.render_results_page, views._render_results

    def render(kind, context):
        html = real_render(kind, context)
        captured[-1].update(kind=kind, context=context, html=html)
        return html

    def view(request):
        captured.append({"request": request})
        return real_view(request)

    views.render_results_page, views._render_results = render, view
    client = Client(HTTP_HOST="127.0.0.1")
    try:
        for query in unique_queries(count, seed=21):
            for extra, headers in KINDS.values():
                client.get("/search?" + urlencode({"q": query, **extra}), headers=headers)
    finally:
        views.render_results_page, views._render_results = real_render, real_view
    return [c for c in captured if "kind" in c and c["context"]["page"].hits]


def view_before(engine):
    """search.views._render_results as it was before the page moved to Jinja2 (70b0f73): the
    same context for every kind, Django's render with its context processors, render_timed."""
    from django.http import HttpResponse

    from search import selectors, services, views
    from search.page_context import applied_filters, facet_groups, lenient_search_form

    def run(request):
        form, notes = lenient_search_form(request.GET)
        offset, limit = form.offset_limit()
        filters = form.filters()
        page = services.search_products(query=form.cleaned_data["q"], filters=filters, offset=offset, limit=limit, sort=form.cleaned_data["sort"], spell=request.GET.get("spell") != "off")  # fmt: skip
        context = {
            "form": form, "page": page, "filters": filters,
            "facet_groups": facet_groups(page, filters),
            "examples": selectors.example_queries() if not page.hits else [],
            "debug": request.GET.get("debug") == "1", "more_url": views._more_url(request, page),
            "sort_choices": services.SORT_CHOICES,
        }  # fmt: skip
        context["applied"], context["clear_url"] = applied_filters(request, page, form)
        context["notes"] = notes
        start = time.perf_counter()
        html = engine.get_template(REFERENCE_PAGES[views._results_kind(request)]).render(context, request)  # fmt: skip
        return views._timed(HttpResponse(html), start, page.timings)

    return run


def main_page(args) -> None:
    from django.http import HttpResponse

    import search.views as views
    from search import cards, services
    from search.page_render import render_results_page

    engine, current = reference_engine(), {}

    def django_page(kind, context):
        return engine.get_template(REFERENCE_PAGES[kind]).render(context, current["request"])

    def render_with(render):
        return lambda c: HttpResponse(render(c["kind"], c["context"]))

    before = view_before(engine)
    phases = {  # (phase, way): (run, forget the rendered cards first)
        ("render", "django"): (render_with(django_page), False),
        ("render", "jinja2"): (render_with(render_results_page), False),
        ("view - search", "before"): (lambda c: before(c["request"]), False),
        ("view - search", "now"): (lambda c: views._render_results(c["request"]), False),
        ("render, cold cards", "jinja2"): (render_with(render_results_page), True),
    }
    pages = captured_pages(args.pages)
    real_search = services.search_products
    samples = {(phase, way, kind): [] for phase, way in phases for kind in KINDS}
    same = 0
    try:
        for c in pages:
            current["request"] = c["request"]
            same += django_page(c["kind"], c["context"]) == c["html"]
        for n in range(args.rounds):
            order = list(phases.items())[:: 1 if n % 2 else -1]
            for c in pages:
                current["request"] = c["request"]
                services.search_products = lambda page=c["context"]["page"], **_: page
                for (phase, way), (run, cold) in order:
                    if cold:
                        with cards._lock:
                            cards._cache.clear()
                    start = time.process_time()
                    run(c)
                    samples[(phase, way, c["kind"])].append((time.process_time() - start) * 1000)
    finally:
        services.search_products = real_search
    rows = [
        {
            "phase": phase,
            "way": way,
            "kind": kind,
            "pages": len(v),
            "median CPU ms": round(statistics.median(v), 3),
            "mean": round(statistics.fmean(v), 3),
        }
        for (phase, way, kind), v in samples.items()
        if v
    ]
    print_table(rows)
    print(f"identical pages (Django templates = Jinja2): {same} of {len(pages)}")
    emit_json({"bench": "render-page", "rows": rows, "identical": same, "pages": len(pages), "machine": machine()}, args.json)  # fmt: skip


def main_unique(args) -> None:
    """Render CPU of full pages for unique queries in this fresh process (what a worker does:
    cards, prices and facet options mostly never rendered before at 1 M), then of the same
    pages again (all of them kept), after `--pages` queries of warm-up."""
    from django.test import Client

    import search.views as views
    from bench.search import unique_queries

    cpu, real = [], views.render_results_page

    def render(kind, context):
        start = time.process_time()
        html = real(kind, context)
        cpu.append((time.process_time() - start) * 1000)
        return html

    views.render_results_page = render
    client = Client(HTTP_HOST="127.0.0.1")
    queries = unique_queries(args.pages + 120, seed=77)
    rows = []
    for phase, batch in (("warm-up", queries[: args.pages]), ("unique", queries[args.pages :]), ("same again", queries[args.pages :])):  # fmt: skip
        cpu.clear()
        for query in batch:
            client.get("/search?" + urlencode({"q": query}))
        rows.append({"phase": phase, "pages": len(cpu), "median CPU ms": round(statistics.median(cpu), 3), "mean": round(statistics.fmean(cpu), 3)})  # fmt: skip
    views.render_results_page = real
    print_table(rows[1:])
    emit_json({"bench": "render-unique", "rows": rows[1:], "machine": machine()}, args.json)


def card_pages(count: int) -> list[tuple]:
    return [(c["request"], c["context"]) for c in captured_pages(count) if c["kind"] == "html"]


def main_cards(args) -> None:
    from django.template import engines

    from search.cards import render_card

    django_card = engines["django"].from_string(REFERENCE_CARD.read_text("utf-8"))
    samples = {"django": [], "jinja2": []}
    same = cards = 0
    for request, context in card_pages(args.pages):
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


def main() -> None:
    args = parse_args()
    from bench.search_cpu import setup

    setup(args.products, quantize=True)
    {"page": main_page, "unique": main_unique, "cards": main_cards}[args.what](args)


if __name__ == "__main__":
    main()
