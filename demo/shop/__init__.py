"""A fixture/demo shop: a real HTTP server on 127.0.0.1 acting as a Shopify-like, WooCommerce-like
or plain schema.org store, with generated products and pictures, misbehaviour switches and a log
of every request it received. Used by the tests and by `manage.py serve_demo_shop`.

    with DemoShop(flavour="shopify", products=60, seed=0) as shop:
        shop.base_url, shop.requests, shop.add_fault("/products.json*", "retry_after", value="2")
"""

from demo.shop.catalog import DemoImage, DemoProduct
from demo.shop.handler import Fault, RecordedRequest
from demo.shop.server import FLAVOURS, DemoShop

__all__ = ["FLAVOURS", "DemoImage", "DemoProduct", "DemoShop", "Fault", "RecordedRequest"]
