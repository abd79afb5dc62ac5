"""Run one hostile photo upload in a fresh process and report its cost as JSON on stdout.

    python -m tests.hostile.shopper_probe upload FILE     POST FILE to /api/search/image
    python -m tests.hostile.shopper_probe encoder WxH     preprocess a blank WxH picture for CLIP

Peak memory (VmHWM) is per process, so each case runs alone, and the bytes come from a file
written by the caller (building a big test picture here would raise the peak before measuring):
the growth is what the request itself added on top of a started Django.
"""

from __future__ import annotations

import json
import os
import resource
import sys


def _peak_mb() -> float:
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork+exec, so a child of a big pytest
    # process would report its parent's size and every growth would read as 0.
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _usage():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return _peak_mb(), ru.ru_utime + ru.ru_stime  # MB, CPU seconds


def probe_upload(path: str) -> dict:
    from pathlib import Path

    data = Path(path).read_bytes()
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import Client

    client = Client()
    client.get("/healthz")  # warm imports (views, forms, PIL plugins) before measuring
    base_mb, base_cpu = _usage()
    response = client.post(
        "/api/search/image", {"image": SimpleUploadedFile("p.png", data, "image/png")}
    )
    peak_mb, cpu = _usage()
    return {
        "bytes": len(data),
        "status": response.status_code,
        "body": response.content[:300].decode("utf-8", "replace"),
        "growth_mb": round(peak_mb - base_mb, 1),
        "cpu_s": round(cpu - base_cpu, 3),
    }


def probe_encoder(width: int, height: int) -> dict:
    """The encoder's own guard, with a processor that scales the shorter side to 224 like
    ViT-B/32's (the tiny test model's 32 would hide the cost)."""
    from PIL import Image

    from search.encoder import get_encoder
    from search.exceptions import UnsupportedImage

    encoder = get_encoder()
    encoder.processor.image_processor.size = {"shortest_edge": 224}
    encoder.processor.image_processor.crop_size = {"height": 224, "width": 224}
    img = Image.new("RGB", (width, height), "white")
    base_mb, base_cpu = _usage()
    try:
        pixels = encoder._pixels(img)  # the model's preprocessing: where a strip costs gigabytes
        outcome = f"preprocessed to {tuple(pixels['pixel_values'].shape)}"
    except UnsupportedImage as exc:
        outcome = f"refused: {exc}"
    peak_mb, cpu = _usage()
    return {
        "outcome": outcome,
        "growth_mb": round(peak_mb - base_mb, 1),
        "cpu_s": round(cpu - base_cpu, 3),
    }


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meepo.settings")
    import django

    django.setup()
    kind, arg = sys.argv[1], sys.argv[2]
    if kind == "encoder":
        width, height = map(int, arg.split("x"))
        result = probe_encoder(width, height)
    else:
        result = probe_upload(arg)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
