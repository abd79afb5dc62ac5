"""Model-family benchmark: the recommended models' real shapes with random weights.

    python -m bench.models [--families clip,siglip,siglip2] [--images 32] [--texts 30]
                           [--threads 2] [--json out.json]

For each family a random-weight model with the released base model's architecture and vocabulary
size (`demo.random_model.save_random_model(size="base"|"vit-b-32")`) is loaded through the
site's encoder, fp32 and int8: images/s for a batch of preprocessed images, median milliseconds
for one text query (what a shopper waits for), parameters and size on disk. Speeds are real;
vectors are meaningless, so nothing here says anything about search quality.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import emit_json, machine, print_table, setup_django

SHAPES = {
    "clip": ("vit-b-32", "openai/clip-vit-base-patch32"),
    "siglip": ("base", "google/siglip-base-patch16-224"),
    "siglip2": ("base", "google/siglip2-base-patch16-224"),
}


def _dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def measure(family: str, *, images: int, texts: int, threads: int) -> list[dict]:
    from demo.random_model import save_random_model
    from search.encoder import _probe_images, load_encoder, probe_size

    size, real = SHAPES[family]
    path = save_random_model(Path(tempfile.mkdtemp()) / family, family=family, size=size)
    rows = []
    params = None
    for quantize in (False, True):
        encoder = load_encoder(str(path), "cpu", quantize, threads)
        params = params or sum(p.numel() for p in encoder.model.parameters()) / 1e6
        pictures = _probe_images(probe_size(encoder.processor), n=images)
        encoder.encode_images(pictures[:2])  # warm-up
        # Best of three: on a shared box the minimum is the machine's speed, the rest is noise.
        batches = []
        for _ in range(3):
            start = time.perf_counter()
            encoder.encode_images(pictures)
            batches.append(time.perf_counter() - start)
        per_second = images / min(batches)
        queries = [f"fluffy striped salmon pillow {i}" for i in range(texts)]
        timings = []
        for query in queries:
            start = time.perf_counter()
            encoder.encode_texts([query])
            timings.append((time.perf_counter() - start) * 1000)
        rows.append(
            {
                "family": family,
                "shape_of": real,
                "mode": encoder.mode,
                "parity": round(encoder.parity, 4) if encoder.parity else None,
                "dim": encoder.dim,
                "params_m": round(params, 1),
                "disk_mb": round(_dir_mb(path), 0),
                "images_per_s": round(per_second, 1),
                "text_ms_p50": round(statistics.median(timings), 1),
                "text_ms_min": round(min(timings), 1),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default="clip,siglip,siglip2")
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--texts", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json")
    args = parser.parse_args()
    setup_django()
    rows = []
    for family in args.families.split(","):
        rows += measure(family, images=args.images, texts=args.texts, threads=args.threads)
    print_table(rows)
    if args.json:
        emit_json({"machine": machine(), "rows": rows}, args.json)


if __name__ == "__main__":
    main()
