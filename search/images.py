"""Safe image decoding and the two small renditions Meepo stores: a thumbnail and a placeholder.

Every image Meepo decodes comes from a stranger (a store's CDN or a shopper's upload), so
`open_image` only hands Pillow the four raster formats we need (no EPS/TIFF/SVG parsers), checks
the pixel count *before* decoding (decompression bombs), refuses truncated files, and returns a
fully loaded RGB image with EXIF orientation applied. Pure functions, no database access.
"""

from __future__ import annotations

import base64
import io
import warnings

from django.conf import settings
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from search.exceptions import UnsupportedImage

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
THUMBNAIL_SIZE = (512, 512)
PLACEHOLDER_MAX_BYTES = 500
_PLACEHOLDER_SIDES = (16, 12, 8, 6, 4)

# Keep Pillow strict: a truncated download must fail loudly, not become half a grey picture.
ImageFile.LOAD_TRUNCATED_IMAGES = False


def open_image(data: bytes, *, max_pixels: int | None = None) -> Image.Image:
    """Decode `data` into a loaded RGB image, or raise UnsupportedImage saying why.

    `max_pixels` defaults to settings.MEEPO_MAX_IMAGE_PIXELS; the check runs on the header's
    size, so a bomb is refused before a single pixel is decoded.
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
            if width <= 0 or height <= 0:
                raise UnsupportedImage(f"image has no pixels ({width}x{height})")
            if width * height > limit:
                raise UnsupportedImage(
                    f"image is {width}x{height} = {width * height} pixels, over the "
                    f"{limit} pixel limit (possible decompression bomb)"
                )
            img.seek(0)  # animated GIF/WebP: the first frame stands for the image
            img.load()
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
    return img


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
    """A JPEG that fits in 512x512, aspect kept, never upscaled."""
    thumb = img.convert("RGB") if img.mode != "RGB" else img.copy()
    thumb.thumbnail(THUMBNAIL_SIZE, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    thumb.save(out, format="JPEG", quality=82, optimize=True, progressive=True)
    return out.getvalue()


def make_placeholder(img: Image.Image) -> str:
    """A tiny blurred stand-in as a `data:` URI of at most 500 bytes, shown before the thumbnail."""
    rgb = img.convert("RGB") if img.mode != "RGB" else img
    for side in _PLACEHOLDER_SIDES:
        small = rgb.copy()
        small.thumbnail((side, side), Image.Resampling.BOX)
        for quality in (40, 20):
            out = io.BytesIO()
            small.save(out, format="WEBP", quality=quality, method=6)
            uri = "data:image/webp;base64," + base64.b64encode(out.getvalue()).decode("ascii")
            if len(uri) <= PLACEHOLDER_MAX_BYTES:
                return uri
    # A 1x1 average colour always fits; only reached for pathological inputs.
    out = io.BytesIO()
    rgb.resize((1, 1), Image.Resampling.BOX).save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")
