"""Whether a query can be an exact match at all (search.fts.exact_match_ids: a product's
platform id, SKU, MPN, GTIN, a variant's SKU or GTIN, or a whole title), answered without the
database for the served version, so most searches skip that lookup's query.

The version's snapshot holds `identifiers.npy` (search.snapshot_write): the sorted 64-bit
hashes of every platform id, SKU, MPN and GTIN of its products and their variants, read after
the snapshot's read stamp. Nothing can match when none of the query's lookup forms hashes into
it, its keyword index holds no product with that whole title, and no product changed (or was
deleted) since the snapshot's read (search.live_rows.changed_ids: the pipeline writes variants
with their product, moving its `updated_at`). Any doubt (no such file: a version written
before it; changes since; no keyword index; a hash collision) says "may match", and the
lookup runs as before: the same ids either way.
"""

from __future__ import annotations

import hashlib

import numpy as np
from numpy.typing import NDArray

from search import keyword_engine, live_rows
from search.fts import gtin_forms

IDENTIFIERS = "identifiers"  # the snapshot column (identifiers.npy)


def identifier_hashes(values) -> NDArray[np.int64]:
    """A stable 64-bit hash of each string (UTF-8, BLAKE2b), as written and as looked up."""
    digests = b"".join(hashlib.blake2b(v.encode(), digest_size=8).digest() for v in values)
    return np.frombuffer(digests, dtype="<i8").astype(np.int64)


def lookup_forms(text: str) -> set[str]:
    """Every value exact_match_ids compares a column with for the stripped query `text`."""
    forms = {text}
    if len(text) <= 100:  # exact_match_ids' identifier lookups stop there
        forms |= {text.upper(), *gtin_forms(text)}
    return forms


def may_match(snap, text: str, title_lookup=None) -> bool:
    """False only when exact_match_ids surely finds nothing for the stripped query `text`."""
    known = snap.cols.get(IDENTIFIERS)
    if known is None:
        return True
    changed = live_rows.changed_ids(snap)
    if changed is None or len(changed):
        return True
    found = (title_lookup or keyword_engine.exact_title_lookup)(text)
    if found is None or found[0]:
        return True
    if not len(known):
        return False
    hashes = identifier_hashes(sorted(lookup_forms(text)))
    at = np.minimum(np.searchsorted(known, hashes), len(known) - 1)
    return bool((known[at] == hashes).any())
