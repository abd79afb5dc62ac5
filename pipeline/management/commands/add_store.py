"""Register a store: detect its platform (Shopify, WooCommerce, schema.org) and save it.

manage.py add_store https://shop.example/ [--name N] [--slug S] [--crawl-delay SECONDS]
                  [--allow-long-crawl-delay] [--extra-hosts "shop.example.co.uk,*.shop.example"]

Detection goes through the same per-host gate as `scrape`, so a scrape started right after keeps
the site's gap.

A URL the crawler would refuse (not http(s), credentials, a private, loopback or link-local
address) is refused up front with a one-line error, even with --platform, which skips detection.
"""

from django.core.management.base import BaseCommand, CommandError

from pipeline.exceptions import FetchError, ScrapeFailed
from pipeline.http.safety import AddressPolicy, UnsafeURL, check_url
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
        parser.add_argument(
            "--allow-long-crawl-delay",
            action="store_true",
            help="Crawl at MEEPO_MAX_CRAWL_DELAY when robots.txt asks for more (else skipped).",
        )
        parser.add_argument(
            "--extra-hosts",
            default="",
            help="The store's other host names, comma-separated; product and page URLs elsewhere "
            "are skipped.",
        )
        parser.add_argument("--contact-email", default="")
        parser.add_argument(
            "--platform", choices=["shopify", "woocommerce", "schema_org"], help="Skip detection."
        )

    def handle(
        self,
        *args,
        url,
        name,
        slug,
        crawl_delay,
        contact_email,
        platform,
        allow_long_crawl_delay,
        extra_hosts,
        **options,
    ):
        if crawl_delay is not None and crawl_delay < 0:
            raise CommandError("--crawl-delay must be >= 0", returncode=2)
        try:
            check_url(url.strip(), policy=AddressPolicy.from_settings())
        except UnsafeURL as exc:  # an unresolvable name is left to detection's own message
            raise CommandError(f"cannot add {url}: {exc}", returncode=2) from exc
        try:
            store = add_store(
                url,
                name=name,
                slug=slug,
                crawl_delay=crawl_delay,
                contact_email=contact_email,
                platform=platform,
                allow_long_crawl_delay=allow_long_crawl_delay,
                extra_hosts=extra_hosts,
            )
        except (ScrapeFailed, FetchError) as exc:  # FetchError: e.g. a redirect to a private host
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"added store {store.slug!r} ({store.get_platform_display()}) at {store.base_url}"
            )
        )
