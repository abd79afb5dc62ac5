"""Words shoppers read on product pages, in the languages of the stores Meepo crawls.

Out-of-stock phrases are checked before in-stock ones ("not available" contains "available"),
whole words only. WAS_PRICE removes "was €79" style cues so the old amount is not read as the
price.
"""

from __future__ import annotations

import re

_OUT = (
    "out of stock|sold out|currently unavailable|temporarily unavailable|no longer available|"
    "not available|not in stock|ausverkauft|nicht vorrätig|nicht auf lager|"
    "derzeit nicht verfügbar|nicht verfügbar|nicht lieferbar|vergriffen|agotado|sin stock|"
    "sin existencias|no disponible|fuera de stock|épuisé|en rupture de stock|rupture de stock|"
    "indisponible|esaurito|non disponibile|non disponible|niet op voorraad|uitverkocht|"
    "niet leverbaar|niet beschikbaar|esgotado|indisponível|sem estoque|fora de estoque|"
    "brak w magazynie|niedostępny|wyprzedany|slutsåld|slutsålt|slut i lager|ej i lager|"
    "tillfälligt slut|udsolgt|ikke på lager|utsolgt|loppuunmyyty|ei varastossa|"
    "nincs készleten|vyprodáno|není skladem|stokta yok|tükendi|"
    "\u043d\u0435\u0442 \u0432 \u043d\u0430\u043b\u0438\u0447\u0438\u0438|"  # nyet v nalichii
    "在庫切れ|在庫なし|売り切れ|품절|재고 없음|일시품절|缺货|售罄|已售完|hết hàng|"
    "غير متوفر|نفذت الكمية|نفذ من المخزون|אזל מהמלאי|缺貨|售完|已售完|暫無庫存|"
    "εξαντλήθηκε|μη διαθέσιμο|stoc epuizat|indisponibil|nu este în stoc|stok habis|"
    "habis|สินค้าหมด|tạm hết hàng"
)
_IN = (
    "in stock|available now|auf lager|sofort lieferbar|vorrätig|en stock|en existencia|"
    "in magazzino|disponibile|op voorraad|em estoque|disponível|w magazynie|dostępny|i lager|"
    "på lager|varastossa|skladem|készleten|stokta|"
    "\u0432 \u043d\u0430\u043b\u0438\u0447\u0438\u0438|"  # v nalichii
    "在庫あり|재고 있음|有货|còn hàng|متوفر|متوفر في المخزون|במלאי|現貨供應|現貨|有現貨|"
    "άμεσα διαθέσιμο|διαθέσιμο|în stoc|stok tersedia|tersedia|มีสินค้า"
)
OUT_OF_STOCK = re.compile(rf"(?<!\w)(?:{_OUT})(?!\w)", re.I)
IN_STOCK = re.compile(rf"(?<!\w)(?:{_IN})(?!\w)", re.I)
ADD_TO_CART = re.compile(
    r"add to (?:cart|bag|basket)|buy now|in den warenkorb|jetzt kaufen|ajouter au panier|"
    r"añadir al carrito|agregar al carrito|aggiungi al carrello|in winkelwagen|"
    r"adicionar ao carrinho|dodaj do koszyka|lägg i varukorgen?|læg i kurv|legg i handlekurv|"
    r"kosárba|do košíku|sepete ekle|в корзину|カートに入れる|장바구니|加入购物车|أضف إلى السلة|"
    r"加入購物車|adaugă în coș|προσθήκη στο καλάθι|tambah(?:kan)? ke keranjang|"
    r"masukkan ke keranjang|เพิ่มลงตะกร้า|thêm vào giỏ|"
    r"add-to-cart|addtocart|tocart",
    re.I,
)
WAS_PRICE = re.compile(
    r"(?:\bwas|\bstatt|\bvorher|\bavant|\bantes|\bprima|\bvoorheen|\btidigare|\bførpris|"
    r"regular price|normal price|normalpreis|prix normal|precio normal|normale prijs|"
    r"compare at|list price|\brrp|\buvp)\s*:?\s*\D{0,5}\d[\d.,\u00a0 ]*",
    re.I,
)
# An amount said to be before tax ("2,000円 (税抜)", "€10 excl. VAT") is not what one pays.
EXCL_TAX = re.compile(
    r"\d[\d.,\u00a0 ]*\s*\D{0,3}\s*[(\uff08]?\s*(?:税抜|税別|excl\.?|ex\.? vat|exkl\.?|hors taxe|"
    r"\bHT\b|zzgl\.? MwSt|netto|sans tva)[^)\uff09]{0,12}[)\uff09]?",
    re.I,
)
