"""URLs of the search site and its JSON API (namespace "search")."""

from django.urls import path, re_path

from search import api, views

app_name = "search"

urlpatterns = [
    path("", views.home, name="home"),
    path("search", views.results, name="results"),
    path("search/image", views.image_search, name="image"),
    path("products/<int:pk>", views.product_detail, name="product"),
    path("api/search", api.search, name="api_search"),
    path("api/search/image", api.search_image, name="api_image"),
    path("api/products/<int:pk>/similar", api.similar, name="api_similar"),
    re_path(r"^media/(?P<path>.+)$", views.serve_media, name="media"),
]
