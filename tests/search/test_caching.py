"""search.caching.TTLCache: least recently used goes first, entries expire, threads share it."""

import threading

from search.caching import TTLCache


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_evicts_the_least_recently_used():
    cache = TTLCache(2, 60)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recently used
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    assert len(cache) == 2


def test_entries_expire_after_ttl():
    clock = Clock()
    cache = TTLCache(10, 5, timer=clock)
    cache.put("k", "v")
    clock.now = 4.9
    assert cache.get("k") == "v"
    clock.now = 5.1
    assert cache.get("k") is None
    cache.put("k", "w")  # a fresh put starts a new lifetime
    clock.now = 9.0
    assert cache.get("k") == "w"


def test_clear_forgets_everything():
    cache = TTLCache(10, 60)
    cache.put(("a", 1), [1])
    cache.clear()
    assert cache.get(("a", 1)) is None


def test_threads_share_one_cache_without_corrupting_it():
    cache = TTLCache(64, 60)

    def work(offset):
        for i in range(2000):
            cache.put((offset, i % 100), i)
            cache.get((offset, (i * 7) % 100))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(cache) == 64
