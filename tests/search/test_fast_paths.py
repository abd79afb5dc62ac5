"""The cheaper request-path code of issue 13 gives what the plain code it replaced gave: form
cleaning, fusion without copies, the floor's head, collapse, the "more" link, noise thresholds."""

import random
from types import SimpleNamespace

import numpy as np
import pytest
from django import forms
from django.http import QueryDict
from django.test import RequestFactory

from search import ranking
from search.forms import SearchForm, SimilarForm
from search.ranking import Candidate
from search.relevance import FloorParams, NoiseProfile
from search.views import _more_url


def _stock_clean(form_class, data):
    """The same form cleaned by Django's own `_clean_fields` (a BoundField per field)."""

    class Stock(form_class):
        _clean_fields = forms.Form._clean_fields

    form = Stock(data)
    form.is_valid()
    return form.cleaned_data, form.errors.get_json_data()


@pytest.mark.parametrize("form_class", [SearchForm, SimilarForm])
@pytest.mark.parametrize(
    "raw",
    [
        "",
        "q=lamp",
        "q=lamp&brand=A&brand=B&brand=A&min_price=5&max_price=2&in_stock=on",
        "q=x&page=0&limit=abc&sort=nope&colour=navy&colour=",
        "q=%00&brand=%00&min_price=-1&in_stock=false&page=3&limit=12&sort=price_asc",
    ],
)
def test_form_cleaning_matches_djangos(form_class, raw):
    for data in (QueryDict(raw), QueryDict(raw).dict()):
        for _ in range(2):  # the second time, absent fields come from the kept values
            form = form_class(data)
            form.is_valid()
            assert (form.cleaned_data, form.errors.get_json_data()) == _stock_clean(
                form_class, data
            )


def _old_collapse(scores, ids, owners, depth, exclude_product, exclude_assets):
    seen_products, seen_assets, found = set(), set(exclude_assets), []
    for score, image_id in zip(scores.tolist(), ids.tolist(), strict=True):
        owner = owners.get(image_id)
        if owner is None:
            continue
        product_id, asset_id = owner
        if product_id == exclude_product or product_id in seen_products or asset_id in seen_assets:
            continue
        seen_products.add(product_id)
        seen_assets.add(asset_id)
        found.append(
            Candidate(product_id, image_id, score, visual_score=score, visual_rank=len(found))
        )
        if len(found) >= depth:
            break
    return found


def _visual(rng, n=60):
    ids = np.arange(1, n * 2 + 1, dtype=np.int64)
    scores = np.sort(rng.random(len(ids)).astype(np.float32))[::-1]
    owners = {
        int(i): (int(rng.integers(1, 40)), None if rng.random() < 0.1 else int(rng.integers(1, 50)))
        for i in ids
        if rng.random() < 0.9
    }
    return scores, ids, owners


def test_collapse_matches_the_plain_loop():
    rng = np.random.default_rng(3)
    for _ in range(30):
        scores, ids, owners = _visual(rng)
        for depth, product, assets in ((10, None, frozenset()), (100, 5, frozenset({1, 2}))):
            assert ranking.collapse(scores, ids, owners, depth, product, assets) == (
                _old_collapse(scores, ids, owners, depth, product, assets)
            )


def test_fuse_in_place_orders_as_fuse_then_words_first():
    rng = random.Random(5)
    for _ in range(50):
        visual = [Candidate(rng.randrange(60), 1, 0.5, 0.5, r) for r in range(30)]
        visual = list({c.product_id: c for c in visual}.values())
        for rank, cand in enumerate(visual):
            cand.visual_rank = rank
        keyword = [(pid, -rng.random()) for pid in rng.sample(range(80), 25)]
        exact = rng.sample(range(80), 2)
        expected = ranking.fuse(visual, keyword, exact)
        expected.sort(key=lambda c: c.keyword_rank is None and not c.exact)
        assert ranking.fuse_in_place(visual, keyword, exact) == expected


def test_above_floor_head_is_the_copied_re_ranked_list(monkeypatch):
    noise = NoiseProfile(tuple(np.linspace(0.1, 0.3, 50).tolist()))
    monkeypatch.setattr("search.index.get_index", lambda: SimpleNamespace(noise=noise))
    params = FloorParams(percentile=90.0, margin=0.2)
    scores = [0.5, 0.45, 0.4, 0.32, 0.31, 0.2]
    visual = [Candidate(i, i, s, s, i) for i, s in enumerate(scores)]
    before = [c.copy() for c in visual]
    kept = ranking.above_floor(visual, params)
    # Margin 0.2 under the best (0.5) and above the noise's 90th percentile (~0.28).
    assert [c.product_id for c in kept] == [0, 1, 2, 3, 4]
    assert [c.visual_rank for c in kept] == [0, 1, 2, 3, 4]
    assert visual == before
    # Out of order (not a ranked head): copies, re-ranked, the input untouched.
    shuffled = [visual[3], visual[0], visual[5], visual[1]]
    kept = ranking.above_floor(shuffled, params)
    assert [(c.product_id, c.visual_rank) for c in kept] == [(3, 0), (0, 1), (1, 2)]
    assert visual == before


def test_noise_threshold_kept_equals_computed():
    noise = NoiseProfile((0.1, 0.2, 0.3, 0.4), (0.1, 0.3), ())
    for percentile, kind in ((95.0, "all"), (50.0, "pseudo"), (0.0, "all"), (80.0, "words")):
        first = noise.threshold(percentile, kind)
        assert first == noise._threshold(percentile, kind) == noise.threshold(percentile, kind)
    assert noise == NoiseProfile((0.1, 0.2, 0.3, 0.4), (0.1, 0.3), ())
    assert hash(noise) == hash(NoiseProfile((0.1, 0.2, 0.3, 0.4), (0.1, 0.3), ()))


@pytest.mark.parametrize(
    "raw",
    [
        "q=a+b",
        "q=a&page=2&brand=x&brand=y",
        "page=3&q=%E2%82%AC+caf%C3%A9&fragment=more&in_stock=on",
        "q=a&fragment=more&page=1&page=5",
        "q=~!*'()%20&x=%26%3D",
        "brand=B%C3%B6&sort=price_asc&q=x+y&limit=12",
    ],
)
def test_more_url_is_the_query_dict_way(raw):
    request = RequestFactory().get("/search?" + raw)
    page = SimpleNamespace(has_more=True, next_offset=48, limit=24)
    params = request.GET.copy()
    params.pop("fragment", None)
    params["page"] = "3"
    assert _more_url(request, page) == "?" + params.urlencode()
