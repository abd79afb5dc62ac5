"""Zero-shot attributes as facets and filters, across stores that label things differently."""

import pytest
from bs4 import BeautifulSoup

from catalog.models import ProductAttributes
from search import selectors, services
from search.selectors import SearchFilters
from tests.factories import ProductFactory, StoreFactory

pytestmark = pytest.mark.django_db


def label(product, **values):
    ProductAttributes.objects.create(product=product, model_name="m", key="k", **values)
    return product


@pytest.fixture
def products():
    # Two stores, two vocabularies ("Navy" vs "Dark blue"); the image says navy for both.
    a, b = StoreFactory(slug="a"), StoreFactory(slug="b")
    return {
        "shirt": label(
            ProductFactory(store=a, title="Oxford shirt", category="Navy"), colour="navy"
        ),
        "mug": label(
            ProductFactory(store=b, title="Enamel mug", category="Dark blue"),
            colour="navy",
            material="metal",
        ),
        "rug": label(ProductFactory(store=b, title="Wool rug"), colour="red", pattern="striped"),
        "lamp": ProductFactory(store=a, title="Lamp"),  # not labelled yet
    }


def test_attribute_filter_crosses_stores_in_sql_and_orm(products):
    navy = SearchFilters(attributes=(("colour", ("navy",)),))
    assert not navy.is_empty
    expected = {products["shirt"].pk, products["mug"].pk}
    assert set(navy.queryset().values_list("pk", flat=True)) == expected
    where, params = navy.sql("p")
    assert set(selectors.browse_product_ids(filters=navy, limit=10, offset=0)) == expected
    assert "catalog_productattributes" in where
    assert params[-1] == "navy"
    both = SearchFilters(attributes=(("colour", ("navy",)), ("material", ("metal",))))
    assert list(both.queryset().values_list("pk", flat=True)) == [products["mug"].pk]


def test_unknown_attribute_names_never_reach_sql(products):
    odd = SearchFilters(attributes=(("colour) OR 1=1 --", ("x",)),))
    where, _ = odd.sql("p")
    assert "OR 1=1" not in where
    assert odd.queryset().count() == 4


def test_attribute_facets_count_candidates_and_browse_alike(products):
    ids = [p.pk for p in products.values()]
    counted = selectors.facet_counts(product_ids=ids, filters=SearchFilters())
    assert counted["colour"] == [("navy", "Navy blue", 2), ("red", "Red", 1)]
    assert counted["pattern"] == [("striped", "Striped", 1)]
    assert counted["material"] == [("metal", "Metal", 1)]
    assert counted["product_type"] == []
    assert counted == selectors.facet_counts(product_ids=[], filters=SearchFilters(in_stock=True))


def test_search_page_filters_by_colour_and_shows_the_facet(client, products):
    page = BeautifulSoup(client.get("/search", {"colour": "navy"}).content, "html.parser")
    ids = {int(a["data-product-id"]) for a in page.select("#result-list article")}
    assert ids == {products["shirt"].pk, products["mug"].pk}
    box = page.select_one('[data-facet="colour"] input[value="navy"]')
    assert box.has_attr("checked")
    assert "Navy blue" in page.select_one('[data-facet="colour"]').text


def test_product_page_shows_its_attributes_as_links_to_the_filter(client, products):
    ProductAttributes.objects.filter(product=products["rug"]).update(
        scores={"colour": [["red", 0.91], ["navy", 0.05]], "pattern": [["striped", 0.7]]}
    )
    page = BeautifulSoup(client.get(f"/products/{products['rug'].pk}").content, "html.parser")
    links = page.select("[data-attributes] a")
    assert [a.text for a in links] == ["Red", "Striped"]
    assert links[0]["href"].endswith("/search?colour=red")
    assert "91% sure" in links[0]["title"]
    bare = BeautifulSoup(client.get(f"/products/{products['lamp'].pk}").content, "html.parser")
    assert bare.select_one("[data-attributes]") is None


def test_admin_product_page_shows_the_attributes_read_only(admin_client, products):
    response = admin_client.get(f"/admin/catalog/product/{products['rug'].pk}/change/")
    assert response.status_code == 200
    page = BeautifulSoup(response.content, "html.parser")
    block = page.select_one("#attributes-group")
    assert block is not None
    assert "striped" in block.text
    assert block.select_one("input[name$='-colour']") is None  # read-only


def test_a_query_of_label_words_finds_products_labelled_so(products):
    from search.attributes import query_attributes

    assert query_attributes("navy") == {"colour": {"navy"}}
    assert query_attributes("Navy Blue striped") == {
        "colour": {"navy", "blue"},
        "pattern": {"striped"},
    }
    assert query_attributes("navy shirt") is None  # "shirt" is no label: words and looks decide
    page = services.search_products(query="navy")  # no index: keyword side only
    ids = {h.product.pk for h in page.hits}
    # Neither title says navy; one store's category does ("Navy"), the other's says "Dark blue".
    assert ids == {products["shirt"].pk, products["mug"].pk}
    assert all("keyword" in h.signals for h in page.hits)
    assert {h.product.pk for h in services.search_products(query="navy -enamel").hits} == {
        products["shirt"].pk
    }
    assert services.search_products(query="red striped").hits[0].product.pk == products["rug"].pk


def test_product_api_returns_the_attributes(client, products):
    body = client.get(f"/api/products/{products['mug'].pk}").json()
    assert body["attributes"] == {"colour": "navy", "material": "metal"}
    assert client.get(f"/api/products/{products['lamp'].pk}").json()["attributes"] == {}
