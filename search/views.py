"""Search pages: home, results (full page or htmx fragment), product, search by photo.

Thin views: a form validates, one service call searches, a template renders. Every page works
without JavaScript; with htmx the same URLs return only the part of the page that changes
(`HX-Request`), and `Vary: HX-Request` keeps caches from mixing the two. `Server-Timing` reports
where the time went (encode, ann, db, render) so the browser's devtools and the benchmark can see it.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods, require_safe
from django.views.static import serve

from search import result_cache, selectors, services
from search.api import json_error
from search.attributes import describe_attributes
from search.exceptions import IndexNotReady, ModelNotAvailable
from search.forms import CappedMemoryUploadHandler, ImageQueryForm, SearchForm, SimilarForm
from search.images import make_preview
from search.page_context import applied_filters, facet_groups, lenient_search_form
from search.page_render import render_results_page
from search.security import UploadsBusy, upload_slot

logger = logging.getLogger(__name__)


def render_timed(request, template, context, *, status=200, timings=None) -> HttpResponse:
    """Render and add a Server-Timing header with the service's stages plus rendering."""
    start = time.perf_counter()
    return _timed(render(request, template, context, status=status), start, timings)


def _timed(response: HttpResponse, start: float, timings) -> HttpResponse:
    stages = dict(timings or {})
    stages["render"] = (time.perf_counter() - start) * 1000
    response["Server-Timing"] = ", ".join(f"{k};dur={v:.2f}" for k, v in stages.items())
    patch_vary_headers(response, ["HX-Request"])
    return response


def _is_fragment(request: HttpRequest) -> bool:
    # A history restore asks for the whole page even though htmx sent it.
    return request.headers.get("HX-Request") == "true" and not request.headers.get(
        "HX-History-Restore-Request"
    )


def unavailable(request, exc: Exception) -> HttpResponse:
    """503: the index (or model) this request needs is not ready; the reason goes to the log."""
    logger.warning("search unavailable: %s", exc)
    response = render(request, "search/unavailable.html", status=503)
    response["Retry-After"] = "120"  # an index build or model download takes minutes
    return response


@require_safe
def home(request):
    return render_timed(
        request,
        "search/home.html",
        {
            "form": SearchForm(),
            "examples": selectors.example_queries(),
            "browse": selectors.browse_links(),
        },
    )


@require_safe
def results(request):
    # A repeat of a finished search is answered from search.result_cache (when enabled): no
    # encoder, index or ranking queries; the shown products are re-checked in one query.
    key = response = None
    if result_cache.enabled():
        kind = _results_kind(request)
        key = result_cache.request_key(request, kind=kind, version=services.index_version())
        response = result_cache.cached_response(key)
    if response is None:
        response, page = _render_results(request)
        if key is not None:
            result_cache.keep_response(key, response, [h.product.pk for h in page.hits])
    if _is_fragment(request) and request.headers.get("X-Search-Typing") == "1":
        # Still typing: replace the history entry instead of adding one per pause (site.js).
        response["HX-Replace-Url"] = request.get_full_path()
    return response


def _render_results(request):
    form, notes = lenient_search_form(request.GET)
    offset, limit = form.offset_limit()
    filters = form.filters()
    page = services.search_products(
        query=form.cleaned_data["q"],
        filters=filters,
        offset=offset,
        limit=limit,
        sort=form.cleaned_data["sort"],
        spell=request.GET.get("spell") != "off",
    )
    kind = _results_kind(request)
    context = {
        "form": form,
        "page": page,
        "filters": filters,
        "debug": request.GET.get("debug") == "1",
        "more_url": _more_url(request, page),
    }
    if kind != "more":  # "more" appends cards and a new "more" link, nothing else
        context |= {
            "facet_groups": facet_groups(page, filters),
            "examples": selectors.example_queries() if not page.hits else [],
            "sort_choices": services.SORT_CHOICES,
            "notes": notes,
        }
        context["applied"], context["clear_url"] = applied_filters(request, page, form)
    start = time.perf_counter()  # the page in Jinja2 (search.page_render), the rest in Django
    response = HttpResponse(render_results_page(kind, context))
    return _timed(response, start, page.timings), page


def _results_kind(request) -> str:
    """Which answer (search.page_render.TEMPLATES): the page, the htmx search form's, "more"."""
    if not _is_fragment(request):
        return "html"
    return "more" if request.GET.get("fragment") == "more" else "htmx"


def _more_url(request, page) -> str:
    if not page.has_more:
        return ""
    # What `request.GET.copy()`, less "fragment", with "page" set, `.urlencode()` gives (the
    # same pairs in the same order: a page already there keeps its place), without copying the
    # QueryDict (a deep copy of every value list on every search that has a next page).
    number = str(page.next_offset // page.limit + 1)
    pairs, placed = [], False
    for key, values in request.GET.lists():
        if key == "fragment":
            continue
        if key == "page":
            values, placed = [number], True
        pairs.extend((key, value) for value in values)
    if not placed:
        pairs.append(("page", number))
    return "?" + urlencode(pairs, encoding=request.GET.encoding)


@require_safe
def product_detail(request, pk: int):
    product = selectors.get_product(pk)
    if product is None:
        raise Http404("No such product")
    # "More similar products" shows a longer list (12 more each time, up to 96).
    shown = SIMILAR_STEP * _clamped_int(request.GET.get("similar"), 1, SIMILAR_MAX // SIMILAR_STEP)
    similar = services.find_similar_products(
        product=product, fallback_to_keywords=True, limit=shown
    )
    if similar.visual_status == "not_ready" and not selectors.has_own_images(product.pk):
        # A permanent state (only shared pictures such as a size chart), not "not ready yet".
        similar = dataclasses.replace(
            similar,
            visual_status="no_image",
            notice="This product has no photo of its own to compare; "
            "these products share words with it.",
        )
    # ?variant=<the store's variant id>: a result card showed that variant (colour, price).
    wanted = request.GET.get("variant", "")
    variant = next((v for v in product.variant_list if v.external_id == wanted), None)
    images = product.ready_images
    main = next((i for i in images if variant and i.pk == variant.image_id), None)
    return render_timed(
        request,
        "search/product_detail.html",
        {
            "product": product,
            "similar": similar,
            "variant": variant,
            "main_image": main or (images[0] if images else None),
            "looks": describe_attributes(product),
            **_back_to_results(request),
            "more_similar": shown // SIMILAR_STEP + 1
            if similar.has_more and shown < SIMILAR_MAX
            else None,
        },
        timings=similar.timings,
    )


SIMILAR_STEP, SIMILAR_MAX = 12, 96


def _clamped_int(value, low: int, high: int) -> int:
    try:
        return min(high, max(low, int(value)))
    except (TypeError, ValueError):
        return low


def _back_to_results(request) -> dict[str, str]:
    """A link back to the results page the shopper came from (its Referer), with its query."""
    referer = urlsplit(request.headers.get("Referer", ""))
    if referer.netloc != request.get_host() or referer.path != reverse("search:results"):
        return {}
    query = QueryDict(referer.query).get("q", "")
    return {"back_url": f"{referer.path}?{referer.query}", "back_query": query[:200]}


@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def image_search(request):
    # Upload handlers must be set before anything reads request.POST, CSRF included.
    request.upload_handlers = [CappedMemoryUploadHandler(request)]
    return _image_search(request)


@csrf_protect
def _image_search(request):
    context = {"max_upload_mb": settings.FILE_UPLOAD_MAX_MEMORY_SIZE // (1024 * 1024)}
    if request.method in ("GET", "HEAD"):
        if request.GET.get("photo"):
            return _photo_results(request, context)
        # Say so before the shopper picks a photo, not after the upload.
        context["not_ready"] = not services.visual_search_ready()
        return render_timed(
            request, "search/image_search.html", {**context, "form": ImageQueryForm()}
        )
    try:
        with upload_slot():  # decoding and encoding a photo is the costly part: a few at a time
            form = ImageQueryForm(request.POST, request.FILES)
            if not form.is_valid():
                return render_timed(
                    request, "search/image_search.html", {**context, "form": form}, status=400
                )
            page = services.search_by_image(
                image=form.cleaned_data["image"],
                filters=form.filters(),
                limit=form.cleaned_data.get("limit") or 24,
                keep=True,
            )
    except UploadsBusy as exc:
        busy = ImageQueryForm()
        busy.cleaned_data = {}  # an unbound form that still shows one message
        busy.add_error(None, str(exc))
        response = render_timed(
            request, "search/image_search.html", {**context, "form": busy}, status=429
        )
        response["Retry-After"] = "5"
        return response
    except (IndexNotReady, ModelNotAvailable) as exc:
        return unavailable(request, exc)
    return render_timed(
        request,
        "search/image_search.html",
        {
            **context,
            "form": ImageQueryForm(),
            "page": page,
            "filters": form.filters(),
            "query_photo": make_preview(form.cleaned_data["image"]),
            "more_url": _photo_page_url(page, form.filters()),
        },
        timings=page.timings,
    )


def _photo_results(request, context):
    """An earlier photo search's results by its id (`?photo=…&page=2&in_stock=on`)."""
    form = SimilarForm(request.GET)
    if not form.is_valid():
        form = SimilarForm({})
        form.is_valid()
    offset, limit = form.offset_limit()
    try:
        page = services.search_by_photo_id(
            photo=request.GET["photo"], filters=form.filters(), offset=offset, limit=limit
        )
    except (IndexNotReady, ModelNotAvailable) as exc:
        return unavailable(request, exc)
    context |= {"form": ImageQueryForm(), "filters": form.filters()}
    if page is None:
        return render_timed(request, "search/image_search.html", {**context, "expired": True})
    context |= {"page": page, "more_url": _photo_page_url(page, form.filters())}
    return render_timed(request, "search/image_search.html", context, timings=page.timings)


def _photo_page_url(page, filters) -> str:
    """The next page of a kept photo search, or "" (no more, or nothing kept)."""
    if not page.photo or not page.has_more:
        return ""
    params = {"photo": page.photo, "page": page.next_offset // page.limit + 1}
    if page.limit != 24:
        params["limit"] = page.limit
    if filters.in_stock:
        params["in_stock"] = "on"
    return "?" + urlencode(params)


def serve_media(request, path: str):
    """Thumbnails from MEDIA_ROOT when no nginx is in front (demo, tests); 404 otherwise."""
    if not settings.MEEPO_SERVE_MEDIA:
        raise Http404("Media are served by the web server")
    response = serve(request, path, document_root=settings.MEDIA_ROOT)
    # Thumbnails are content-addressed (named by sha256): they never change.
    response["Cache-Control"] = "public, max-age=31536000, immutable"
    return response


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def error_400(request, exception=None):
    if _is_api(request):
        return json_error("bad request", 400)
    return defaults.bad_request(request, exception)


def error_403(request, exception=None):
    if _is_api(request):
        return json_error("forbidden", 403)
    return defaults.permission_denied(request, exception)


def error_404(request, exception=None):
    if _is_api(request):
        return json_error(f"no such API URL or object: {request.path}", 404)
    return defaults.page_not_found(request, exception)


def error_500(request):
    if _is_api(request):
        return json_error("internal error; it has been logged", 500)
    return defaults.server_error(request)
