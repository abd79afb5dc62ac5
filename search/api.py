"""JSON API over the same search service as the pages.

GET  /api/search?q=&store=&brand=&category=&min_price=&max_price=&in_stock=&sort=&page=&limit=
POST /api/search/image   multipart: image (+ the same filters, limit)
GET  /api/products/<id>            one product: identifiers, variants, other stores' offers
GET  /api/products/<id>/similar?page=&limit= (+ filters)

A bad parameter answers 400 with {"error": ..., "errors": {"<parameter>": [messages]}}; a search
that needs the index when none is ready answers 503 with {"error": ...}. Every error is JSON with
an "error" message: an unknown product or URL 404, a product with no picture of its own (only
shared ones, e.g. a size chart) 422 on /similar, a wrong method 405 with Allow (HEAD works
wherever GET does; OPTIONS answers 204 with Allow), too many photo searches at once 429, and
Django's own 400/403/404/500 pages become JSON under /api/ (search.views.error_*). The API takes
no cookies and changes nothing, so it is CSRF-exempt.
"""

from __future__ import annotations

import functools

from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from search import result_cache, selectors, services
from search.attributes import describe_attributes
from search.cards import url  # reverse() for one id, without resolving per hit
from search.exceptions import IndexNotReady, ModelNotAvailable
from search.forms import CappedMemoryUploadHandler, ImageQueryForm, SearchForm, SimilarForm
from search.prices import amount
from search.security import UploadsBusy, upload_slot


def json_error(message: str, status: int, **headers: str) -> JsonResponse:
    response = JsonResponse({"error": message}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def allow(*methods: str):
    """Like require_http_methods, but HEAD comes with GET, OPTIONS answers 204 with Allow and a
    wrong method gets a JSON 405 (with Allow), never an empty body."""
    allowed = {*methods, "OPTIONS"} | ({"HEAD"} if "GET" in methods else set())
    allow_header = ", ".join(sorted(allowed))

    def decorator(view):
        @functools.wraps(view)
        def wrapped(request, *args, **kwargs):
            if request.method == "OPTIONS":
                response = HttpResponse(status=204)
                response["Allow"] = allow_header
                return response
            if request.method not in allowed:
                return json_error(
                    f"method {request.method} not allowed here; use {allow_header}",
                    405,
                    Allow=allow_header,
                )
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def _bad_request(form) -> JsonResponse:
    errors = {name: [str(m) for m in messages] for name, messages in form.errors.items()}
    names = ", ".join(errors)
    return JsonResponse({"error": f"invalid parameter: {names}", "errors": errors}, status=400)


def _unavailable(exc: Exception) -> JsonResponse:
    return JsonResponse({"error": f"search index not ready: {exc}"}, status=503)


def _timed_json(payload: dict, page: services.SearchPage, status: int = 200) -> JsonResponse:
    response = JsonResponse(payload, status=status)
    response["Server-Timing"] = ", ".join(f"{k};dur={v:.2f}" for k, v in page.timings.items())
    return response


def serialize_hit(request, hit: services.SearchHit) -> dict:
    product = hit.product
    thumb = ""
    if hit.image is not None and hit.image.asset.thumbnail:
        thumb = request.build_absolute_uri(hit.image.asset.thumbnail.url)
    return {
        "id": product.pk,
        "title": product.title,
        "url": product.url,
        "page": request.build_absolute_uri(url("search:product", product.pk)),
        "store": {"slug": product.store.slug, "name": product.store.name},
        "brand": product.brand,
        "category": product.category,
        "price": amount(product.price, product.currency),
        "currency": product.currency,
        "availability": product.availability,
        "image_id": hit.image.pk if hit.image is not None else None,
        "thumbnail": thumb,
        "placeholder": hit.image.asset.placeholder if hit.image is not None else "",
        "score": round(hit.score, 6),
        "visual_score": None if hit.visual_score is None else round(hit.visual_score, 6),
        "keyword_score": None if hit.keyword_score is None else round(hit.keyword_score, 6),
        "signals": hit.signals,
        "sku": product.sku,
        "gtin": product.gtin,
        "mpn": product.mpn,
        "list_price": amount(product.list_price, product.currency),
        "price_max": amount(product.price_max, product.currency),
        "variant": serialize_variant(hit.variant, product.currency) if hit.variant else None,
        "variants": [serialize_variant(v, product.currency) for v in hit.variants],
        "offers": [serialize_offer(request, o) for o in hit.offers],
    }


def serialize_variant(variant, currency: str) -> dict:
    """A ProductVariant: `image_id` is the product image (faiss id) showing it, if any."""
    return {
        "id": variant.external_id,
        "title": variant.title,
        "options": variant.options,
        "sku": variant.sku,
        "gtin": variant.gtin,
        "mpn": variant.mpn,
        "price": amount(variant.price, currency),
        "list_price": amount(variant.list_price, currency),
        "availability": variant.availability,
        "url": variant.url,
        "image_id": variant.image_id,
    }


def serialize_offer(request, offer) -> dict:
    """The same product (same GTIN) at another store."""
    return {
        "id": offer.pk,
        "store": {"slug": offer.store.slug, "name": offer.store.name},
        "url": offer.url,
        "page": request.build_absolute_uri(url("search:product", offer.pk)),
        "price": amount(offer.price, offer.currency),
        "list_price": amount(offer.list_price, offer.currency),
        "currency": offer.currency,
        "availability": offer.availability,
    }


def serialize_product(request, product) -> dict:
    """A product as its page shows it (from selectors.get_product), with variants and offers."""
    return {
        "id": product.pk,
        "title": product.title,
        "url": product.url,
        "page": request.build_absolute_uri(url("search:product", product.pk)),
        "store": {"slug": product.store.slug, "name": product.store.name},
        "brand": product.brand,
        "category": product.category,
        "description": product.description,
        "tags": product.tags,
        # Zero-shot labels from its photo (search.attributes): {"colour": "navy", ...}.
        "attributes": {look["param"]: look["value"] for look in describe_attributes(product)},
        "price": amount(product.price, product.currency),
        "price_max": amount(product.price_max, product.currency),
        "list_price": amount(product.list_price, product.currency),
        "currency": product.currency,
        "availability": product.availability,
        "is_active": product.is_active,
        "sku": product.sku,
        "gtin": product.gtin,
        "mpn": product.mpn,
        "images": [
            {"id": i.pk, "thumbnail": request.build_absolute_uri(i.asset.thumbnail.url)}
            for i in product.ready_images
            if i.asset.thumbnail
        ],
        "variants": [serialize_variant(v, product.currency) for v in product.variant_list],
        "offers": [serialize_offer(request, o) for o in product.offers],
    }


def serialize_page(request, page: services.SearchPage) -> dict:
    return {
        "mode": page.mode,
        "query": page.query,
        "offset": page.offset,
        "limit": page.limit,
        "has_more": page.has_more,
        "total": page.total,
        "total_is_lower_bound": page.total_is_lower_bound,
        "suggestion": page.suggestion,
        "corrected_from": page.corrected_from,
        "visual_status": page.visual_status,
        "notice": page.notice,
        "cached": page.cached,
        "sort": page.sort,
        "results": [serialize_hit(request, h) for h in page.hits],
        "facets": {name: [row._asdict() for row in rows] for name, rows in page.facets.items()},
        "timings_ms": {k: round(v, 3) for k, v in page.timings.items()},
    }


@allow("GET")
def search(request):
    # A repeat is answered from search.result_cache (see the results view); the body holds
    # absolute URLs, so the origin is part of the key. Its `timings_ms` are the first answer's.
    key = response = None
    if result_cache.enabled():
        origin = request.build_absolute_uri("/")
        key = result_cache.request_key(
            request, kind="api", version=services.index_version(), origin=origin
        )
        response = result_cache.cached_response(key)
    if response is None:
        response, page = _search(request)
        if key is not None and page is not None:
            result_cache.keep_response(key, response, [h.product.pk for h in page.hits])
    return response


def _search(request):
    form = SearchForm(request.GET)
    if not form.is_valid():
        return _bad_request(form), None
    offset, limit = form.offset_limit()
    page = services.search_products(
        query=form.cleaned_data["q"],
        filters=form.filters(),
        offset=offset,
        limit=limit,
        sort=form.cleaned_data["sort"],
        spell=request.GET.get("spell") != "off",
    )
    return _timed_json(serialize_page(request, page), page), page


@csrf_exempt
@allow("POST")
def search_image(request):
    request.upload_handlers = [CappedMemoryUploadHandler(request)]
    try:
        with upload_slot():  # decoding and encoding a photo is the costly part: a few at a time
            form = ImageQueryForm(request.POST, request.FILES)
            if not form.is_valid():
                return _bad_request(form)
            page = services.search_by_image(
                image=form.cleaned_data["image"],
                filters=form.filters(),
                limit=form.cleaned_data.get("limit") or 24,
            )
    except UploadsBusy as exc:
        return json_error(str(exc), 429, Retry_After="5")
    except (IndexNotReady, ModelNotAvailable) as exc:
        return _unavailable(exc)
    return _timed_json(serialize_page(request, page), page)


@allow("GET")
def product(request, pk: int):
    found = selectors.get_product(pk)
    if found is None:
        return json_error(f"no product with id {pk}", 404)
    return JsonResponse(serialize_product(request, found))


@allow("GET")
def similar(request, pk: int):
    product = selectors.get_product(pk)
    if product is None:
        return json_error(f"no product with id {pk}", 404)
    form = SimilarForm(request.GET)
    if not form.is_valid():
        return _bad_request(form)
    offset, limit = form.offset_limit(default_limit=12)
    try:
        page = services.find_similar_products(
            product=product, filters=form.filters(), offset=offset, limit=limit
        )
    except (IndexNotReady, ModelNotAvailable) as exc:
        if isinstance(exc, IndexNotReady) and not selectors.has_own_images(product.pk):
            # Permanent, not an outage: only shared pictures (size charts) never get a vector.
            return json_error(
                f"product {pk} has no picture of its own to compare (only shared ones)", 422
            )
        return _unavailable(exc)
    return _timed_json(serialize_page(request, page), page)
