"""CLIP text tower: ONNX Runtime against torch, fp32 and int8, CPU ms per query, same run.

The four text runtimes the encoder can serve (`search.encoder.load_encoder` with
MEEPO_CLIP_QUANTIZE off/on and MEEPO_CLIP_TEXT_RUNTIME torch/onnx) on the benchmark model
(random-weight ViT-B/32 shape with CLIP's vocabulary, bench/out/clip-vit-b-32-random): the
ONNX file is the encoder's own export (`torch.onnx.export`, int8 by
`onnxruntime.quantization.quantize_dynamic`), gated like the site gates it (min cosine to fp32
on the probe texts >= MEEPO_CLIP_PARITY_MIN). Each query runs through all four on pre-tokenised
input, one thread each, interleaved: median CPU ms per query (`time.process_time`) for batch 1
and per query in a batch of 4 (what coalesced concurrent queries cost), the ratios, the gate's
parity and the min cosine to torch fp32 over all queries.

    .venv/bin/python -m bench.onnx_text --queries 200
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import emit_json, machine, print_table  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--json", help="also write the JSON result here")
    return parser.parse_args()


def load_encoders(path: str) -> dict:
    """The four text towers (torch / ONNX Runtime, fp32 / int8), each checked to be what its
    name says."""
    from search.encoder import load_encoder

    encoders = {
        "torch fp32": load_encoder(path, "cpu", "off", 1, 0.99, "torch"),
        "torch int8": load_encoder(path, "cpu", "on", 1, 0.99, "torch"),
        "onnx fp32": load_encoder(path, "cpu", "off", 1, 0.99, "onnx"),
        "onnx int8": load_encoder(path, "cpu", "on", 1, 0.99, "onnx"),
    }
    for name, enc in encoders.items():
        assert ("onnx" in name) == (enc.onnx_text is not None), (name, enc.describe())
    return encoders


def forward(enc, tokens):
    import torch

    if enc.onnx_text is not None:
        return enc.onnx_text.run(tokens)
    with torch.inference_mode():
        return enc._torch_texts(tokens)


def time_encoders(encoders: dict, queries: list[str]) -> tuple[dict, dict, dict]:
    """CPU ms per query at batch 1 and batch 4, and each vector's cosine to torch fp32's."""
    cpu = {name: [] for name in encoders}
    cpu4 = {name: [] for name in encoders}
    cosines = {name: [] for name in encoders}
    reference = encoders["torch fp32"]
    for i, query in enumerate(queries):
        tokens = reference.tokenize([query])
        four = reference.tokenize(queries[i : i + 4] if i + 4 <= len(queries) else queries[-4:])
        out = {}
        for name, enc in encoders.items():
            start = time.process_time()
            out[name] = forward(enc, tokens)[0]
            cpu[name].append((time.process_time() - start) * 1000)
            if i % 4 == 0:
                start = time.process_time()
                forward(enc, four)
                cpu4[name].append((time.process_time() - start) * 1000 / 4)
        for name in encoders:
            cosines[name].append(float(out[name] @ out["torch fp32"]))
    return cpu, cpu4, cosines


def main() -> None:
    args = parse_args()
    import numpy as np
    import torch

    from bench.common import setup_django
    from bench.search import _model_dir, unique_queries

    setup_django(tempfile.mkdtemp(prefix="bench-onnx-"))
    torch.set_num_threads(1)
    encoders = load_encoders(str(_model_dir()))
    cpu, cpu4, cosines = time_encoders(encoders, unique_queries(args.queries, seed=5))
    base = statistics.median(cpu["torch int8"])
    rows = [
        {
            "text tower": name,
            "median CPU ms (batch 1)": round(statistics.median(cpu[name]), 2),
            "x torch int8": round(statistics.median(cpu[name]) / base, 2),
            "CPU ms per query (batch 4)": round(statistics.median(cpu4[name]), 2),
            "gate parity": encoders[name].describe()["text_parity" if "onnx" in name else "parity"],
            "min cosine to torch fp32": round(min(cosines[name]), 4),
        }
        for name in encoders
    ]
    print_table(rows)
    emit_json({"bench": "onnx_text", "queries": args.queries, "rows": rows, "machine": machine(), "np": np.__version__}, args.json)  # fmt: skip


if __name__ == "__main__":
    main()
