"""Product identifiers: GTIN (EAN/UPC/ISBN) validated and normalised, SKU and MPN cleaned.

`normalize_gtin` keeps only numbers a scanner would accept: digits only, a valid GS1 check
digit, GTIN-8 kept as 8 digits, UPC-A (12) and EAN-13 as 13 digits, GTIN-14 as 14 unless it
is an EAN-13 padded with a leading zero. ISBN-10 becomes its ISBN-13 (978…). Anything else
is "" so two stores selling the same thing share one GTIN string, and a typo shares none.
"""

from __future__ import annotations

import re

ID_MAX = 100


def gs1_check_digit_ok(digits: str) -> bool:
    """The GS1 mod-10 check (weights 3,1,3,… from the right, check digit excluded)."""
    body, check = digits[:-1], int(digits[-1])
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == check


def _isbn10_to_13(text: str) -> str:
    if not re.fullmatch(r"\d{9}[\dXx]", text):
        return ""
    total = sum((10 - i) * (10 if c in "Xx" else int(c)) for i, c in enumerate(text))
    if total % 11:
        return ""
    body = "978" + text[:9]
    total = sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


def normalize_gtin(value: object) -> str:
    """A valid GTIN as 8, 13 or 14 digits, or "" when the value is not one."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return ""
    text = re.sub(r"[\s\-.]", "", value.strip())
    text = re.sub(r"^(?:gtin|ean|upc|isbn)(?:1[234]|8)?:?", "", text, flags=re.I)
    if len(text) == 10:
        return _isbn10_to_13(text)
    if not text.isdigit() or len(text) not in (8, 12, 13, 14) or not text.strip("0"):
        return ""
    if not gs1_check_digit_ok(text):
        return ""
    if len(text) == 12:
        return "0" + text
    if len(text) == 14 and text.startswith("0"):
        return text[1:]
    return text


def clean_identifier(value: object) -> str:
    """A SKU or MPN as printed (trimmed, one line, bounded), or "" for no usable value."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return ""
    text = " ".join(value.split())
    if text.lower() in ("", "null", "none", "n/a", "na", "-", "0", "undefined"):
        return ""
    return text[:ID_MAX]
