"""factory_boy factories for the catalogue."""

import factory
from django.utils import timezone

from catalog.models import ImageAsset, Product, ProductImage, Store


class StoreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Store
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Store {n}")
    slug = factory.Sequence(lambda n: f"store-{n}")
    base_url = factory.Sequence(lambda n: f"https://store{n}.example")
    platform = "shopify"


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    store = factory.SubFactory(StoreFactory)
    external_id = factory.Sequence(lambda n: f"p{n}")
    url = factory.LazyAttribute(lambda o: f"{o.store.base_url}/products/{o.external_id}")
    title = factory.Sequence(lambda n: f"Product {n}")
    price = factory.Faker("pydecimal", left_digits=3, right_digits=2, positive=True)
    currency = "EUR"
    availability = Product.Availability.IN_STOCK
    first_seen_at = factory.LazyFunction(timezone.now)
    last_seen_at = factory.LazyFunction(timezone.now)


class ImageAssetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ImageAsset

    sha256 = factory.Sequence(lambda n: f"{n:064x}")
    width = 64
    height = 64
    format = "JPEG"
    byte_size = 1000
    thumbnail = factory.django.ImageField(width=64, height=64, format="JPEG")


class ProductImageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProductImage

    product = factory.SubFactory(ProductFactory)
    source_url = factory.Sequence(lambda n: f"https://cdn.example/img{n}.jpg")
    asset = factory.SubFactory(ImageAssetFactory)
    fetch_status = ProductImage.FetchStatus.OK
