"""pytest fixtures that start demo shops on 127.0.0.1 (registered in tests/conftest.py).

    def test_x(make_shop):
        shop = make_shop("woocommerce", products=5)

`make_shop` stops every shop it started when the test ends; `shopify_shop`, `woo_shop` and
`schema_shop` are ready-made 8-product shops. `fast_crawl` shrinks the crawler's delays so tests
exercise the real politeness code in fractions of a second.
"""

import pytest

from demo.shop import DemoShop


@pytest.fixture
def make_shop():
    shops: list[DemoShop] = []

    def _make(flavour: str = "shopify", products: int = 8, seed: int = 0, **kwargs) -> DemoShop:
        shop = DemoShop(flavour=flavour, products=products, seed=seed, **kwargs).start()
        shops.append(shop)
        return shop

    yield _make
    for shop in shops:
        shop.stop()


@pytest.fixture
def shopify_shop(make_shop):
    return make_shop("shopify")


@pytest.fixture
def woo_shop(make_shop):
    return make_shop("woocommerce")


@pytest.fixture
def schema_shop(make_shop):
    return make_shop("schema_org")


@pytest.fixture
def fast_crawl(settings):
    """Tiny delays and timeouts: politeness still runs for real, only faster."""
    settings.MEEPO_CRAWL_DELAY = 0.0
    settings.MEEPO_API_DELAY = 0.0
    settings.MEEPO_REQUEST_TIMEOUT = 5.0
    settings.MEEPO_BACKOFF_BASE = 0.05
    settings.MEEPO_ALLOWED_LOOPBACK = ["127.0.0.1:*"]  # fixture shops use ephemeral ports
    return settings
