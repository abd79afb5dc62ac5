"""Embedding benchmark: JPEG files on disk -> stored vectors, beside the bare model forward.

    python -m bench.embed [--images 256] [--batch 32] [--no-int8] [--json out.json]

Uses the real ViT-B/32 architecture with random weights (`save_random_clip(size="vit-b-32")`):
the speed is the real one, the vectors are meaningless. In one run, on a throwaway database:
  bare      model.get_image_features on already-preprocessed pixel tensors (the ceiling)
  e2e       pipeline.embed.embed_images: query, read thumbnail JPEGs, decode, CLIP preprocessing,
            forward, write Embedding rows, with decode/preprocess overlapped in a thread
and the same two for the int8 mode (MEEPO_CLIP_QUANTIZE) with its parity (min cosine to fp32).
"""

from __future__ import annotations

import argparse
import io
import tempfile
from pathlib import Path

import numpy as np

from bench.common import emit_json, machine, print_table, setup_django, stopwatch


def make_catalogue(n: int, media: Path) -> None:
    """n products, each with one 512x512 JPEG thumbnail on disk (like the scraper stores them)."""
    from django.utils import timezone
    from PIL import Image

    from catalog.models import ImageAsset, Product, ProductImage, Store

    store = Store.objects.create(name="Bench", slug="bench", base_url="https://bench.example")
    rng = np.random.default_rng(0)
    now = timezone.now()
    for i in range(n):
        # Smooth gradients plus noise: JPEG-compressible like a product photo, not pure noise.
        y, x = np.mgrid[0:512, 0:512] / 512
        base = np.stack([x * (i % 7 + 1), y * (i % 5 + 1), x * y * 3], axis=-1) % 1.0
        pixels = np.clip(base * 255 + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels, "RGB").save(buf, "JPEG", quality=85)
        name = f"thumbs/{i:02x}/{i:064x}.jpg"
        (media / name).parent.mkdir(parents=True, exist_ok=True)
        (media / name).write_bytes(buf.getvalue())
        asset = ImageAsset.objects.create(
            sha256=f"{i:064x}",
            width=512,
            height=512,
            format="JPEG",
            byte_size=len(buf.getvalue()),
            thumbnail=name,
        )
        product = Product.objects.create(
            store=store,
            external_id=str(i),
            url=f"https://bench.example/p/{i}",
            title=f"P{i}",
            first_seen_at=now,
            last_seen_at=now,
        )
        ProductImage.objects.create(
            product=product,
            source_url=f"https://bench.example/{i}.jpg",
            asset=asset,
            fetch_status="ok",
        )


def bare_forward(encoder, n: int, batch: int) -> float:
    """Images/s of the model alone on preprocessed tensors (random pixels: same cost)."""
    import torch

    size = encoder.processor.image_processor.crop_size["height"]
    pixels = torch.randn(batch, 3, size, size)
    encoder._forward_images(pixels[:2])  # warm-up
    done = 0
    with stopwatch() as t:
        while done < n:
            encoder._forward_images(pixels)
            done += batch
    return done / t()


def end_to_end(batch: int, n: int, *, force: bool) -> float:
    from pipeline.embed import embed_images

    report = embed_images(batch_size=batch, force=force, limit=n)
    assert report.failed == 0, report
    return report.embedded / report.seconds


def interleaved(encoder, args, *, force: bool) -> dict:
    """Alternate bare and end-to-end rounds so both see the same machine load; median ratio."""
    per_round = args.images // args.rounds
    bare, e2e = [], []
    for _ in range(args.rounds):
        bare.append(bare_forward(encoder, per_round, args.batch))
        e2e.append(end_to_end(args.batch, per_round, force=force))
    ratios = [e / b for e, b in zip(e2e, bare, strict=True)]
    return {
        "bare img/s": float(np.median(bare)),
        "e2e img/s": float(np.median(e2e)),
        "e2e/bare": float(np.median(ratios)),
        "rounds": [round(r, 3) for r in ratios],
    }


def main() -> None:
    """Long: the arguments, interleaved rounds and the report, read top to bottom."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=4, help="interleaved bare/e2e rounds")
    parser.add_argument("--no-int8", action="store_true")
    parser.add_argument("--model", help="existing model dir (default: a fresh random ViT-B/32)")
    parser.add_argument("--json")
    args = parser.parse_args()

    data = setup_django(migrate=True)
    import torch
    from django.conf import settings

    from demo.random_model import save_random_clip
    from search import encoder as enc

    model_dir = args.model or str(
        save_random_clip(Path(tempfile.mkdtemp(prefix="clip-")), size="vit-b-32")
    )
    settings.MEEPO_CLIP_MODEL = model_dir
    make_catalogue(args.images, Path(settings.MEDIA_ROOT))
    with stopwatch() as t_load:
        fp32 = enc.get_encoder()
    rows = [{"mode": "fp32", **interleaved(fp32, args, force=False), "parity": 1.0}]
    if not args.no_int8:
        settings.MEEPO_CLIP_QUANTIZE = True
        with stopwatch() as t_q:
            int8 = enc.get_encoder()
        if int8.mode == "int8":
            # force=True re-embeds the same images with the int8 model.
            rows.append(
                {"mode": "int8", **interleaved(int8, args, force=True), "parity": int8.parity}
            )
            rows[-1]["vs fp32 e2e"] = rows[-1]["e2e img/s"] / rows[0]["e2e img/s"]
        else:
            rows.append({"mode": "int8 (refused: parity < 0.99)", "parity": "see log"})
        rows[-1]["load+parity s"] = t_q()
    print_table(rows)
    emit_json(
        {
            "machine": machine(),
            "torch_threads": torch.get_num_threads(),
            "images": args.images,
            "batch": args.batch,
            "model_load_s": t_load(),
            "rows": rows,
            "data_dir": data,
        },
        args.json,
    )


if __name__ == "__main__":
    main()
