"""Django admin for the catalogue: stores with their crawl history and errors, products,
images (with thumbnails), stored image assets and per-URL fetch state.

Crawl runs and fetch states are written by the pipeline only, so they are read-only here.

Modules: `stores` (stores, hosts, crawl runs), `products` (products, images, assets, fetch
state), `common` (what they share). Importing this package registers every ModelAdmin.
"""

from catalog.admin import products, stores  # noqa: F401  (registers the ModelAdmins)
