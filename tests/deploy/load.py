"""Client threads searching a running site (HTML and JSON API, alternately) until stopped,
recording every answer: the load under which the zero-downtime and cluster tests publish."""

from __future__ import annotations

import threading
import time
from urllib.parse import quote

from tests.deploy.stack import http


class LoadGenerator:
    """`with LoadGenerator(url, words) as load: ...`; then `load.results` holds
    (path, status, body, seconds) per request. A refused or reset connection is status 0."""

    def __init__(self, base_url: str, words: list[str], threads: int = 4):
        self.base_url, self.words, self.stop, self.results = base_url, words, threading.Event(), []
        self.threads = [
            threading.Thread(target=self._run, args=(i, threads)) for i in range(threads)
        ]

    def _run(self, first: int, stride: int) -> None:
        i = first
        while not self.stop.is_set():
            q = quote(self.words[i % len(self.words)])
            path = f"/api/search?q={q}" if i % 2 else f"/search?q={q}"
            started = time.monotonic()
            try:
                status, _, body = http(self.base_url + path, timeout=30)
            except OSError as exc:  # a refused or reset connection is a failed request too
                status, body = 0, repr(exc).encode()
            self.results.append((path, status, body, time.monotonic() - started))
            i += stride

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)
