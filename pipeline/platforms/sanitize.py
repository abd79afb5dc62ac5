"""Make store text safe to store and display: one pass over everything a listing carries.

A store's JSON can hold strings no database or page should see: a lone surrogate (`"\\ud800"`
in JSON-LD decodes to a str that cannot be encoded as UTF-8, so SQLite's write raised
UnicodeEncodeError and ended the whole scrape), C0/C1 control characters, and bidi overrides
and isolates (U+202A-202E, U+2066-2069) that make "gnp.exe" display as "exe.png". `clean_text`
replaces lone surrogates with U+FFFD and drops those controls; the direction *marks* LRM, RLM
and ALM (U+200E, U+200F, U+061C) are kept in prose, where mixed Arabic/Hebrew text needs them,
and dropped from URLs and identifiers, where they only ever disguise something.
`clean_listing` applies it in place to every string of a Listing (products, variants, ids,
failure reasons, fetch records) before anything is written.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

_SURROGATES = re.compile("[\ud800-\udfff]")
# C0 controls but tab/newline/carriage return, DEL, C1 controls, bidi embeddings/overrides/isolates.
_CONTROLS = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
_PROSE_STRIP = re.compile(f"[{_CONTROLS}]")
_STRICT_STRIP = re.compile(f"[{_CONTROLS}\u200e\u200f\u061c]")
# Fields that are not prose: direction marks in them only disguise a URL or an identifier.
STRICT_FIELDS = frozenset(
    {"url", "image_url", "image_urls", "external_id", "sku", "gtin", "mpn", "currency", "ref"}
    | {"unchanged_ids", "kept_ids", "items"}  # ids: cleaned exactly like external_id
)


def clean_text(value: str, *, strict: bool = False) -> str:
    """`value` without lone surrogates (-> U+FFFD), control characters and bidi overrides."""
    if value.isascii():
        return _STRICT_STRIP.sub("", value) if not value.isprintable() else value
    value = _SURROGATES.sub("\ufffd", value)
    return (_STRICT_STRIP if strict else _PROSE_STRIP).sub("", value)


def clean_value(value: Any, *, strict: bool = False) -> Any:
    """Clean every string inside `value` (str, list, tuple, dict, dataclass); dataclasses and
    lists are changed in place, other containers rebuilt."""
    if isinstance(value, str):
        return clean_text(value, strict=strict)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            current = getattr(value, f.name)
            cleaned = clean_value(current, strict=strict or f.name in STRICT_FIELDS)
            if cleaned is not current:
                setattr(value, f.name, cleaned)
        return value
    if isinstance(value, list):
        value[:] = [clean_value(v, strict=strict) for v in value]
        return value
    if isinstance(value, tuple):
        return tuple(clean_value(v, strict=strict) for v in value)
    if isinstance(value, dict):
        return {
            clean_text(k, strict=True) if isinstance(k, str) else k: clean_value(v, strict=strict)
            for k, v in value.items()
        }
    return value


def clean_listing(listing: Any) -> None:
    """Clean a platforms.base.Listing in place (see module doc)."""
    clean_value(listing)
