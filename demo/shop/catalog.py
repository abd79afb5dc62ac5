"""The demo shop's products: a deterministic, home-goods-looking catalogue.

Product `i` of seed `s` is drawn from its own `random.Random(f"{s}:{i}")`, so adding products
never changes the ones already there and two shops with the same seed are identical.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

# The catalogue's clock starts here; updates move a product's updated_at to "now".
EPOCH = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

COLOURS = {
    "salmon": (250, 128, 114),
    "navy": (31, 45, 94),
    "mustard": (222, 170, 40),
    "olive": (110, 120, 45),
    "charcoal": (54, 58, 64),
    "ivory": (245, 240, 222),
    "teal": (0, 128, 128),
    "terracotta": (204, 98, 65),
    "sage": (156, 175, 136),
    "blush": (232, 180, 184),
    "cobalt": (0, 71, 171),
    "forest green": (34, 100, 50),
}
METALS = {
    "Stainless steel": (192, 196, 202),
    "Brushed gold": (201, 164, 82),
    "Matte black": (35, 35, 38),
    "Copper": (184, 115, 51),
}
PATTERNS = ["plain", "striped", "dotted", "checked", "zigzag"]
TEXTURES = ["Fluffy", "Soft", "Chunky", "Washed", "Cosy", "Velvet"]
BRANDS = ["Nordhus", "Casa Lumo", "Willow & Pine", "Kobalt Kitchen", "Maison Verre", "Fjell Living"]


@dataclass(frozen=True)
class Kind:
    noun: str
    category: str
    shape: str
    family: str  # textile | metal | ceramic | object
    price: tuple[int, int]
    tags: tuple[str, ...] = ()


KINDS = [
    Kind(
        "pillow", "Home textiles > Cushions", "pillow", "textile", (19, 59), ("cushion", "bedroom")
    ),
    Kind("throw blanket", "Home textiles > Blankets", "blanket", "textile", (39, 149), ("throw",)),
    Kind("bath towel", "Bath > Towels", "towel", "textile", (12, 39), ("bathroom", "cotton")),
    Kind("area rug", "Home textiles > Rugs", "rug", "textile", (89, 399), ("floor",)),
    Kind("curtain panel", "Home textiles > Curtains", "curtain", "textile", (29, 99), ("window",)),
    Kind("dinner fork", "Kitchen > Cutlery", "fork", "metal", (4, 19), ("cutlery", "flatware")),
    Kind("soup spoon", "Kitchen > Cutlery", "spoon", "metal", (4, 17), ("cutlery", "flatware")),
    Kind("steak knife", "Kitchen > Cutlery", "knife", "metal", (6, 29), ("cutlery", "flatware")),
    Kind("coffee mug", "Tableware > Mugs", "mug", "ceramic", (9, 29), ("coffee", "tableware")),
    Kind("dinner plate", "Tableware > Plates", "plate", "ceramic", (8, 35), ("tableware",)),
    Kind("salad bowl", "Tableware > Bowls", "bowl", "ceramic", (14, 49), ("tableware",)),
    Kind("teapot", "Kitchen > Tea", "teapot", "ceramic", (29, 89), ("tea",)),
    Kind("flower vase", "Decor > Vases", "vase", "object", (19, 79), ("decor", "flowers")),
    Kind("table lamp", "Lighting > Lamps", "lamp", "object", (49, 189), ("lighting",)),
    Kind("wall clock", "Decor > Clocks", "clock", "object", (25, 95), ("decor",)),
    Kind("scented candle", "Decor > Candles", "candle", "object", (12, 39), ("decor", "candle")),
]
MATERIALS = {
    "textile": ["cotton", "linen", "wool", "velvet"],
    "ceramic": ["stoneware", "porcelain", "earthenware"],
    "object": ["glass", "ceramic", "oak", "brass"],
}


@dataclass
class DemoImage:
    """One image a product lists. `kind` is main | detail | scene | size_chart | variant; a
    variant's picture shows the object in the variant's colour (`rgb`)."""

    name: str
    kind: str
    fmt: str = "jpg"
    rgb: tuple[int, int, int] | None = None


@dataclass
class DemoVariant:
    """One purchasable variant: a colour and/or a size, with its own price, stock and GTIN."""

    id: int
    options: dict[str, str]
    sku: str
    gtin: str
    price: Decimal
    list_price: Decimal | None  # the regular price while on sale, else None
    available: bool
    image: DemoImage | None = None

    @property
    def title(self) -> str:
        return " / ".join(self.options.values()) or "Default Title"


@dataclass
class DemoProduct:
    id: int
    handle: str
    title: str
    description_html: str
    brand: str
    category: str
    tags: list[str]
    price: Decimal
    currency: str
    availability: str  # in_stock | out_of_stock | preorder
    colour: str
    rgb: tuple[int, int, int]
    pattern: str
    shape: str
    images: list[DemoImage]
    created_at: datetime
    updated_at: datetime
    variants: list[DemoVariant] = field(default_factory=list)
    sku: str = ""
    gtin: str = ""
    mpn: str = ""
    list_price: Decimal | None = None  # the regular price while on sale (price is the sale one)
    # Misbehaviour flags for this product's page (see DemoShop.break_product).
    quirks: set[str] = field(default_factory=set)

    @property
    def description_text(self) -> str:
        return re.sub(r"<[^>]+>", " ", self.description_html).replace("&amp;", "&").strip()


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def make_product(seed: int, index: int, currency: str, image_fmt: str = "jpg") -> DemoProduct:
    """Product `index` of a shop seeded `seed`: the same product for the same seed, every run.

    Long: every random draw happens in one fixed order (the sequence *is* the catalogue), so
    splitting it would spread that order over several functions.
    """
    rng = random.Random(f"{seed}:{index}")
    kind = rng.choice(KINDS)
    pattern = "plain"
    if kind.family == "metal":
        colour, rgb = rng.choice(list(METALS.items()))
        material = colour.lower()
        title = f"{colour} {kind.noun}"
        colour = colour.lower()
    else:
        colour = rng.choice(list(COLOURS))
        rgb = COLOURS[colour]
        material = rng.choice(MATERIALS[kind.family])
        if kind.family == "textile":
            pattern = rng.choice(PATTERNS)
            words = [rng.choice(TEXTURES), "" if pattern == "plain" else pattern, colour, kind.noun]
        elif kind.family == "ceramic":
            pattern = rng.choice(["plain", "plain", "dotted", "striped"])
            words = ["" if pattern == "plain" else pattern, colour, material, kind.noun]
        else:
            words = [colour, material, kind.noun]
        title = " ".join(w for w in words if w).capitalize()
    low, high = kind.price
    price = Decimal(rng.randrange(low * 100, high * 100, 50)) / 100 + Decimal("0.00")
    price = price.quantize(Decimal("0.01"))
    if rng.random() < 0.5:  # shops love .99 and .95 prices
        price = Decimal(int(price)) + Decimal(rng.choice(["0.99", "0.95", "0.00"]))
    availability = rng.choices(["in_stock", "out_of_stock", "preorder"], weights=[75, 18, 7])[0]
    images = [DemoImage(f"p{index}-main", "main", image_fmt)]
    if rng.random() < 0.55:
        images.append(DemoImage(f"p{index}-detail", "detail", image_fmt))
    if rng.random() < 0.3:
        images.append(DemoImage(f"p{index}-scene", "scene", image_fmt))
    if kind.family == "textile" and rng.random() < 0.8:
        # The same size-chart picture, uploaded again for each product as shops do.
        images.append(DemoImage(f"size-guide-{index}", "size_chart", "png"))
    description = (
        f"<p>A {title.lower()} from {rng.choice(BRANDS)}'s home collection, made of "
        f"{material}.</p><ul><li>Colour: {colour}</li><li>Pattern: {pattern}</li>"
        f"<li>Care: {'machine wash 30 &deg;C' if kind.family == 'textile' else 'wipe clean'}"
        f"</li></ul><p>Ships in 2&ndash;4 days &amp; free returns.</p>"
    )
    created = EPOCH + timedelta(hours=index * 7)
    product = DemoProduct(
        id=1000 + index * 17,
        handle=slugify(title) + f"-{index}",
        title=title,
        description_html=description,
        brand=rng.choice(BRANDS),
        category=kind.category,
        tags=sorted({*kind.tags, kind.family, colour.split()[-1]}),
        price=price,
        currency=currency,
        availability=availability,
        colour=colour,
        rgb=rgb,
        pattern=pattern,
        shape=kind.shape,
        images=images,
        created_at=created,
        updated_at=created + timedelta(days=3),
    )
    sizes = ["Small", "Large"] if rng.random() < 0.3 else []
    _add_identifiers_and_variants(product, rng, kind, sizes, image_fmt)
    return product


def gtin_check_digit(body: str) -> str:
    """The GS1 check digit of a GTIN without its last digit."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return str(-total % 10)


def _ean13(body12: str) -> str:
    return body12 + gtin_check_digit(body12)


def _add_identifiers_and_variants(
    product: DemoProduct, rng: random.Random, kind: Kind, sizes: list[str], fmt: str
) -> None:
    """SKU/GTIN/MPN, a sale for some products, and variants: colours (each with its own
    picture) and sizes (the large one dearer). The first variant is the cheapest and, when the
    product is in stock, available; so the product's price is its lowest variant price."""
    colours = [(product.colour, product.rgb)]
    if kind.family in ("textile", "ceramic") and rng.random() < 0.5:
        others = [c for c in COLOURS if c != product.colour]
        colours += [(c, COLOURS[c]) for c in rng.sample(others, rng.choice([1, 2]))]
    if rng.random() < 0.3:
        product.list_price = (product.price * Decimal("1.25")).quantize(Decimal("0.01"))
    gtin_body = f"40{rng.randrange(10**9):09d}"  # GS1 Germany prefix; 11 digits + variant digit
    product.sku = f"SKU-{product.id}"
    product.mpn = f"{kind.shape[:3].upper()}-{rng.randrange(1000, 10000)}"
    step = max(Decimal("1"), (product.price / 5).quantize(Decimal("1")))
    for c, (colour, rgb) in enumerate(colours):
        image = product.images[0]
        if c:
            image = DemoImage(f"{product.images[0].name}-{slugify(colour)}", "variant", fmt, rgb)
            product.images.insert(c, image)
        for s, size in enumerate(sizes or [""]):
            v = len(product.variants)
            options = {"Colour": colour.title()} if len(colours) > 1 else {}
            if size:
                options["Size"] = size
            extra = step * s
            product.variants.append(
                DemoVariant(
                    id=product.id * 10 + v,
                    options=options,
                    sku=f"SKU-{product.id}-{v}",
                    gtin=_ean13(gtin_body + str(v)),
                    price=product.price + extra,
                    list_price=None if product.list_price is None else product.list_price + extra,
                    available=product.availability == "in_stock"
                    and (v == 0 or (product.id + v) % 3 != 0),
                    image=image,
                )
            )
    product.gtin = product.variants[0].gtin
