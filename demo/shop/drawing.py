"""Pictures for the demo shop, drawn with Pillow so they roughly show what the title says.

A "striped salmon pillow" is a salmon rounded cushion with stripes; a "stainless steel dinner
fork" is a grey fork. Shapes are masks, patterns are drawn over the colour and clipped to them,
so a visual search over the demo catalogue finds colour, pattern and shape for real.
Also builds the deliberately bad files (decompression bomb, truncated JPEG).
"""

from __future__ import annotations

import dataclasses
import io
import random
import struct
import zlib
from collections.abc import Callable

from PIL import Image, ImageDraw

from demo.shop.catalog import DemoImage, DemoProduct

SIDE = 1024


def _shade(rgb: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    return tuple(max(0, min(255, int(c * factor))) for c in rgb)  # type: ignore[return-value]


def _mask(shape: str) -> Image.Image:
    m = Image.new("L", (SIDE, SIDE), 0)
    d = ImageDraw.Draw(m)
    draw = SHAPES.get(shape, SHAPES["pillow"])
    draw(d)
    return m


def _pillow(d: ImageDraw.ImageDraw) -> None:
    d.rounded_rectangle((170, 250, 854, 774), radius=140, fill=255)


def _blanket(d: ImageDraw.ImageDraw) -> None:
    for i in range(4):  # a folded stack
        d.rounded_rectangle((190, 300 + i * 110, 834, 400 + i * 110), radius=30, fill=255)


def _towel(d: ImageDraw.ImageDraw) -> None:
    d.rectangle((300, 180, 724, 844), fill=255)


def _rug(d: ImageDraw.ImageDraw) -> None:
    d.rectangle((200, 150, 824, 874), fill=255)
    for x in range(200, 830, 24):  # fringe
        d.line((x, 110, x, 150), fill=255, width=6)
        d.line((x, 874, x, 914), fill=255, width=6)


def _curtain(d: ImageDraw.ImageDraw) -> None:
    for x in range(220, 800, 90):
        d.rectangle((x, 120, x + 70, 900), fill=255)
    d.rectangle((200, 100, 824, 130), fill=255)


def _fork(d: ImageDraw.ImageDraw) -> None:
    d.rounded_rectangle((486, 420, 538, 900), radius=24, fill=255)
    d.rounded_rectangle((430, 300, 594, 450), radius=30, fill=255)
    for x in (430, 472, 514, 556):
        d.rectangle((x, 110, x + 38, 320), fill=255)


def _spoon(d: ImageDraw.ImageDraw) -> None:
    d.ellipse((402, 110, 622, 400), fill=255)
    d.rounded_rectangle((486, 380, 538, 900), radius=24, fill=255)


def _knife(d: ImageDraw.ImageDraw) -> None:
    d.polygon([(480, 110), (560, 160), (560, 560), (480, 560)], fill=255)
    d.rounded_rectangle((470, 540, 560, 910), radius=30, fill=255)


def _mug(d: ImageDraw.ImageDraw) -> None:
    d.rounded_rectangle((260, 300, 680, 820), radius=40, fill=255)
    d.ellipse((620, 420, 820, 680), fill=255)
    d.ellipse((680, 480, 760, 620), fill=0)


def _plate(d: ImageDraw.ImageDraw) -> None:
    d.ellipse((140, 140, 884, 884), fill=255)


def _bowl(d: ImageDraw.ImageDraw) -> None:
    d.chord((170, 200, 854, 860), 0, 180, fill=255)
    d.rectangle((380, 760, 644, 820), fill=255)


def _teapot(d: ImageDraw.ImageDraw) -> None:
    d.ellipse((260, 330, 760, 800), fill=255)
    d.polygon([(720, 560), (900, 380), (920, 400), (760, 640)], fill=255)
    d.ellipse((450, 250, 570, 350), fill=255)


def _vase(d: ImageDraw.ImageDraw) -> None:
    d.polygon(
        [
            (430, 150),
            (594, 150),
            (560, 300),
            (720, 600),
            (620, 880),
            (404, 880),
            (304, 600),
            (464, 300),
        ],
        fill=255,
    )


def _lamp(d: ImageDraw.ImageDraw) -> None:
    d.polygon([(360, 150), (664, 150), (780, 450), (244, 450)], fill=255)
    d.rectangle((492, 450, 532, 800), fill=255)
    d.ellipse((362, 780, 662, 880), fill=255)


def _clock(d: ImageDraw.ImageDraw) -> None:
    d.ellipse((170, 170, 854, 854), fill=255)
    d.line((512, 512, 512, 260), fill=0, width=22)
    d.line((512, 512, 690, 560), fill=0, width=16)


def _candle(d: ImageDraw.ImageDraw) -> None:
    d.rounded_rectangle((360, 380, 664, 880), radius=30, fill=255)
    d.ellipse((470, 200, 554, 340), fill=255)


SHAPES: dict[str, Callable[[ImageDraw.ImageDraw], None]] = {
    "pillow": _pillow,
    "blanket": _blanket,
    "towel": _towel,
    "rug": _rug,
    "curtain": _curtain,
    "fork": _fork,
    "spoon": _spoon,
    "knife": _knife,
    "mug": _mug,
    "plate": _plate,
    "bowl": _bowl,
    "teapot": _teapot,
    "vase": _vase,
    "lamp": _lamp,
    "clock": _clock,
    "candle": _candle,
}


def _pattern_layer(product: DemoProduct, scale: int) -> Image.Image:
    base = Image.new("RGB", (SIDE, SIDE), product.rgb)
    d = ImageDraw.Draw(base)
    ink = (250, 250, 245) if sum(product.rgb) < 360 else _shade(product.rgb, 0.55)
    step = 90 // scale * scale or 90
    if product.pattern == "striped":
        for y in range(0, SIDE, step):
            d.rectangle((0, y, SIDE, y + step // 3), fill=ink)
    elif product.pattern == "dotted":
        for y in range(20, SIDE, step):
            for x in range(20 + (y // step % 2) * step // 2, SIDE, step):
                d.ellipse((x, y, x + step // 3, y + step // 3), fill=ink)
    elif product.pattern == "checked":
        for y in range(0, SIDE, step):
            for x in range(0, SIDE, step):
                if (x // step + y // step) % 2:
                    d.rectangle((x, y, x + step, y + step), fill=ink)
    elif product.pattern == "zigzag":
        for y in range(0, SIDE + step, step):
            pts = [
                (x, y + (step // 3 if (x // (step // 2)) % 2 else 0))
                for x in range(0, SIDE + step, step // 2)
            ]
            d.line(pts, fill=ink, width=max(6, step // 6))
    if product.shape in ("fork", "spoon", "knife", "plate", "bowl", "vase", "teapot"):
        # A highlight so metal and glazes read as shiny rather than flat paper.
        d.ellipse((300, 200, 460, 520), fill=_shade(product.rgb, 1.25))
    return base


def draw_product_image(product: DemoProduct, image: DemoImage) -> Image.Image:
    if image.rgb is not None:  # a colour variant's picture: the same object in its colour
        product = dataclasses.replace(product, rgb=image.rgb)
    rng = random.Random(f"{product.id}:{image.name}")
    background = (246, 244, 240) if image.kind != "scene" else (214, 205, 190)
    canvas = Image.new("RGB", (SIDE, SIDE), background)
    scale = 2 if image.kind == "detail" else 1
    layer = _pattern_layer(product, scale)
    mask = _mask(product.shape)
    if image.kind == "detail":  # a close-up: crop the middle of the object
        box = (256, 256, 768, 768)
        layer = layer.crop(box).resize((SIDE, SIDE))
        mask = mask.crop(box).resize((SIDE, SIDE))
    canvas.paste(
        _shade(product.rgb, 0.8),
        mask=mask.point(lambda v: v // 3).transform(
            mask.size, Image.Transform.AFFINE, (1, 0, -14, 0, 1, -14)
        ),
    )
    canvas.paste(layer, mask=mask)
    if image.kind == "scene":
        canvas = canvas.rotate(rng.uniform(-12, 12), fillcolor=background)
        ImageDraw.Draw(canvas).rectangle((0, 880, SIDE, SIDE), fill=(150, 120, 90))
    return canvas


def draw_size_chart() -> Image.Image:
    img = Image.new("RGB", (900, 600), (255, 255, 255))
    d = ImageDraw.Draw(img)
    d.rectangle((0, 0, 900, 90), fill=(40, 40, 40))
    d.text((30, 30), "SIZE GUIDE", fill=(255, 255, 255), font_size=36)
    rows = [
        ("Size", "Width", "Length"),
        ("S", "40 cm", "40 cm"),
        ("M", "50 cm", "50 cm"),
        ("L", "60 cm", "60 cm"),
        ("XL", "130 cm", "170 cm"),
    ]
    for r, row in enumerate(rows):
        y = 120 + r * 90
        d.line((30, y + 80, 870, y + 80), fill=(200, 200, 200), width=2)
        for c, cell in enumerate(row):
            d.text((60 + c * 280, y + 20), cell, fill=(20, 20, 20), font_size=30)
    return img


def encode(img: Image.Image, fmt: str, width: int | None = None) -> bytes:
    if width and width < img.width:
        img = img.resize((width, round(img.height * width / img.width)), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    pil_format = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF"}[fmt]
    options = {"quality": 85} if pil_format in ("JPEG", "WEBP") else {}
    img.save(out, format=pil_format, **options)
    return out.getvalue()


def png_bomb(width: int = 20_000, height: int = 20_000) -> bytes:
    """A valid 1-bit PNG that declares `width`x`height` pixels but weighs a few tens of KB."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    row = b"\x00" * (1 + (width + 7) // 8)
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
