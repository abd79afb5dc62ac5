"""Words shoppers read on product pages, in the languages of the stores Meepo crawls.

Out-of-stock phrases are checked before in-stock ones ("not available" contains "available"),
whole words only. WAS_PRICE removes "was €79" style cues so the old amount is not read as the
price.
"""

from __future__ import annotations

import re

# Strong phrases only ever describe stock; they count anywhere in the product area.
_OUT = (
    "out of stock|sold out|currently unavailable|temporarily unavailable|no longer available|"
    "not in stock|notify me when (?:it'?s )?(?:back in stock|available)|ausverkauft|"
    "nicht vorrätig|nicht auf lager|derzeit nicht verfügbar|nicht lieferbar|vergriffen|agotado|"
    "sin stock|sin existencias|fuera de stock|épuisé|en rupture de stock|rupture de stock|"
    "esaurito|niet op voorraad|uitverkocht|esgotado|sem estoque|fora de estoque|"
    "brak w magazynie|wyprzedany|slutsåld|slutsålt|slut i lager|ej i lager|tillfälligt slut|"
    "udsolgt|ikke på lager|utsolgt|loppuunmyyty|ei varastossa|nincs készleten|vyprodáno|"
    "není skladem|stokta yok|tükendi|"
    "\u043d\u0435\u0442 \u0432 \u043d\u0430\u043b\u0438\u0447\u0438\u0438|"  # nyet v nalichii
    "在庫切れ|在庫なし|売り切れ|품절|재고 없음|일시품절|缺货|售罄|已售完|hết hàng|"
    "نفذت الكمية|نفذ من المخزون|אזל מהמלאי|缺貨|售完|暫無庫存|εξαντλήθηκε|stoc epuizat|"
    "nu este în stoc|stok habis|สินค้าหมด|tạm hết hàng|chwilowo niedostępny|produkt niedostępny|"
    "fuori produzione|non più disponibile|nicht mehr erhältlich|no longer in production|"
    "\u043d\u0435\u043c\u0430\u0454 \u0432 \u043d\u0430\u044f\u0432\u043d\u043e\u0441\u0442\u0456"  # nemaye v nayavnosti (uk)
)
_IN = (
    "in stock|auf lager|sofort lieferbar|vorrätig|en stock|en existencia|in magazzino|"
    "op voorraad|em estoque|w magazynie|i lager|på lager|varastossa|skladem|készleten|stokta|"
    "\u0432 \u043d\u0430\u043b\u0438\u0447\u0438\u0438|"  # v nalichii
    "\u0432 \u043d\u0430\u044f\u0432\u043d\u043e\u0441\u0442\u0456|"  # v nayavnosti (uk)
    "在庫あり|재고 있음|有货|còn hàng|במלאי|現貨供應|有現貨|în stoc|stok tersedia|มีสินค้า"
)
# Weak phrases ("not available", "disponibile") also describe other things ("gift wrapping not
# available"): they count only as the start of a short stock line ("Availability: …").
_OUT_WEAK = (
    "not available|unavailable|nicht verfügbar|no disponible|indisponible|non disponibile|"
    "non disponible|niet leverbaar|niet beschikbaar|indisponível|niedostępny|غير متوفر|"
    "μη διαθέσιμο|indisponibil|habis"
)
_IN_WEAK = (
    "available|available now|disponible|disponibile|disponível|dostępny|متوفر|現貨|"
    "άμεσα διαθέσιμο|διαθέσιμο|tersedia|verfügbar|lieferbar|beschikbaar"
)
_PREORDER = (
    "pre-?order(?:s|ed)?|pre order|vorbestellen|vorbestellbar|vorbestellung|précommander|"
    "précommande|en précommande|preventa|pre-venta|preordina|prenotabile|voorbestellen|"
    "pré-venda|pré-encomenda|przedsprzedaż|förbeställ|forudbestil|forhåndsbestill|"
    "予約受付中|予約販売|예약판매|预售|預購|\u043f\u0440\u0435\u0434\u0437\u0430\u043a\u0430\u0437"
)
PREORDER = re.compile(rf"(?<!\w)(?:{_PREORDER})(?!\w)", re.I)
OUT_OF_STOCK = re.compile(rf"(?<!\w)(?:{_OUT})(?!\w)", re.I)
IN_STOCK = re.compile(rf"(?<!\w)(?<!back )(?:{_IN})(?!\w)", re.I)
_LINE = r"^\s*(?:[^\W\d][\w ]{{0,20}}:\s*)?(?:{})[\s.!]*$"
OUT_OF_STOCK_LINE = re.compile(_LINE.format(_OUT_WEAK), re.I)
IN_STOCK_LINE = re.compile(_LINE.format(_IN_WEAK), re.I)
ADD_TO_CART = re.compile(
    r"add to (?:cart|bag|basket)|buy now|in den warenkorb|jetzt kaufen|ajouter au panier|"
    r"añadir al carrito|agregar al carrito|aggiungi al carrello|in winkelwagen|"
    r"adicionar ao carrinho|dodaj do koszyka|lägg i varukorgen?|læg i kurv|legg i handlekurv|"
    r"kosárba|do košíku|sepete ekle|в корзину|カートに入れる|장바구니|加入购物车|أضف إلى السلة|"
    r"加入購物車|adaugă în coș|προσθήκη στο καλάθι|tambah(?:kan)? ke keranjang|"
    r"masukkan ke keranjang|เพิ่มลงตะกร้า|thêm vào giỏ|"
    r"add-to-cart|addtocart|tocart|buy-now|buynow",
    re.I,
)
WAS_PRICE = re.compile(
    r"(?:\bwas|\bstatt|\bvorher|\bavant|\bantes|\bprima|\binvece di|\bvoorheen|\btidigare|"
    r"\bførpris|\bfør|\bord\.? ?pris|\bordinarie(?: pris)?|\bnormalpris|\bde:|"
    r"regular price|normal price|normalpreis|prix normal|precio normal|normale prijs|"
    r"eski fiyat|önceki fiyat|régi ár|stara cena|compare at|list price|\brrp|\buvp)"
    r"\s*:?\s*\D{0,5}\d[\d.,\u00a0 ]*",
    re.I,
)
# An amount said to be before tax ("2,000円 (税抜)", "€10 excl. VAT") is not what one pays.
_EXCL = (
    r"税抜|税別|excl\.?|ex\.? vat|exkl\.?|hors taxe|\bHT\b|zzgl\.? MwSt|netto|sans tva|bez dph|"
    r"bez vat|ohne mwst|sin iva|senza iva"
)
# A label element saying the amount beside it is before tax ("(税抜)", "zzgl. MwSt.").
EXCL_TAX_LABEL = re.compile(rf"^\W*(?:{_EXCL})\W*$", re.I)
EXCL_TAX = re.compile(
    rf"\d[\d.,\u00a0 ]*\s*\D{{0,3}}\s*[(\uff08]?\s*(?:{_EXCL})[^)\uff09\d]{{0,12}}[)\uff09]?|"
    r"(?:bez dph|bez vat|sin iva|senza iva|ohne mwst|excl\.? (?:vat|tax|btw)|ex\.? vat|hors taxe|"
    r"\bnetto|\bnet price|税抜価格|税抜)\s*:?\s*\D{0,5}\d[\d.,\u00a0 ]*",
    re.I,
)
# An amount said to include tax ("税込 13,200円", "14,88 € inkl. MwSt.", "£24.99 inc. VAT").
_INCL = (
    r"税込|tax incl(?:uded|\.)?|incl(?:uding|\.)? (?:vat|tax|gst|btw)|inc\.? (?:vat|gst)|"
    r"inkl\.? (?:\d+\s?% )?mwst\.?|ttc|s dph|con iva|iva incl[uú]ída|iva incluido|iva inclusa|"
    r"incl\.? btw|inkl\.? moms|z vat|kdv dahil"
)
_AMOUNT = r"(\D{0,4}\d[\d.,\u00a0\u202f ]*\d\s*\D{0,4}?)"
INCL_TAX = re.compile(
    rf"(?:{_INCL})\s*:?\s*{_AMOUNT}(?=[\s)\uff09]|$)|"
    rf"{_AMOUNT}\s*[(\uff08]?\s*(?:{_INCL})(?!\w)(?!\s*:?\s*\D{{0,4}}\d)",  # not "(税込 13,200円)"
    re.I,
)
# Instalment offers ("ou 3x de R$ 73,30", "or 4 payments of $10") are not the price.
INSTALMENTS = re.compile(
    r"\b\d{1,2}\s*[x\u00d7]\s*(?:de\s*)?\D{0,4}\d[\d.,]*|"
    r"\b\d{1,2}\s+(?:interest-free\s+)?(?:payments|instalments|installments|raten|rate|cuotas)"
    r"\s+(?:of|de|di|von|à)\s*\D{0,4}\d[\d.,]*",
    re.I,
)
# Amounts that are not the price: conversions ("≈ $27"), savings ("Save £5"), unit prices
# ("€12.50 / kg", "(22,60 € / 1 Liter)").
NOT_THE_PRICE = re.compile(
    r"(?:\u2248|~|\bapprox\.?|\bca\.|\bcirca|\benviron)\s*\D{0,5}\d[\d.,\u00a0 ]*|"
    r"\b(?:you save|save|sparen sie|sie sparen|économisez|ahorra|ahorras|risparmi|bespaar|spar)"
    r"\s*:?\s*\D{0,5}\d[\d.,\u00a0 ]*%?|"
    r"\d[\d.,\u00a0 ]*\s*\D{0,4}\s*(?:/|\bper\b|\bpro\b|\bje\b)\s*(?:\d+\s*)?"
    r"(?:kg|g|l|ml|cl|m|m2|m²|lb|oz|liter|litre)\b",
    re.I,
)
# Prices for members of a club or loyalty scheme only ("Klubbpris 399 kr", "Member price $45"):
# not what everyone pays.
MEMBER_PRICE = re.compile(
    r"(?:\bmember(?:s|ship)?(?:'s)? price|\bclub(?:card)? price|\bloyalty price|klubbpris|"
    r"medlemspris|medlemspris|kundeklubbpris|mitgliederpreis|mitgliedspreis|clubpreis|"
    r"prix (?:membre|adh[ée]rent|fid[ée]lit[ée])|precio (?:socio|miembro|club)|prezzo (?:soci|socio)|"
    r"ledenprijs|j[äa]senhinta|cena klubowa|cena dla klubowicz[óo]w|会員価格|회원가|会员价)"
    r"\s*:?\s*\D{0,5}\d[\d.,\u00a0 ]*(?:\s*\D{0,4}(?=\s|$))?",
    re.I,
)
# "Price on request": a product page that shows no price on purpose.
PRICE_ON_REQUEST = re.compile(
    r"price (?:up)?on request|call for (?:a )?price|preis auf anfrage|auf anfrage|"
    r"prix sur demande|precio a consultar|precio bajo pedido|prezzo su richiesta|"
    r"prijs op aanvraag|pris på förfrågan|pris på forespørgsel|cena na zapytanie|"
    r"preço sob consulta|価格はお問い合わせ|가격 ?문의|询价",
    re.I,
)
