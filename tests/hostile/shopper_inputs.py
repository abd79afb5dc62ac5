"""Hostile shopper inputs shared by tests/hostile/test_shopper_*.py: bombs, odd shapes, polyglots."""

from __future__ import annotations

import io
import struct
import zlib

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image


def png_header_bomb(width: int, height: int, *, bit_depth: int = 1) -> bytes:
    """A real PNG of zeros whose header promises width x height pixels (tiny on disk)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    row = b"\x00" * (1 + (width * bit_depth + 7) // 8)
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def encode(img: Image.Image, fmt: str = "JPEG", **kwargs) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **kwargs)
    return out.getvalue()


def photo(size=(64, 64), color="blue", fmt="JPEG") -> bytes:
    return encode(Image.new("RGB", size, color), fmt)


def upload(data: bytes, name: str = "photo.jpg", content_type: str = "image/jpeg"):
    return SimpleUploadedFile(name, data, content_type=content_type)


SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">'
    b'<script>alert(1)</script><rect width="100" height="100" fill="red"/></svg>'
)
# A JPEG that is also an HTML page and a ZIP archive (bytes after the EOI marker).
JPEG_HTML_ZIP = (
    photo() + b"<html><script>alert(document.cookie)</script></html>" + b"PK\x05\x06" + b"\0" * 18
)
# An HTML page wearing the JPEG magic number.
HTML_AS_JPEG = b"\xff\xd8\xff\xe0<html><script>alert(1)</script></html>"
# A GIF header followed by JavaScript (the classic GIFAR / GIF-JS polyglot).
GIF_JS = b"GIF89a/*\x0a\x00\x0a\x00\x00\x00\x00*/=1;alert(1)//"
# A PNG whose IHDR claims 65535 x 65535 (4.3 gigapixels).
PNG_GIGAPIXEL = png_header_bomb(65535, 65535)[:33] + b"\0" * 12 + b"IEND\xaeB`\x82"
