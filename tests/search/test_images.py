"""search.images: safe decoding (allow-list, bombs, truncation) and the stored renditions."""

import base64
import io
import struct
import zlib

import pytest
from PIL import Image

from search.exceptions import UnsupportedImage
from search.images import make_placeholder, make_thumbnail, open_image


def _encode(img: Image.Image, fmt: str, **kwargs) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **kwargs)
    return out.getvalue()


def _png_bomb(width: int, height: int) -> bytes:
    """A real 1-bit PNG whose header promises width x height pixels of zeros (tiny on disk)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    row = b"\x00" * (1 + (width + 7) // 8)
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF"])
def test_open_image_decodes_allowed_formats_to_loaded_rgb(fmt):
    data = _encode(Image.new("RGB", (40, 30), (200, 30, 30)), fmt)

    img = open_image(data)

    assert img.mode == "RGB"
    assert img.size == (40, 30)
    assert img.format == fmt
    r, g, b = img.getpixel((20, 15))
    assert r > 150
    assert g < 90
    assert b < 90


def test_open_image_puts_transparent_pixels_on_white():
    img = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    out = open_image(_encode(img, "PNG"))
    assert out.getpixel((5, 5)) == (255, 255, 255)


def test_open_image_takes_first_frame_of_animated_gif():
    frames = [Image.new("RGB", (20, 20), c) for c in ((255, 0, 0), (0, 0, 255))]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:], duration=50)

    img = open_image(out.getvalue())

    r, _, b = img.getpixel((10, 10))
    assert r > 200
    assert b < 50


def test_open_image_applies_exif_orientation():
    img = Image.new("RGB", (60, 20), (0, 128, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    data = _encode(img, "JPEG", exif=exif.tobytes())

    assert open_image(data).size == (20, 60)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"<html><body>Not found</body></html>", "not a supported image"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "not a supported image"),
    ],
)
def test_open_image_refuses_garbage_and_disallowed_types(data, reason):
    with pytest.raises(UnsupportedImage, match=reason):
        open_image(data)


def test_open_image_refuses_tiff_although_pillow_could_read_it():
    with pytest.raises(UnsupportedImage, match="not a supported image"):
        open_image(_encode(Image.new("RGB", (8, 8)), "TIFF"))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_open_image_refuses_truncated_file(fmt):
    noisy = Image.effect_noise((200, 200), 80).convert("RGB")
    data = _encode(noisy, fmt)

    with pytest.raises(UnsupportedImage, match=r"truncated|corrupt"):
        open_image(data[: len(data) // 2])


def test_open_image_refuses_decompression_bomb_before_decoding():
    bomb = _png_bomb(12_000, 12_000)  # 144 megapixels in a few kilobytes
    assert len(bomb) < 100_000

    with pytest.raises(UnsupportedImage, match="decompression bomb"):
        open_image(bomb)


def test_open_image_limit_comes_from_settings_and_argument(settings):
    data = _encode(Image.new("RGB", (100, 100)), "PNG")
    settings.MEEPO_MAX_IMAGE_PIXELS = 5_000
    with pytest.raises(UnsupportedImage, match="pixel limit"):
        open_image(data)
    assert open_image(data, max_pixels=20_000).size == (100, 100)


def test_make_thumbnail_fits_512_keeps_aspect_and_is_jpeg():
    thumb = make_thumbnail(Image.new("RGB", (2000, 1000), (10, 20, 30)))

    out = Image.open(io.BytesIO(thumb))
    assert out.format == "JPEG"
    assert out.size == (512, 256)


def test_make_thumbnail_never_upscales():
    out = Image.open(io.BytesIO(make_thumbnail(Image.new("RGB", (100, 80)))))
    assert out.size == (100, 80)


@pytest.mark.parametrize("size", [(3000, 2000), (50, 400), (1, 1)])
def test_make_placeholder_is_a_small_decodable_data_uri(size):
    noisy = Image.effect_noise(size, 100).convert("RGB")

    uri = make_placeholder(noisy)

    assert len(uri) <= 500
    header, payload = uri.split(",", 1)
    assert header.startswith("data:image/")
    assert header.endswith(";base64")
    Image.open(io.BytesIO(base64.b64decode(payload))).load()


@pytest.mark.parametrize("size", [(4000, 1), (1, 4000), (2100, 100)])
def test_open_image_refuses_elongated_pictures_from_the_header(size):
    data = _png_bomb(*size)  # a real PNG; never decoded: the header is enough

    with pytest.raises(UnsupportedImage, match="elongated"):
        open_image(data)


def test_open_image_accepts_pictures_up_to_the_aspect_bound(settings):
    settings.MEEPO_MAX_IMAGE_ASPECT = 20
    assert open_image(_encode(Image.new("RGB", (400, 20)), "PNG")).size == (400, 20)
    settings.MEEPO_MAX_IMAGE_ASPECT = 10
    with pytest.raises(UnsupportedImage, match="10:1"):
        open_image(_encode(Image.new("RGB", (400, 20)), "PNG"))


def test_open_image_decodes_a_big_jpeg_at_reduced_size_and_keeps_its_published_size():
    data = _encode(Image.new("RGB", (4000, 3000), (200, 30, 30)), "JPEG")

    img = open_image(data, reduce_to=448)

    assert 448 <= min(img.size) < 896
    assert img.size[0] > img.size[1]
    assert img.info["source_size"] == (4000, 3000)
    assert img.getpixel((10, 10))[0] > 150


def test_open_image_reduces_a_bilevel_png_before_converting_it():
    img = open_image(_png_bomb(4000, 4000), reduce_to=448)

    assert img.mode == "RGB"
    assert 448 <= min(img.size) < 896
    assert img.info["source_size"] == (4000, 4000)


def test_open_image_reduced_keeps_exif_orientation():
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _encode(Image.new("RGB", (3000, 1000)), "JPEG", exif=exif.tobytes())

    img = open_image(data, reduce_to=448)

    assert img.size[1] > img.size[0]
    assert img.info["source_size"] == (1000, 3000)


def test_open_image_without_reduce_to_keeps_full_size():
    data = _encode(Image.new("RGB", (1200, 900)), "JPEG")
    assert open_image(data).size == (1200, 900)


def _jpeg_with_metadata() -> bytes:
    exif = Image.Exif()
    exif[0x010E] = "EXIF-PAYLOAD-<script>"  # ImageDescription
    icc = b"ICC-PAYLOAD" * 20
    return _encode(
        Image.new("RGB", (64, 48), (10, 200, 10)),
        "JPEG",
        comment=b"COMMENT-PAYLOAD<script>alert(1)</script>",
        exif=exif.tobytes(),
        icc_profile=icc,
    )


def test_thumbnail_keeps_no_comment_exif_or_icc_of_the_source():
    source = _jpeg_with_metadata()
    assert b"COMMENT-PAYLOAD" in source

    thumb = make_thumbnail(open_image(source))

    for payload in (b"COMMENT-PAYLOAD", b"EXIF-PAYLOAD", b"ICC-PAYLOAD", b"<script>"):
        assert payload not in thumb
    assert b"\xff\xfe" not in thumb.split(b"\xff\xda", 1)[0]  # no COM segment before the scan
    info = Image.open(io.BytesIO(thumb)).info
    assert not {"comment", "exif", "icc_profile", "xmp"} & set(info)


def test_placeholder_keeps_no_metadata_of_the_source():
    uri = make_placeholder(open_image(_jpeg_with_metadata()))

    payload = base64.b64decode(uri.split(",", 1)[1])
    for marker in (b"COMMENT-PAYLOAD", b"EXIF-PAYLOAD", b"ICC-PAYLOAD"):
        assert marker not in payload
