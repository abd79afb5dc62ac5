"""Safe image decoding and the two small renditions Meepo stores: a thumbnail and a placeholder.

Every image Meepo decodes comes from a stranger (a store's CDN or a shopper's upload), so
`open_image` only hands Pillow the four raster formats we need (no EPS/TIFF/SVG parsers) and, from
the header alone, before a single pixel is decoded, refuses:

- more pixels than the caller's cap (decompression bombs: MEEPO_MAX_IMAGE_PIXELS for scraped
  pictures, the lower MEEPO_MAX_UPLOAD_PIXELS for shoppers' photos);
- a shape more elongated than MEEPO_MAX_IMAGE_ASPECT (e.g. 20:1). Such a picture is *rejected*,
  not padded: CLIP scales the shorter side to 224 pixels, so a 4000x1 strip would become a
  896,000x224 image (gigabytes); padding it would hand CLIP a mostly blank square and return a
  meaningless vector, where a clear "unsupported image" tells the shopper (or the scrape report)
  what happened.

With `reduce_to`, big pictures are decoded at reduced size: JPEG in the decoder itself
(`Image.draft`, DCT scaling by 1/2, 1/4 or 1/8), other formats by an integer `reduce()` right after
decoding and before any colour conversion, so a 40-megapixel picture never becomes a 120 MB RGB
copy. It also refuses truncated files, and returns a fully loaded RGB image with EXIF orientation
applied; `img.info["source_size"]` keeps the (oriented) size of the picture as published. Pure
functions, no database access.
"""

from __future__ import annotations

import base64
import io
import math
import warnings

from django.conf import settings
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from search.exceptions import UnsupportedImage

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
THUMBNAIL_SIZE = (512, 512)
PLACEHOLDER_MAX_BYTES = 500
_PLACEHOLDER_SIDES = (16, 12, 8, 6, 4)
# EXIF orientations that swap width and height (transpose, rotate 90/270, transverse).
_SWAPPING_ORIENTATIONS = {5, 6, 7, 8}
# reduce() takes these modes; the others are widened first (on the already reduced JPEG or on
# a bilevel/palette picture, whose widening is the cheap part).
_REDUCIBLE_MODES = {"L", "LA", "RGB", "RGBA", "RGBa", "La", "I", "F", "CMYK", "YCbCr"}

# Keep Pillow strict: a truncated download must fail loudly, not become half a grey picture.
ImageFile.LOAD_TRUNCATED_IMAGES = False


def check_shape(width: int, height: int, *, max_pixels: int, max_aspect: float) -> None:
    """Raise UnsupportedImage for a size no product photo has (the bounds above)."""
    if width <= 0 or height <= 0:
        raise UnsupportedImage(f"image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise UnsupportedImage(
            f"image is {width}x{height} = {width * height} pixels, over the "
            f"{max_pixels} pixel limit (possible decompression bomb)"
        )
    ratio = max(width, height) / min(width, height)
    if ratio > max_aspect:
        raise UnsupportedImage(
            f"image is {width}x{height}, more elongated than {max_aspect:g}:1 (not a product photo)"
        )


def open_image(
    data: bytes, *, max_pixels: int | None = None, reduce_to: int | None = None
) -> Image.Image:
    """Decode `data` into a loaded RGB image, or raise UnsupportedImage saying why.

    `max_pixels` defaults to settings.MEEPO_MAX_IMAGE_PIXELS and the aspect bound is
    settings.MEEPO_MAX_IMAGE_ASPECT; both are checked on the header's size, before decoding.
    `reduce_to`: shrink by an integer factor while the shorter side stays at least this long.
    """
    limit = max_pixels if max_pixels is not None else settings.MEEPO_MAX_IMAGE_PIXELS
    if not data:
        raise UnsupportedImage("empty image data")
    try:
        with warnings.catch_warnings():
            # Pillow's own guard only warns below 2x its limit; treat the warning as the error it is.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=list(ALLOWED_FORMATS))
            width, height = img.size
            check_shape(width, height, max_pixels=limit, max_aspect=settings.MEEPO_MAX_IMAGE_ASPECT)
            img.seek(0)  # animated GIF/WebP: the first frame stands for the image
            if reduce_to:
                _draft(img, reduce_to)
            img.load()
            orientation = _orientation(img)  # after load: a PNG's eXIf chunk may follow the pixels
            if reduce_to:
                img = _reduce(img, reduce_to)
    except UnsupportedImage:
        raise
    except UnidentifiedImageError as exc:
        raise UnsupportedImage(
            f"not a supported image (allowed: {', '.join(ALLOWED_FORMATS)})"
        ) from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UnsupportedImage(f"image refused as a decompression bomb: {exc}") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # Pillow reports truncated or corrupt data as OSError ("image file is truncated") or
        # SyntaxError (broken PNG chunks); both mean the bytes are not a usable picture.
        raise UnsupportedImage(f"corrupt or truncated image: {exc}") from exc
    source_format = img.format or ""
    img = _to_rgb(_apply_orientation(img))
    img.format = source_format  # keep the original format for ImageAsset.format
    swapped = orientation in _SWAPPING_ORIENTATIONS
    img.info["source_size"] = (height, width) if swapped else (width, height)
    return img


def _orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(0x0112) or 1)
    except (OSError, ValueError, SyntaxError, KeyError, TypeError):
        return 1


def _factor(size: tuple[int, int], reduce_to: int) -> int:
    return max(1, min(size) // max(1, reduce_to))


def _draft(img: Image.Image, reduce_to: int) -> None:
    """JPEG only: let the decoder scale by 1/2..1/8 (it keeps the result >= the asked size)."""
    if img.format != "JPEG" or _factor(img.size, reduce_to) < 2:
        return
    scale = min(img.size) / reduce_to
    img.draft(None, (math.ceil(img.width / scale), math.ceil(img.height / scale)))


def _reduce(img: Image.Image, reduce_to: int) -> Image.Image:
    factor = _factor(img.size, reduce_to)
    if factor < 2:
        return img
    if img.mode not in _REDUCIBLE_MODES:
        img = img.convert(_widened_mode(img))
    reduced = img.reduce(factor)
    reduced.info = dict(img.info)
    reduced.format = img.format
    return reduced


def _widened_mode(img: Image.Image) -> str:
    if img.mode == "1":
        return "L"
    if img.mode.startswith("I;16"):
        return "I"
    if img.mode == "PA" or "transparency" in img.info:
        return "RGBA"
    return "RGB"


def _apply_orientation(img: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(img) or img
    except (OSError, ValueError, SyntaxError, KeyError, TypeError):
        # A broken EXIF block must not cost us an otherwise fine picture.
        return img


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        # Transparent product cut-outs sit on white in every shop; black would change their look.
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")


def make_thumbnail(img: Image.Image) -> bytes:
    """A JPEG that fits in 512x512, aspect kept, never upscaled, with no metadata at all.

    Pillow writes a source JPEG's comment (and would write EXIF/ICC/XMP handed to it) into the
    copy; those are a stranger's bytes served from our origin, so nothing but pixels is kept.
    """
    thumb = img.convert("RGB") if img.mode != "RGB" else img.copy()
    thumb.thumbnail(THUMBNAIL_SIZE, Image.Resampling.LANCZOS)
    _strip_metadata(thumb)
    out = io.BytesIO()
    thumb.save(out, format="JPEG", quality=82, optimize=True, progressive=True)
    return out.getvalue()


def make_placeholder(img: Image.Image) -> str:
    """A tiny blurred stand-in as a `data:` URI of at most 500 bytes, shown before the thumbnail."""
    rgb = img.convert("RGB") if img.mode != "RGB" else img
    for side in _PLACEHOLDER_SIDES:
        small = rgb.copy()
        small.thumbnail((side, side), Image.Resampling.BOX)
        _strip_metadata(small)
        for quality in (40, 20):
            out = io.BytesIO()
            small.save(out, format="WEBP", quality=quality, method=6)
            uri = "data:image/webp;base64," + base64.b64encode(out.getvalue()).decode("ascii")
            if len(uri) <= PLACEHOLDER_MAX_BYTES:
                return uri
    # A 1x1 average colour always fits; only reached for pathological inputs.
    out = io.BytesIO()
    dot = rgb.resize((1, 1), Image.Resampling.BOX)
    _strip_metadata(dot)
    dot.save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def make_preview(img: Image.Image, side: int = 192) -> str:
    """A shopper's uploaded photo, small, as a JPEG `data:` URI: shown above its results in the
    same response and never written anywhere."""
    small = img.convert("RGB") if img.mode != "RGB" else img.copy()
    small.thumbnail((side, side), Image.Resampling.BOX)
    _strip_metadata(small)
    out = io.BytesIO()
    small.save(out, format="JPEG", quality=70)
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def _strip_metadata(img: Image.Image) -> None:
    """Forget everything but pixels (comment, EXIF, ICC, XMP, text chunks) before re-encoding."""
    img.info.clear()
    img.getexif().clear()
