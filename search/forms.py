"""Input validation for search pages and the JSON API: queries, filters, paging and photo uploads.

Queries are never rejected for their content (a 10,000-character paste, emoji, RTL text or SQL all
search normally); only malformed parameters (a price that is not a number, a negative page) are
errors, reported under the parameter's own name.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import InMemoryUploadedFile
from django.core.files.uploadhandler import FileUploadHandler

from search.attributes import ATTRIBUTES
from search.exceptions import UnsupportedImage
from search.filters import RELEVANCE, SORT_CHOICES, SearchFilters
from search.images import open_image

MAX_FILTER_VALUES = 20
# An uploaded photo is decoded at reduced size, its shorter side kept >= this (2x the 224 pixels
# CLIP looks at): a 12-megapixel phone JPEG is decoded at 1/4 scale by the JPEG decoder itself.
UPLOAD_SHORT_SIDE = 448
MAX_FILTER_CHARS = 300
# Magic numbers of the upload formats we accept: the browser's content type is not trusted.
_SIGNATURES = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG"}


class StringListField(forms.Field):
    """A repeated query parameter (`?brand=a&brand=b`), each value short and non-empty."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value):
        values = [v.strip() for v in (value or []) if v and v.strip()]
        if len(values) > MAX_FILTER_VALUES:
            raise forms.ValidationError(f"at most {MAX_FILTER_VALUES} values")
        if any(len(v) > MAX_FILTER_CHARS for v in values):
            raise forms.ValidationError(f"values must be at most {MAX_FILTER_CHARS} characters")
        if any("\x00" in v for v in values):
            # No product has one, and PostgreSQL refuses NUL in text: a 500 there, not a filter.
            raise forms.ValidationError("null characters are not allowed")
        return tuple(dict.fromkeys(values))


class FilterForm(forms.Form):
    store = StringListField(required=False)
    brand = StringListField(required=False)
    category = StringListField(required=False)
    min_price = forms.DecimalField(
        required=False, min_value=0, max_digits=12, decimal_places=2, label="Minimum price"
    )
    max_price = forms.DecimalField(
        required=False, min_value=0, max_digits=12, decimal_places=2, label="Maximum price"
    )
    in_stock = forms.BooleanField(required=False, label="In stock only")
    # Zero-shot attributes (search.attributes.ATTRIBUTES): `?colour=navy&product_type=furniture`.
    colour = StringListField(required=False)
    pattern = StringListField(required=False)
    material = StringListField(required=False)
    product_type = StringListField(required=False)

    def _clean_fields(self) -> None:
        """Django's, without a BoundField per field (~4 us each, 15 a search): a plain field
        (not disabled, Field's own `_clean_bound_field`, as every field here but a photo's)
        cleans its widget's value read directly, exactly what its BoundField would have read;
        one absent from the data (most of them: a search names a filter or two) reuses that
        field's cleaned absence (immutable: (), "", None, False). The others, and the
        `clean_<name>` hooks, go Django's way."""
        data, plain = self.data, forms.Field._clean_bound_field
        for name, field in self.fields.items():
            try:
                if field.disabled or type(field)._clean_bound_field is not plain:
                    value = field._clean_bound_field(self[name])
                elif (key := self.add_prefix(name)) in data:
                    value = field.clean(field.widget.value_from_datadict(data, self.files, key))
                else:
                    value = _cleaned_absence(field, type(data), key)
                self.cleaned_data[name] = value
                hook = getattr(self, f"clean_{name}", None)
                if hook is not None:
                    self.cleaned_data[name] = hook()
            except forms.ValidationError as e:
                self.add_error(name, e)

    def clean(self):
        data = super().clean()
        low, high = data.get("min_price"), data.get("max_price")
        if low is not None and high is not None and low > high:
            self.add_error("max_price", "must not be below the minimum price")
        return data

    def filters(self) -> SearchFilters:
        data = self.cleaned_data
        return SearchFilters(
            stores=data.get("store") or (),
            brands=data.get("brand") or (),
            categories=data.get("category") or (),
            min_price=data.get("min_price"),
            max_price=data.get("max_price"),
            in_stock=bool(data.get("in_stock")),
            attributes=tuple((name, data[name]) for name in ATTRIBUTES if data.get(name)),
        )


def _cleaned_absence(field: forms.Field, data_type: type, key: str):
    """`field.clean` of its widget's value for a name missing from the data, kept on the field
    per type of data; a field that refuses absence (required) raises every time, as Django's
    path would."""
    kept = field.__dict__.setdefault("_cleaned_absence", {})
    try:
        return kept[data_type]
    except KeyError:
        value = field.clean(field.widget.value_from_datadict(data_type(), {}, key))
    if isinstance(value, (tuple, str, bool, type(None))):  # immutable: safe to share
        kept[data_type] = value
    return value


class SearchForm(FilterForm):
    q = forms.CharField(required=False, strip=True, label="Search products")
    sort = forms.ChoiceField(required=False, choices=SORT_CHOICES, label="Sort by")
    page = forms.IntegerField(required=False, min_value=1, max_value=100)
    limit = forms.IntegerField(required=False, min_value=1, max_value=100)

    field_order = ["q"]

    def clean_sort(self) -> str:
        return self.cleaned_data.get("sort") or RELEVANCE

    def offset_limit(self, default_limit: int = 24) -> tuple[int, int]:
        limit = self.cleaned_data.get("limit") or default_limit
        return ((self.cleaned_data.get("page") or 1) - 1) * limit, limit


class SimilarForm(FilterForm):
    page = forms.IntegerField(required=False, min_value=1, max_value=100)
    limit = forms.IntegerField(required=False, min_value=1, max_value=100)

    offset_limit = SearchForm.offset_limit


class SharedFields(dict):
    """A form class's fields, shared by its instances instead of deep-copied into each one as
    Django does (~0.14 ms of every search for SearchForm's 15 fields, half of building and
    validating it). Safe while nothing changes a field of these forms per instance (choices,
    widget, attrs, required): none of our code does; code that must should copy the field."""

    def __deepcopy__(self, memo):
        return dict(self)


# Built on every search, results page and similar-products call.
SearchForm.base_fields = SharedFields(SearchForm.base_fields)
SimilarForm.base_fields = SharedFields(SimilarForm.base_fields)


def sniff_format(head: bytes) -> str | None:
    for magic, name in _SIGNATURES.items():
        if head.startswith(magic):
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return None


class ImageQueryForm(FilterForm):
    image = forms.FileField(
        label="Photo", help_text="A JPEG, PNG or WebP photo of what you are looking for."
    )
    limit = forms.IntegerField(required=False, min_value=1, max_value=100)

    def clean_image(self):
        upload = self.cleaned_data["image"]
        max_bytes = settings.FILE_UPLOAD_MAX_MEMORY_SIZE
        if getattr(upload, "too_large", False) or upload.size > max_bytes:
            raise forms.ValidationError(
                f"This photo is too large: the limit is {max_bytes // (1024 * 1024)} MB."
            )
        data = upload.read()
        if sniff_format(data[:16]) is None:
            raise forms.ValidationError("This file is not a JPEG, PNG or WebP image.")
        # Shoppers' photos get a lower pixel cap than scraped pictures: a worker decodes them
        # while people wait (never above the crawler's cap, which bounds every decode).
        max_pixels = min(settings.MEEPO_MAX_UPLOAD_PIXELS, settings.MEEPO_MAX_IMAGE_PIXELS)
        try:
            return open_image(data, max_pixels=max_pixels, reduce_to=UPLOAD_SHORT_SIDE)
        except UnsupportedImage as exc:
            raise forms.ValidationError(f"This image cannot be used: {exc}.") from exc


class CappedMemoryUploadHandler(FileUploadHandler):
    """Keeps an uploaded photo in memory only (it is never written to disk) and stops keeping
    bytes past MEEPO_MAX_UPLOAD_BYTES, flagging the file `too_large` so the form can say so.
    The rest of an oversized body is read and dropped (nginx's client_max_body_size bounds it)."""

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.buffer = bytearray()
        self.too_large = False
        self.received = 0

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > settings.FILE_UPLOAD_MAX_MEMORY_SIZE:
            self.too_large = True
            self.buffer = bytearray()
        elif len(self.buffer) + len(raw_data) <= settings.FILE_UPLOAD_MAX_MEMORY_SIZE:
            self.buffer += raw_data

    def file_complete(self, file_size):
        import io

        upload = InMemoryUploadedFile(
            file=io.BytesIO(bytes(self.buffer)),
            field_name=self.field_name,
            name=self.file_name,
            content_type=self.content_type,
            size=file_size,
            charset=self.charset,
            content_type_extra=self.content_type_extra,
        )
        upload.too_large = self.too_large
        return upload
