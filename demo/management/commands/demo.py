"""Set up everything and serve the site: what `make run` runs.

1. migrate and collectstatic;
2. when the catalogue is empty: crawl the bundled demo shop (served on 127.0.0.1 by this command
   for the duration of the crawl), or the store at MEEPO_STORE_URL / --store-url, with the real
   scraper (`add_store`, `scrape_stores`);
3. embed the images and publish an index (`embed_images`, `build_index`); when the CLIP model
   cannot be loaded, say what to do and carry on: the site still serves keyword search;
4. replace this process with gunicorn (deploy/gunicorn.conf.py) on http://127.0.0.1:8000.

Idempotent: with a catalogue already there, step 2 is skipped and step 3 has nothing to do.
Steps 2 and 3 hold the pipeline lock like every command that writes (exit 75 when it is held).
"""

import os
import sys
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.test.utils import override_settings

from catalog.models import Product, Store
from pipeline.lock import command_lock
from search.exceptions import ModelNotAvailable

GUNICORN_CONF = Path(settings.BASE_DIR) / "deploy" / "gunicorn.conf.py"
MODEL_HELP = """
The CLIP model {model!r} could not be loaded, so image search is off for now and the site
serves keyword search only. To turn image search on, either:
  - on a machine with internet:
      MEEPO_DEBUG=1 .venv/bin/python manage.py download_model --to clip-model
    copy the clip-model directory here and run `MEEPO_CLIP_MODEL=$PWD/clip-model make run`; or
  - for an offline smoke demo with meaningless random weights:
      MEEPO_DEBUG=1 .venv/bin/python manage.py create_random_model var/random-clip
      MEEPO_CLIP_MODEL=$PWD/var/random-clip make run
Reason: {reason}
"""


class Command(BaseCommand):
    help = "Migrate, build a demo catalogue when empty, embed, index and serve on 127.0.0.1:8000."

    def add_arguments(self, parser):
        parser.add_argument("--store-url", default=settings.MEEPO_STORE_URL, help="Crawl this store instead of the bundled demo shop (default: MEEPO_STORE_URL).")  # fmt: skip
        parser.add_argument("--products", type=int, default=48, help="Size of the bundled demo shop.")  # fmt: skip
        parser.add_argument("--flavour", default="shopify", help="Demo shop flavour: shopify, woocommerce or schema_org.")  # fmt: skip
        parser.add_argument("--limit", type=int, default=200, help="Crawl at most this many products of --store-url (first run only; default 200).")  # fmt: skip
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-serve", action="store_true", help="Set up, then exit instead of serving.")  # fmt: skip

    def handle(self, *args, **options):
        self._step("Preparing the database and static files")
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)

        store_url = options["store_url"]
        with command_lock():
            if (
                store_url
                and not Store.objects.filter(base_url__startswith=store_url.rstrip("/")).exists()
            ):
                self._crawl(store_url, limit=options["limit"])
            elif not Product.objects.exists():
                self._crawl_demo_shop(flavour=options["flavour"], products=options["products"])
            else:
                self._step(f"Catalogue has {Product.objects.count()} products: not crawling again")
            self._embed_and_index()
        if options["no_serve"]:
            return
        self._serve(options["host"], options["port"])

    def _step(self, text):
        self.stdout.write(self.style.MIGRATE_HEADING(f"==> {text}"))
        self.stdout.flush()

    def _crawl_demo_shop(self, *, flavour, products):
        from demo.shop import DemoShop

        # The main shop; an outlet and a gallery selling some of its products with GTINs in
        # their JSON-LD (the same GTINs: one result, "also at 1 store", offers on the product
        # page; Shopify's products.json has no barcodes); a shop with no product markup at all.
        shops = [
            (DemoShop(flavour=flavour, products=products, seed=0), "Meepo demo shop", "demo-shop"),
            (
                DemoShop("schema_org", products=8, seed=0, price_factor=Decimal("0.9")),
                "Meepo demo outlet",
                "demo-outlet",
            ),
            (
                DemoShop("schema_org", products=4, seed=0, price_factor=Decimal("1.1")),
                "Meepo demo gallery",
                "demo-gallery",
            ),
            (
                DemoShop("schema_org", products=6, seed=5, markup="none"),
                "Meepo corner shop",
                "demo-corner-shop",
            ),
        ]
        with ExitStack() as stack:
            for shop, _, _ in shops:
                stack.enter_context(shop)
            main = shops[0][0]
            self._step(f"Serving the bundled demo shop ({products} products) on {main.base_url}")
            # Our own shops on loopback: allow exactly their addresses and ports, and skip the
            # politeness delay meant for other people's servers. Nothing else in the process
            # sees these.
            with override_settings(
                MEEPO_ALLOWED_LOOPBACK=[f"127.0.0.1:{shop.port}" for shop, _, _ in shops],
                MEEPO_CRAWL_DELAY=0.0,
                MEEPO_API_DELAY=0.0,
            ):
                for shop, name, slug in shops:
                    self._crawl(shop.base_url, name=name, slug=slug, delay=0.0)

    def _crawl(self, url, *, name=None, slug=None, limit=None, delay=None):
        from pipeline.scrape import add_store, scrape_stores

        first = f" (first {limit} products; `manage.py pipeline` crawls the rest)" if limit else ""
        self._step(f"Crawling {url} with the real scraper{first}")
        try:
            store = add_store(url, name=name, slug=slug, crawl_delay=delay)
        except Exception as exc:
            raise CommandError(f"Could not add the store {url}: {exc}") from exc
        report = scrape_stores(store_slug=store.slug, limit=limit)
        self.stdout.write(f"    {report.summary()}")
        if not Product.objects.exists():
            raise CommandError(f"The crawl of {url} found no products; see the log above.")

    def _embed_and_index(self):
        from pipeline.embed import embed_images
        from pipeline.indexing import build_index

        model = settings.MEEPO_CLIP_MODEL
        where = (
            "" if Path(model).is_dir() else " (downloads it once; up to a minute without internet)"
        )
        self._step(f"Embedding product images with {model}{where}")
        try:
            self.stdout.write(f"    {embed_images().summary()}")
            self._step("Publishing the search index")
            self.stdout.write(f"    {build_index().summary()}")
        except ModelNotAvailable as exc:
            self.stderr.write(
                self.style.WARNING(MODEL_HELP.format(model=settings.MEEPO_CLIP_MODEL, reason=exc))
            )
            # The web workers would otherwise retry the unreachable hub (~30 s) on each start.
            os.environ["HF_HUB_OFFLINE"] = "1"

    def _serve(self, host, port):
        gunicorn = Path(sys.executable).with_name("gunicorn")
        self._step(f"Serving on http://{host}:{port}/  (Ctrl+C stops)")
        self.stdout.flush()
        sys.stderr.flush()
        argv = [str(gunicorn), "-c", str(GUNICORN_CONF), "--bind", f"{host}:{port}"]
        os.execv(argv[0], argv)
