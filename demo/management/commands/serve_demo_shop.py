"""Run the demo shop on 127.0.0.1 until interrupted, for trying the scraper by hand.

manage.py serve_demo_shop --flavour shopify --port 8001 --products 60
manage.py serve_demo_shop --flavour schema_org --markup none     # pages without product markup
manage.py serve_demo_shop --flavour schema_org --price-factor 0.9  # same products, other prices
"""

import time
from decimal import Decimal, InvalidOperation

from django.core.management.base import BaseCommand, CommandError

from demo.shop import FLAVOURS, DemoShop
from demo.shop.server import MARKUPS


class Command(BaseCommand):
    help = (
        "Serve a generated demo shop (Shopify-like, WooCommerce-like or schema.org) on 127.0.0.1."
    )

    def add_arguments(self, parser):
        parser.add_argument("--flavour", choices=FLAVOURS, default="shopify")
        parser.add_argument("--port", type=int, default=8001)
        parser.add_argument("--products", type=int, default=60)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--crawl-delay",
            type=float,
            default=None,
            help="Add 'Crawl-delay: N' to robots.txt for all bots.",
        )
        parser.add_argument(
            "--markup",
            choices=MARKUPS,
            default="full",
            help="'none': product pages without JSON-LD, microdata or OpenGraph (schema_org only).",
        )
        parser.add_argument(
            "--price-factor",
            default="1",
            help="Multiply every price (another store selling the same products, same GTINs).",
        )

    def handle(self, *args, flavour, port, products, seed, crawl_delay, markup, **options):
        if products < 0:
            raise CommandError("--products must be >= 0", returncode=2)
        try:
            factor = Decimal(options["price_factor"])
        except InvalidOperation:
            factor = Decimal(0)
        if not factor > 0:
            raise CommandError("--price-factor must be a positive number", returncode=2)
        try:
            shop = DemoShop(
                flavour=flavour,
                products=products,
                seed=seed,
                port=port,
                markup=markup,
                price_factor=factor,
            )
        except ValueError as exc:
            raise CommandError(str(exc), returncode=2) from exc
        if crawl_delay is not None:
            shop.set_robots(
                shop.robots_txt.replace(
                    "User-agent: *\n", f"User-agent: *\nCrawl-delay: {crawl_delay}\n"
                )
            )
        try:
            shop.start()
        except OSError as exc:
            raise CommandError(f"cannot listen on 127.0.0.1:{port}: {exc}") from exc
        self.stdout.write(
            self.style.SUCCESS(f"{flavour} demo shop with {products} products at {shop.base_url}/")
        )
        self.stdout.write(f"Try: manage.py add_store {shop.base_url}/ --crawl-delay 0.2")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            self.stdout.write("stopping")
        finally:
            shop.stop()
