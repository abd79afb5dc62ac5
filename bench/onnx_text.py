"""CLIP text tower: ONNX Runtime against torch, fp32 and int8, CPU ms per query, same run.

The text runtimes the encoder can serve (`search.encoder.load_encoder` with
MEEPO_CLIP_QUANTIZE off/on and MEEPO_CLIP_TEXT_RUNTIME torch/onnx) on the benchmark model
(random-weight ViT-B/32 shape with CLIP's vocabulary, bench/out/clip-vit-b-32-random): the
ONNX file is the encoder's own export (`torch.onnx.export`, int8 by
`onnxruntime.quantization.quantize_dynamic` with fixed calibrated activation scales, served,
and plain `quantize_dynamic`, MEEPO_CLIP_ONNX_INT8=dynamic), gated like the site gates it (min cosine to fp32 on the probe
texts >= MEEPO_CLIP_PARITY_MIN). Each query runs through all of them on pre-tokenised input, one
thread each, interleaved: median CPU ms per query (`time.process_time`) for batch 1 and per
query in a batch of 4 (what coalesced concurrent queries cost), the ratios, the gate's parity,
the min cosine to torch fp32 over all queries, and the most a vector moves in its batch of 4
(padded) from its alone value (0 where a query's vector does not depend on its company).

Then the served session (its graph lean, the first token's rows stored) against the graph as
exported and lean alone, and one session option changed at a time (arena, memory pattern,
optimisation level, IOBinding, threads and spinning): CPU ms per query alone and in a batch of
4, and whether each output is bit-identical to the served one.

Then the served call on ONNX int8 (`encode_texts`: tokeniser + forward + normalise), with the
tokens from the `tokenizers` backend called directly (search.encoder_tokens, served) and from the
processor, interleaved, and each tokeniser alone; and a coalesced pass of three short queries and
a long one, as one padded batch and in length groups (served: TEXT_PAD_SPREAD). With `--threads N` (N > 1), a simulated gunicorn
worker: N threads each loop one unique query through a coalescer of the served pass
(`_encode_queries`) and then ~`--glue-ms` of other request work (Python holding the GIL, then a
numpy scan that releases it and evicts the caches), in blocks alternating static int8 coalesced
(served), the same with the graph as exported (before the lean and first-token rewrites),
dynamic int8 coalesced, and dynamic int8 one query per pass: encoder CPU ms per query
(the threads' `time.thread_time` inside the call: the pass runs in the caller's thread) and the
mean pass size.

    .venv/bin/python -m bench.onnx_text --queries 200
    .venv/bin/python -m bench.onnx_text --queries 100 --threads 4 --seconds 40
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
    parser.add_argument("--threads", type=int, default=1, help="simulated worker threads (>1)")
    parser.add_argument("--seconds", type=float, default=40, help="worker simulation length")
    parser.add_argument("--glue-ms", type=float, default=15, help="other work per request")
    parser.add_argument("--json", help="also write the JSON result here")
    return parser.parse_args()


def load_encoders(path: str) -> dict:
    """The text towers (torch / ONNX Runtime, fp32 / int8; ONNX int8 static (served) and
    dynamic), each checked to be what its name says."""
    from django.conf import settings

    from search.encoder import load_encoder

    encoders = {
        "torch fp32": load_encoder(path, "cpu", "off", 1, 0.99, "torch"),
        "torch int8": load_encoder(path, "cpu", "on", 1, 0.99, "torch"),
        "onnx fp32": load_encoder(path, "cpu", "off", 1, 0.99, "onnx"),
        "onnx int8": load_encoder(path, "cpu", "on", 1, 0.99, "onnx"),
    }
    settings.MEEPO_CLIP_ONNX_INT8 = "dynamic"
    load_encoder.cache_clear()
    encoders["onnx int8 dynamic"] = load_encoder(path, "cpu", "on", 1, 0.99, "onnx")
    settings.MEEPO_CLIP_ONNX_INT8 = "static"
    for name, enc in encoders.items():
        assert ("onnx" in name) == (enc.onnx_text is not None), (name, enc.describe())
    assert encoders["onnx int8"].onnx_text.path.name == "text-int8-static.onnx"
    assert encoders["onnx int8 dynamic"].onnx_text.path.name == "text-int8-dynamic.onnx"
    return encoders


def forward(enc, tokens):
    import torch

    if enc.onnx_text is not None:
        return enc.onnx_text.run(tokens)
    with torch.inference_mode():
        return enc._torch_texts(tokens)


def time_encoders(encoders: dict, queries: list[str]) -> tuple[dict, dict, dict, dict]:
    """CPU ms per query at batch 1 and batch 4, each vector's cosine to torch fp32's, and how
    far a query's vector moves in the batch of 4 (padded to its longest) from its alone one."""
    import numpy as np

    cpu = {name: [] for name in encoders}
    cpu4 = {name: [] for name in encoders}
    cosines = {name: [] for name in encoders}
    moved = dict.fromkeys(encoders, 0.0)
    reference = encoders["torch fp32"]
    for i, query in enumerate(queries):
        tokens = reference.tokenize([query])
        company = queries[i : i + 4] if i + 4 <= len(queries) else [query, *queries[:3]]
        four = reference.tokenize(company)
        out = {}
        for name, enc in encoders.items():
            start = time.process_time()
            out[name] = forward(enc, tokens)[0]
            cpu[name].append((time.process_time() - start) * 1000)
            start = time.process_time()
            batched = forward(enc, four)[0]
            cpu4[name].append((time.process_time() - start) * 1000 / 4)
            moved[name] = max(moved[name], float(np.abs(batched - out[name]).max()))
        for name in encoders:
            cosines[name].append(float(out[name] @ out["torch fp32"]))
    return cpu, cpu4, cosines, moved


def time_served(enc, queries: list[str]) -> list[dict]:
    """Median CPU ms per query of `encode_texts` and of the tokeniser, direct backend against
    the processor (same vectors: checked)."""
    import numpy as np

    enc.token_arrays(["a"])  # builds and checks the direct tokenizer
    direct = enc._direct_tokens
    assert direct, "the direct tokenizer was refused for this model"
    cpu = {k: [] for k in ("served direct", "served processor", "tok direct", "tok processor")}
    for query in queries:
        for path in ("direct", "processor"):
            enc._direct_tokens = direct if path == "direct" else False
            start = time.process_time()
            enc.token_arrays([query])
            cpu[f"tok {path}"].append((time.process_time() - start) * 1000)
            start = time.process_time()
            vector = enc.encode_texts([query])
            cpu[f"served {path}"].append((time.process_time() - start) * 1000)
            if path == "direct":
                first = vector
        assert np.array_equal(first, vector), query
    enc._direct_tokens = direct
    long = " ".join(queries[:12])  # a pasted paragraph (~50 tokens) beside three short queries
    for i in range(0, min(len(queries) - 3, 60), 3):
        texts = [*queries[i : i + 3], long]
        start = time.process_time()
        enc.encode_texts(texts)
        cpu.setdefault("pass of 3 short + 1 long: one batch", []).append((time.process_time() - start) * 1000)  # fmt: skip
        start = time.process_time()
        enc._encode_queries(texts)
        cpu.setdefault("pass of 3 short + 1 long: length groups", []).append((time.process_time() - start) * 1000)  # fmt: skip
    return [{"call": k, "median CPU ms": round(statistics.median(v), 3)} for k, v in cpu.items()]


def time_worker(configs: dict, queries: list[str], threads: int, seconds: float, glue_ms: float) -> list[dict]:  # fmt: skip
    """Encoder CPU ms per query in a simulated worker, for each `configs` name -> (encoder, queries
    per pass) in turn (coalesced passes vs one query a pass)."""
    import threading

    import numpy as np

    from search.batching import Coalescer

    scan = np.ones(4 * 1024 * 1024)  # 32 MB: what an ANN probe and the page do to the caches
    sizes = {name: [] for name in configs}
    mode = [next(iter(configs))]

    def batch_for(name):
        def batch(texts):
            sizes[name].append(len(texts))
            return configs[name][0]._encode_queries(texts)  # the served pass

        return batch

    passes = {name: Coalescer(batch_for(name), max_batch=size) for name, (_, size) in configs.items()}  # fmt: skip
    cpu = {m: [0.0, 0] for m in passes}
    lock, stop = threading.Lock(), threading.Event()

    def glue():
        deadline = time.thread_time() + glue_ms / 2000
        while time.thread_time() < deadline:  # the GIL-holding half
            pass
        scan.sum()

    def work(k: int) -> None:
        i = k
        while not stop.is_set():
            name, text = mode[0], f"{queries[i % len(queries)]} {i}"
            i += threads
            start = time.thread_time()
            passes[name](text)
            spent = time.thread_time() - start
            with lock:
                cpu[name][0] += spent
                cpu[name][1] += 1
            glue()

    workers = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for name in passes:
            mode[0] = name
            time.sleep(2.0)
    stop.set()
    for w in workers:
        w.join()
    rows = []
    for name, (total, n) in cpu.items():
        per_query = round(total / max(n, 1) * 1000, 2)
        size = round(float(np.mean(sizes[name] or [1])), 2)
        rows.append({"passes": name, "threads": threads, "queries": n, "encoder CPU ms / query": per_query, "mean pass size": size})  # fmt: skip
    return rows


def exported_graph(fp32) -> Path:
    """The served static int8 file as exported before the lean and first-token rewrites."""
    from search import encoder_onnx

    target = Path(tempfile.mkdtemp(prefix="bench-onnx-exported-")) / "tower"
    rewrites = encoder_onnx.lean_onnx_file, encoder_onnx.prefix_onnx_file
    encoder_onnx.lean_onnx_file = encoder_onnx.prefix_onnx_file = lambda *args: False
    try:
        encoder_onnx._export(fp32, "static", target)
    finally:
        encoder_onnx.lean_onnx_file, encoder_onnx.prefix_onnx_file = rewrites
    return target / "text-int8-static.onnx"


def lean_only(served, exported: Path) -> Path:
    """The exported file with the lean rewrite alone (no stored first-token rows)."""
    import shutil

    from search.encoder_graph import lean_onnx_file

    path = exported.with_name("text-int8-static-lean.onnx")
    shutil.copyfile(exported, path)
    assert lean_onnx_file(path, served.onnx_text.input_names, served.token_arrays)
    return path


def with_tower(encoder, path: Path):
    """A copy of `encoder` whose ONNX text tower is the file at `path` (same gate inputs)."""
    import copy

    from search.batching import Coalescer
    from search.encoder_onnx import _OnnxText

    onnx = encoder.onnx_text
    other = copy.copy(encoder)
    other.onnx_text = _OnnxText(path, onnx.input_names, 1, onnx.reference, onnx.probe_inputs, onnx.parity_min, force=True)  # fmt: skip
    other.text_coalescer = Coalescer(other._encode_queries, max_batch=16)
    assert other.onnx_text.session() is not None
    return other


def time_options(served, exported: Path, queries: list[str]) -> list[dict]:
    """CPU ms per query of the served session (search.encoder_onnx.session_options)
    against the exported graph and one option changed at a time, interleaved query by query in
    rotating order, alone and in a batch of 4 (process CPU); whether every output is
    bit-identical to the served one."""
    import numpy as np
    import onnxruntime as ort

    from search.encoder_onnx import session_options

    def opened(path, threads=1, spin=False, **changes):
        options = session_options(threads, spinning=spin)
        for name, value in changes.items():
            setattr(options, name, value)
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    lean = served.onnx_text.path
    sessions = {
        "served: lean + stored first token": opened(lean),
        "exported graph (before)": opened(exported),
        "lean graph only": opened(lean_only(served, exported)),
        "memory arena off": opened(lean, enable_cpu_mem_arena=False),
        "memory pattern off": opened(lean, enable_mem_pattern=False),
        "graph level extended": opened(lean, graph_optimization_level=ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED),
        "graph level basic": opened(lean, graph_optimization_level=ort.GraphOptimizationLevel.ORT_ENABLE_BASIC),
        "2 intra-op threads, no spinning": opened(lean, threads=2),
    }  # fmt: skip

    def plain(session):
        return lambda feeds: session.run(["embedding"], feeds)[0]

    def bound(session):
        def run(feeds):
            binding = session.io_binding()
            for name, value in feeds.items():
                binding.bind_cpu_input(name, value)
            binding.bind_output("embedding")
            session.run_with_iobinding(binding)
            return binding.copy_outputs_to_cpu()[0]

        return run

    calls = {name: plain(session) for name, session in sessions.items()}
    calls["IOBinding"] = bound(sessions["served: lean + stored first token"])
    names = served.onnx_text.input_names
    cpu = {name: ([], []) for name in calls}
    same = dict.fromkeys(calls, True)
    order = list(calls)
    for i, query in enumerate(queries):
        company = [query, *queries[i + 1 : i + 4]] if i + 4 <= len(queries) else [query, *queries[:3]]  # fmt: skip
        feeds = [{n: served.token_arrays(texts)[n] for n in names} for texts in ([query], company)]  # fmt: skip
        reference = [calls["served: lean + stored first token"](f) for f in feeds]
        for name in order[i % len(order) :] + order[: i % len(order)]:  # each takes every turn
            call = calls[name]
            for k, (feed, size) in enumerate(zip(feeds, (1, 4), strict=True)):
                start = time.process_time()
                out = call(feed)
                cpu[name][k].append((time.process_time() - start) * 1000 / size)
                same[name] &= bool(np.array_equal(out, reference[k]))
    # Apart and last: a spinning pool's threads burn CPU for tens of ms after each call, which
    # would land on whatever ran next; counted here over the call and the 250 ms after it.
    spinning, name = opened(lean, threads=2, spin=True), "2 intra-op threads, spinning"
    cpu[name], same[name] = ([], []), True
    for query in queries[:20]:
        feed = {n: served.token_arrays([query])[n] for n in names}
        start = time.process_time()
        out = spinning.run(["embedding"], feed)[0]
        time.sleep(0.25)
        cpu[name][0].append((time.process_time() - start) * 1000)
        same[name] &= bool(np.array_equal(out, calls["served: lean + stored first token"](feed)))
    base = statistics.median(cpu["served: lean + stored first token"][0])
    return [
        {
            "session": name,
            "CPU ms / query (alone)": round(statistics.median(alone), 3),
            "x served": round(statistics.median(alone) / base, 3),
            "CPU ms / query (batch 4)": round(statistics.median(four), 3) if four else None,
            "bit-identical": same[name],
        }
        for name, (alone, four) in cpu.items()
    ]


def main() -> None:
    args = parse_args()
    import numpy as np
    import torch

    from bench.common import setup_django
    from bench.search import _model_dir, unique_queries

    setup_django(tempfile.mkdtemp(prefix="bench-onnx-"))
    torch.set_num_threads(1)
    encoders = load_encoders(str(_model_dir()))
    cpu, cpu4, cosines, moved = time_encoders(encoders, unique_queries(args.queries, seed=5))
    base = statistics.median(cpu["torch int8"])
    rows = [
        {
            "text tower": name,
            "median CPU ms (batch 1)": round(statistics.median(cpu[name]), 2),
            "x torch int8": round(statistics.median(cpu[name]) / base, 2),
            "CPU ms per query (batch 4)": round(statistics.median(cpu4[name]), 2),
            "gate parity": encoders[name].describe()["text_parity" if "onnx" in name else "parity"],
            "min cosine to torch fp32": round(min(cosines[name]), 4),
            "max |alone - in batch of 4|": float(f"{moved[name]:.1e}"),
        }
        for name in encoders
    ]
    print_table(rows)
    queries = unique_queries(args.queries, seed=6)
    served = time_served(encoders["onnx int8"], queries)
    print_table(served)
    exported = exported_graph(encoders["torch fp32"])
    options = time_options(encoders["onnx int8"], exported, queries)
    print_table(options)
    worker = []
    if args.threads > 1:
        static, dynamic = encoders["onnx int8"], encoders["onnx int8 dynamic"]
        before = with_tower(static, exported)
        configs = {"static int8, coalesced (served)": (static, 16), "static int8, exported graph, coalesced (before)": (before, 16), "dynamic int8, coalesced": (dynamic, 16), "dynamic int8, one a pass": (dynamic, 1)}  # fmt: skip
        worker = time_worker(configs, queries, args.threads, args.seconds, args.glue_ms)
        print_table(worker)
    emit_json({"bench": "onnx_text", "queries": args.queries, "rows": rows, "served": served, "options": options, "worker": worker, "machine": machine(), "np": np.__version__}, args.json)  # fmt: skip


if __name__ == "__main__":
    main()
