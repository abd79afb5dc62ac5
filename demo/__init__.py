"""The demo and test tools: a fake shop server, random-weight models, and the commands that use
them (`demo`, `serve_demo_shop`, `create_random_model`). Nothing in catalog/, search/ or
pipeline/ imports this app; `make run`, the tests and the benchmarks do.

  demo.shop          an HTTP shop on 127.0.0.1 (Shopify, WooCommerce, schema.org flavours)
                     with drawn product photos, for crawling without the internet
  demo.random_model  tiny or full-size image-text models with RANDOM weights, saved with
                     save_pretrained, so the encoder's real loading path runs offline
"""
