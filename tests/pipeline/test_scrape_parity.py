"""`scrape --dry-run` reports exactly what the real run then does (one classifier for both)."""

import pytest
from django.core.management import call_command

from catalog.models import Product
from pipeline.scrape import add_store, scrape_stores

pytestmark = pytest.mark.django_db(transaction=True)

COUNTS = ("created", "updated", "unchanged", "failed", "deactivated")


def _counts(report):
    return {name: report.total(name) for name in COUNTS}


@pytest.mark.parametrize("flavour", ["shopify", "woocommerce"])
def test_dry_run_counts_equal_the_real_run(fast_crawl, make_shop, flavour):
    shop = make_shop(flavour, products=6)
    store = add_store(shop.base_url, crawl_delay=0.0)
    scrape_stores()
    first, second, third = shop.products[:3]
    shop.update_product(first.id, title="Renamed in the shop")  # update
    shop.remove_product(second.id)  # deactivate
    back = Product.objects.filter(store=store, external_id=str(third.id))
    assert back.update(is_active=False) == 1  # reactivate
    shop.add_products(1)  # create

    dry = _counts(scrape_stores(dry_run=True))
    real = _counts(scrape_stores())

    assert dry == real
    assert real == {"created": 1, "updated": 2, "unchanged": 3, "failed": 0, "deactivated": 1}
    assert back.get().is_active


def test_dry_run_command_writes_nothing_and_prints_the_same_summary(fast_crawl, woo_shop, capsys):
    add_store(woo_shop.base_url, crawl_delay=0.0)
    call_command("scrape", "--dry-run")
    dry = capsys.readouterr().out.strip().splitlines()[-1]
    assert Product.objects.count() == 0
    call_command("scrape")
    real = capsys.readouterr().out.strip().splitlines()[-1]
    assert dry.removeprefix("dry run, ").split(" (")[0] == real.split(" (")[0]
