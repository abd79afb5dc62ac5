"""Prices and currencies as a shopper reads them: one amount, the right unit, an ISO 4217 code.

`parse_price` reads the first amount of a text with `price-parser` (locale-aware decimal and
thousands separators, currency symbols) and adds the sanity rules a person applies:

- never two amounts glued together ("71,91 € 79,90 €" is 71.91, "109 109" is 109);
- zero-decimal currencies (ISO 4217 minor unit 0: JPY, KRW, CLP, ISK, VND, …) read "24.990"
  as twenty-four thousand nine hundred and ninety, and refuse "24.99" (a wrong currency or a
  wrong price: better no price than a wrong one);
- three-decimal currencies (KWD, BHD, OMR, JOD, TND, LYD, IQD) keep "12.345" exact;
- zero, negative, infinite and absurdly large amounts are no price (None).

Results are Decimals quantised to the currency's minor unit (two places when it is unknown).
`normalize_currency` maps codes, obsolete codes (RUR → RUB) and unambiguous symbols to current
ISO 4217 codes; an ambiguous symbol ($, kr, ¥) is resolved with a country hint when there is one.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from price_parser import Price
from price_parser._currencies import CURRENCIES

MAX_PRICE = Decimal("1e10")
_SYMBOL_DECIMAL = re.compile(r"(?<![\d.,])(\d{1,6})([€$£])(\d{2})(?![\d.,])")
# Arabic-Indic and Persian digits with the Arabic decimal (U+066B) and thousands (U+066C) marks.
_DIGITS = str.maketrans(
    "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669"
    "\u06f0\u06f1\u06f2\u06f3\u06f4\u06f5\u06f6\u06f7\u06f8\u06f9\u066b\u066c",
    "01234567890123456789.,",
)
_CENTS = re.compile(r"(\d) \.(\d{2})(?!\d)")
# ISO 4217 list one (minor units) for active codes whose minor unit is not 2.
ZERO_DECIMAL = frozenset(
    [
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "ISK",
        "JPY",
        "KMF",
        "KRW",
        "PYG",
        "RWF",
        "UGX",
        "UYI",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    ]
)
THREE_DECIMAL = frozenset(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"])
# Withdrawn codes still printed by shop software; stores using them show current-unit amounts.
OBSOLETE = {
    "RUR": "RUB",
    "BYR": "BYN",
    "MRO": "MRU",
    "STD": "STN",
    "VEF": "VES",
    "ZMK": "ZMW",
    "GHC": "GHS",
    "MZM": "MZN",
    "ROL": "RON",
    "TRL": "TRY",
    "YTL": "TRY",
    "SIT": "EUR",
    "HRK": "EUR",
    "RMB": "CNY",
    "NIS": "ILS",
    "UKH": "UAH",
}
# Symbols and words that name one currency whatever the country.
SYMBOLS = {
    "€": "EUR",
    "euro": "EUR",
    "euros": "EUR",
    "£": "GBP",
    "us$": "USD",
    "usd$": "USD",
    "u$s": "USD",
    "c$": "CAD",
    "ca$": "CAD",
    "a$": "AUD",
    "au$": "AUD",
    "nz$": "NZD",
    "hk$": "HKD",
    "nt$": "TWD",
    "ntd": "TWD",
    "s$": "SGD",
    "r$": "BRL",
    "mx$": "MXN",
    "₹": "INR",
    "rs.": "INR",
    "rs": "INR",
    "₩": "KRW",
    "원": "KRW",
    "円": "JPY",
    "元": "CNY",
    "₽": "RUB",
    "\u0440\u0443\u0431": "RUB",  # rub (Cyrillic)
    "\u0440\u0443\u0431.": "RUB",
    "\u0440.": "RUB",
    "₴": "UAH",
    "грн": "UAH",
    "zł": "PLN",
    "zl": "PLN",
    "kč": "CZK",
    "ft": "HUF",
    "₺": "TRY",
    "tl": "TRY",
    "₪": "ILS",
    "฿": "THB",
    "₫": "VND",
    "đ": "VND",
    "₱": "PHP",
    "rm": "MYR",
    "rp": "IDR",
    "lei": "RON",
    "лв": "BGN",
    "лв.": "BGN",
    "chf": "CHF",
    "fr.": "CHF",
    "kd": "KWD",
    "د.ك": "KWD",
    "bd": "BHD",
    "د.ب": "BHD",
    "ر.ع.": "OMR",
    "s/": "PEN",
    "s/.": "PEN",
}
# Arabic abbreviations written with dots ("ر.س." is the Saudi riyal); found inside a text.
ARABIC_SYMBOLS = {"ر.س": "SAR", "د.إ": "AED", "ر.ق": "QAR", "ج.م": "EGP", "د.م": "MAD"}
SYMBOLS.update(ARABIC_SYMBOLS)
SYMBOLS.update({f"{k}.": v for k, v in ARABIC_SYMBOLS.items()})
# Symbols several currencies share: the country (from the site's domain or language) decides.
AMBIGUOUS = {
    "$": {
        "": "USD",
        "ca": "CAD",
        "au": "AUD",
        "nz": "NZD",
        "mx": "MXN",
        "cl": "CLP",
        "ar": "ARS",
        "co": "COP",
        "sg": "SGD",
        "hk": "HKD",
        "br": "BRL",
        "uy": "UYU",
        "tw": "TWD",
    },
    "kr": {
        "se": "SEK",
        "no": "NOK",
        "dk": "DKK",
        "is": "ISK",
        "sv": "SEK",
        "nb": "NOK",
        "da": "DKK",
    },
    "kr.": {"se": "SEK", "no": "NOK", "dk": "DKK", "is": "ISK", "da": "DKK", "nb": "NOK"},
    "¥": {"": "JPY", "ja": "JPY", "jp": "JPY", "cn": "CNY", "zh": "CNY"},
    "￥": {"": "JPY", "ja": "JPY", "jp": "JPY", "cn": "CNY", "zh": "CNY"},
}
# Languages spoken in several dollar/peso markets: without a country, a bare "$" on such a page
# is unknown (a Spanish-language shop's "$1,299" is as likely pesos as US dollars). Under
# other hints ("sv", "de") the shop's "$" is the US dollar, as without a hint.
DOLLAR_LANGUAGES = frozenset(["es", "pt", "fr", "zh", "ms", "nl"])
_ISO = frozenset(CURRENCIES) | frozenset(OBSOLETE.values())


def minor_unit(currency: str) -> int:
    """Decimal places of a currency's minor unit (ISO 4217); 2 when not listed otherwise."""
    if currency in ZERO_DECIMAL:
        return 0
    return 3 if currency in THREE_DECIMAL else 2


def normalize_currency(value: object, country: str = "") -> str:
    """An ISO 4217 code from a code, an obsolete code or a symbol; "" when unsure.

    `country` is a lower-case ISO 3166 or language hint ("cl", "no", "ja") for shared symbols.
    """
    if not isinstance(value, str):
        return ""
    text = " ".join(value.split())
    upper = text.upper()
    if re.fullmatch(r"[A-Z]{3}", upper) and OBSOLETE.get(upper, upper) in _ISO:
        return OBSOLETE.get(upper, upper)
    key = text.lower()
    if key in SYMBOLS:
        return SYMBOLS[key]
    if key in AMBIGUOUS:
        choices = AMBIGUOUS[key]
        if key == "$" and country in DOLLAR_LANGUAGES:
            return ""
        return choices.get(country, choices.get("", ""))
    return ""


def _split_glued(text: str) -> str:
    """The first of several amounts written side by side ("71,91 79,90", "109 109")."""
    tokens = text.split()
    for i in range(len(tokens) - 1):
        head, nxt = tokens[i], tokens[i + 1]
        if re.fullmatch(r"\D{0,4}\d[\d.,]*[^\w\s.,]{1,3}", head) and re.match(r"\d", nxt):
            return head  # "50€ 10 articles": the amount ends at its currency sign
        if not (re.search(r"\d$", head) and re.match(r"\d", nxt)):
            continue
        decimals = re.search(r"\d[.,]\d{1,2}$", head)
        starts = i == 0 or not re.search(r"\d$", tokens[i - 1])
        repeated = starts and head == nxt and len(re.sub(r"\D", "", head)) >= 2
        if decimals or repeated or not re.fullmatch(r"\d{3}(?:[.,]\d{1,2})?", nxt):
            return " ".join(tokens[: i + 1])
    return text


def _separator_hint(text: str, currency: str) -> str | None:
    """The decimal separator when the currency makes "12.345" unambiguous."""
    match = re.search(r"\d([.,])\d{3}\D*$", text)
    if match and currency in THREE_DECIMAL and text.count(match.group(1)) == 1:
        return match.group(1)
    return None


def tidy_amounts(text: str) -> str:
    """Price text with odd but common spellings made plain: "24€99" (the symbol as decimal
    mark) becomes "24.99 €", a superscript-cents "$24 .99" becomes "$24.99", Arabic-Indic
    and Persian digits (U+0660…U+0669, U+06F0…U+06F9) become ASCII ones ("459.00")."""
    text = text.translate(_DIGITS)
    text = _SYMBOL_DECIMAL.sub(r"\1.\3 \2", text)
    return _CENTS.sub(r"\1.\2", text)


# The longest text read as one price or currency ("ab 1.299,00 € inkl. MwSt."): price-parser's
# separator guess is quadratic in the digits it is given (20,000 digits: ~4 s), and no price
# is written this long, so a hostile page's giant "price" is no price at all.
MAX_PRICE_TEXT = 200


def _amount_from_text(text: str, currency: str) -> Decimal | None:
    if len(text) > MAX_PRICE_TEXT:
        return None
    text = tidy_amounts(" ".join(text.replace("\u00a0", " ").replace("\u202f", " ").split()))
    text = _split_glued(text)
    # Swiss "1'299", also written with a typographic apostrophe.
    text = re.sub(r"(?<=\d)[\u2019\u02bc'`\u00b4](?=\d{3})", "", text)
    if re.search(r"(^|[^\d\s.,])\s*-\s*\d", text):
        return None  # "-5", "€ -5": a negative amount is a discount, not a price
    return Price.fromstring(text, decimal_separator=_separator_hint(text, currency)).amount


def _amount_from_number(value: Decimal, currency: str) -> Decimal | None:
    """A number the markup typed: "24.990" for a zero-decimal currency means 24990."""
    exponent = value.as_tuple().exponent
    if currency in ZERO_DECIMAL and isinstance(exponent, int) and exponent == -3:
        return value * 1000
    return value


def parse_price(value: object, currency: str = "") -> Decimal | None:
    """A positive Decimal in the currency's minor unit, or None when it is not a clear price.

    Strings go through price-parser (first amount only); JSON numbers parsed as Decimal keep
    their written digits so "24.990" CLP reads as 24990. Never returns zero or a negative.
    """
    if value is None or isinstance(value, bool):
        return None
    try:
        if isinstance(value, (int, float, Decimal)):
            amount = _amount_from_number(Decimal(str(value)), currency)
        elif isinstance(value, str) and re.fullmatch(r"\s*\d+(\.\d+)?\s*", value):
            amount = _amount_from_number(Decimal(value.strip()), currency)
            if currency not in ZERO_DECIMAL and re.fullmatch(r"\s*\d+\.\d{3}\s*", value):
                amount = _amount_from_text(value, currency)  # "1.299": thousands, say people
        elif isinstance(value, str):
            amount = _amount_from_text(value, currency)  # tidy_amounts reads Arabic digits
        else:
            return None
    except (InvalidOperation, ValueError):
        return None
    return _checked(amount, currency)


def _checked(amount: Decimal | None, currency: str) -> Decimal | None:
    if amount is None or not amount.is_finite() or amount <= 0 or amount >= MAX_PRICE:
        return None
    places = minor_unit(currency)
    if places == 0 and amount != amount.to_integral_value():
        return None  # 24.99 yen: the currency or the amount is wrong
    return amount.quantize(Decimal("0.001") if places == 3 else Decimal("0.01"))


def currency_of(text: str, country: str = "") -> str:
    """The ISO code of the currency a price text names ("24.990 CLP", "kr 95", "349,90 TL")."""
    if len(text) > MAX_PRICE_TEXT:
        return ""
    symbol = Price.fromstring(text).currency or ""
    code = normalize_currency(symbol, country)
    for word in re.findall(r"[^\s\d.,:;()*/+-]+", text) if not code else []:
        known = word.isupper() or word.lower() in SYMBOLS or word.lower() in AMBIGUOUS
        if known and (code := normalize_currency(word, country)):
            break
    for symbol, iso in ARABIC_SYMBOLS.items() if not code else ():
        if symbol in text:
            return iso
    return code
