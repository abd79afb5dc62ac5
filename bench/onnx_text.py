"""CLIP text tower: ONNX Runtime against torch, fp32 and int8, CPU ms per query, same run.

The text tower of the benchmark model (random-weight ViT-B/32 shape with CLIP's vocabulary,
bench/out/clip-vit-b-32-random) is exported with `torch.onnx.export` (TorchScript exporter,
dynamic batch and length), quantised with `onnxruntime.quantization.quantize_dynamic` (int8
weights, like torch's dynamic quantisation of the Linear layers the site uses with
MEEPO_CLIP_QUANTIZE), and each query is run through all four, one thread each, interleaved:
the median CPU ms per query (`time.process_time`), the ratios and the parity of ONNX int8 to
torch fp32 (min cosine over the queries).

onnxruntime and onnx are not dependencies of the site; for this measurement:

    .venv/bin/pip install --target /tmp/ortlib onnxruntime==1.20.1 onnx==1.17.0 flatbuffers==24.3.25
    PYTHONPATH=/tmp/ortlib .venv/bin/python -m bench.onnx_text --queries 200
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


def text_module(model):
    import torch

    class Text(torch.nn.Module):
        def __init__(self, clip):
            super().__init__()
            self.clip = clip

        def forward(self, input_ids, attention_mask):
            out = self.clip.get_text_features(input_ids=input_ids, attention_mask=attention_mask)
            return out if isinstance(out, torch.Tensor) else out.pooler_output

    return Text(model).eval()


def sessions(model, tokenizer, work: Path):
    import onnxruntime as ort
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tokens = tokenizer(["striped red wooden chair"], padding=True, return_tensors="pt")
    fp32, int8 = work / "text.onnx", work / "text-int8.onnx"
    axes = {0: "batch", 1: "tokens"}
    torch.onnx.export(
        text_module(model),
        (tokens["input_ids"], tokens["attention_mask"]),
        str(fp32),
        input_names=["input_ids", "attention_mask"],
        output_names=["embedding"],
        dynamic_axes={"input_ids": axes, "attention_mask": axes},
        opset_version=17,
        dynamo=False,
    )
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return {
        name: ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        for name, path in (("onnx fp32", fp32), ("onnx int8", int8))
    }


def main() -> None:
    args = parse_args()
    import numpy as np
    import torch
    from transformers import AutoProcessor, CLIPModel

    from bench.search import _model_dir, unique_queries

    torch.set_num_threads(1)
    path = _model_dir()
    model = CLIPModel.from_pretrained(path).eval()
    tokenizer = AutoProcessor.from_pretrained(path).tokenizer
    quantised = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    runners = {"torch fp32": text_module(model), "torch int8": text_module(quantised)}
    with tempfile.TemporaryDirectory() as work:
        onnx = sessions(model, tokenizer, Path(work))
        cpu = {name: [] for name in (*runners, *onnx)}
        cosines = []
        for query in unique_queries(args.queries, seed=5):
            tokens = tokenizer([query], padding=True, return_tensors="pt")
            feeds = {k: tokens[k].numpy() for k in ("input_ids", "attention_mask")}
            out = {}
            with torch.inference_mode():
                for name, module in runners.items():
                    start = time.process_time()
                    out[name] = module(tokens["input_ids"], tokens["attention_mask"]).numpy()[0]
                    cpu[name].append((time.process_time() - start) * 1000)
            for name, session in onnx.items():
                start = time.process_time()
                out[name] = session.run(None, feeds)[0][0]
                cpu[name].append((time.process_time() - start) * 1000)
            a, b = out["onnx int8"], out["torch fp32"]
            cosines.append(float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)))
    base = statistics.median(cpu["torch int8"])
    rows = [
        {
            "text tower": name,
            "median CPU ms": round(statistics.median(v), 2),
            "x torch int8": round(statistics.median(v) / base, 2),
        }
        for name, v in cpu.items()
    ]
    print_table(rows)
    print(f"parity, ONNX int8 vs torch fp32: min cosine {min(cosines):.4f}")
    emit_json({"bench": "onnx_text", "queries": args.queries, "rows": rows, "min_cosine_onnx_int8_vs_fp32": round(min(cosines), 4), "machine": machine()}, args.json)  # fmt: skip


if __name__ == "__main__":
    main()
