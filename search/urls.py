"""URLs of the search site and its JSON API (namespace "search")."""

from django.urls import path, re_path, register_converter

from search import api, views

app_name = "search"

MAX_ID = 2**63 - 1  # SQLite's INTEGER: a bigger number is no product, not an OverflowError


class ProductIdConverter:
    """A product id that fits the database (1 to 19 digits, at most 2**63 - 1); anything else
    does not match, so the URL answers 404 (JSON under /api/) instead of a 500."""

    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > MAX_ID:
            raise ValueError(f"{value} is larger than any product id")
        return number

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(ProductIdConverter, "product_id")

urlpatterns = [
    path("", views.home, name="home"),
    path("search", views.results, name="results"),
    path("search/image", views.image_search, name="image"),
    path("products/<product_id:pk>", views.product_detail, name="product"),
    path("api/search", api.search, name="api_search"),
    path("api/search/image", api.search_image, name="api_image"),
    path("api/products/<product_id:pk>", api.product, name="api_product"),
    path("api/products/<product_id:pk>/similar", api.similar, name="api_similar"),
    re_path(r"^media/(?P<path>.+)$", views.serve_media, name="media"),
]
