"""The admin shows each store's host state (robots.txt, delay, parking, failures, why)."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from catalog.models import CrawlRun, Host
from tests.factories import StoreFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(admin_client):
    return admin_client


def test_store_page_shows_its_host_state_and_the_skip_reason(client):
    store = StoreFactory(base_url="https://slow.example")
    Host.objects.create(
        origin="https://slow.example",
        robots_status=200,
        robots_body="User-agent: *\nCrawl-delay: 86400\n",
        robots_fetched_at=timezone.now(),
        robots_delay=86400,
        parked_until=timezone.now() + timedelta(hours=6),
        consecutive_failures=5,
        reason="circuit open for slow.example after 5 consecutive failures",
    )
    CrawlRun.objects.create(
        store=store,
        started_at=timezone.now(),
        status=CrawlRun.Status.STOPPED,
        errors=[{"url": store.base_url, "reason": "robots.txt asks for 86400s … skipped"}],
    )
    html = client.get(reverse("admin:catalog_store_change", args=[store.pk])).content.decode()
    assert "Crawl-delay: 86400" in html
    assert "circuit open for slow.example" in html
    assert "86400s … skipped" in html
    assert 'name="allow_long_crawl_delay"' in html


def test_host_list_and_page_render_read_only(client):
    host = Host.objects.create(origin="https://a.example", robots_delay=2.0, requests=3)
    assert client.get(reverse("admin:catalog_host_changelist")).status_code == 200
    page = client.get(reverse("admin:catalog_host_change", args=[host.pk]))
    assert page.status_code == 200
    assert 'name="origin"' not in page.content.decode()  # nothing to edit
