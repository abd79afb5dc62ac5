"""Register a store: detect its platform (Shopify, WooCommerce, schema.org) and save it.

manage.py add_store https://shop.example/ [--name N] [--slug S] [--crawl-delay SECONDS]
"""

from django.core.management.base import BaseCommand, CommandError

from pipeline.exceptions import ScrapeFailed
from pipeline.scrape import add_store


class Command(BaseCommand):
    help = "Add a store to crawl; detects its platform politely (robots.txt obeyed)."

    def add_arguments(self, parser):
        parser.add_argument("url")
        parser.add_argument("--name")
        parser.add_argument("--slug")
        parser.add_argument(
            "--crawl-delay", type=float, help="Seconds between requests (default: settings)."
        )
        parser.add_argument("--contact-email", default="")
        parser.add_argument(
            "--platform", choices=["shopify", "woocommerce", "schema_org"], help="Skip detection."
        )

    def handle(self, *args, url, name, slug, crawl_delay, contact_email, platform, **options):
        if crawl_delay is not None and crawl_delay < 0:
            raise CommandError("--crawl-delay must be >= 0", returncode=2)
        try:
            store = add_store(
                url,
                name=name,
                slug=slug,
                crawl_delay=crawl_delay,
                contact_email=contact_email,
                platform=platform,
            )
        except ScrapeFailed as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"added store {store.slug!r} ({store.get_platform_display()}) at {store.base_url}"
            )
        )
