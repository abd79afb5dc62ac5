"""Lean exported text towers: the shape arithmetic around each Reshape replaced by constants.

Why: torch.onnx.export writes every `view`/`reshape` of the attention as Shape -> Gather ->
Unsqueeze -> Concat -> Reshape, ~20 nodes a layer that ONNX Runtime cannot fold (the batch and
token counts are dynamic). For one short query each node costs ~2 us of dispatch, so they are
~7% of the int8 text tower's CPU (646 nodes after ORT's own optimisation, 410 without them;
bench.onnx_text). Here each Reshape gets a constant target shape instead (0 = that input
dimension, ONNX's `allowzero=0` rule; -1 = the rest), a Reshape that never changes its input's
shape is dropped, and the nodes left feeding nothing go.

How the shapes are known: the tower runs on two probe batches of different sizes and lengths,
and each Reshape's input and output shapes there say which output dimension copies which input
dimension and which are constants. Only shapes change; no arithmetic does.

Guarantee: `lean_onnx_file` rewrites a file only when the lean graph gives bit-identical outputs
to the original on CHECK_SHAPES (one query and padded batches, lengths from 2 to the model's
longest); otherwise it leaves the file as it was and says so in the log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

logger = logging.getLogger("search.encoder")

# (batch, tokens) of the two probes; lengths clipped to the model's. Neither 1 nor a head count
# or width, so a dimension copied from the input is not mistaken for a constant.
PROBE_SHAPES = ((3, 7), (5, 11))
# Passes the lean graph must reproduce bit for bit; 0 tokens means the model's longest text.
CHECK_SHAPES = ((1, 2), (1, 4), (1, 6), (1, 9), (2, 5), (4, 13), (3, 0), (16, 8))

Feeds = dict[str, NDArray[np.int64]]


def node_links(graph) -> tuple[dict, dict[str, list]]:
    """An ONNX graph's wiring: the node writing each value, and the nodes reading it."""
    producer = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    return producer, consumers


def lean_onnx_file(path: Path, names: Sequence[str], token_arrays: Callable[[list[str]], Feeds]) -> bool:  # fmt: skip
    """Rewrite the tower at `path` (inputs `names`) lean where that is bit-identical; True when
    rewritten. `token_arrays` tokenises like the encoder (the probes' token ids)."""
    import onnx

    try:
        model = onnx.load(str(path))
        sample = token_arrays([" ".join(["word"] * 400)])  # one row at the model's longest length
        width = int(sample["input_ids"].shape[1])
        probes = [_feeds(sample, names, b, min(t, width)) for b, t in PROBE_SHAPES]
        checks = [_feeds(sample, names, b, min(t, width) or width) for b, t in CHECK_SHAPES]
        lean = _leaned(model, probes)
        if lean is None:
            return False
        if not _same_outputs(model, lean, checks):
            logger.warning("lean ONNX graph differs from %s; keeping the exported graph", path.name)  # fmt: skip
            return False
    except Exception as exc:  # an unusual graph: the exported one is correct, only slower
        logger.warning("lean ONNX graph unavailable for %s (%s)", path.name, exc)
        return False
    onnx.save(lean, str(path))
    return True


def _feeds(sample: Feeds, names: Sequence[str], batch: int, tokens: int) -> Feeds:
    """`batch` rows of `tokens` of `sample`'s ids (its last id, CLIP's end token, kept last);
    rows after the first padded on the right to fewer and fewer tokens."""
    out = {}
    for name in names:
        row = sample[name][0]
        if name == "attention_mask":
            array = np.ones((batch, tokens), dtype=np.int64)
            for i in range(1, batch):
                array[i, max(1, tokens - i) :] = 0
        else:
            array = np.tile(np.concatenate([row[: tokens - 1], row[-1:]])[None], (batch, 1))
        out[name] = np.ascontiguousarray(array[:, :tokens], dtype=np.int64)
    return out


def _session(model, outputs: Sequence[str] = ()):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    if outputs:
        probe = onnx.ModelProto()
        probe.CopyFrom(model)
        typed = onnx.shape_inference.infer_shapes(model).graph
        types = {v.name: v.type.tensor_type.elem_type for v in [*typed.value_info, *typed.input]}
        have = {o.name for o in probe.graph.output}
        probe.graph.output.extend(helper.make_tensor_value_info(n, types.get(n) or TensorProto.FLOAT, None) for n in outputs if n not in have)  # fmt: skip
        model = probe
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.log_severity_level = 1, 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])  # fmt: skip


def _leaned(model, probes: list[Feeds]):
    """A copy of `model` with constant Reshape targets, or None when no Reshape qualifies."""
    import onnx

    reshapes = [n for n in model.graph.node if n.op_type == "Reshape"]
    tensors = list(dict.fromkeys(x for n in reshapes for x in (n.input[0], n.output[0])))
    if not tensors:
        return None
    session = _session(model, tensors)
    shapes = [dict(zip(tensors, (v.shape for v in session.run(tensors, feed)), strict=True)) for feed in probes]  # fmt: skip
    lean = onnx.ModelProto()
    lean.CopyFrom(model)
    graph = lean.graph
    outputs = {o.name for o in graph.output}
    bypass: dict[str, str] = {}
    changed = 0
    for node in graph.node:
        if node.op_type != "Reshape" or node.output[0] in outputs:
            continue
        target = _target(
            [s[node.input[0]] for s in shapes], [s[node.output[0]] for s in shapes]
        )  # fmt: skip
        if target == "same":
            bypass[node.output[0]] = node.input[0]
        elif target is not None:
            name = f"{node.output[0]}__lean_shape"
            graph.initializer.append(onnx.numpy_helper.from_array(np.array(target, dtype=np.int64), name))  # fmt: skip
            node.input[1] = name
        changed += target is not None
    if not changed:
        return None
    _drop(graph, bypass)
    return lean


def _target(ins: list[tuple], outs: list[tuple]) -> list[int] | str | None:
    """A Reshape's constant target from its probe shapes: "same" when it never changes the
    shape, None when no constant target with at most one -1 describes it."""
    if len({len(o) for o in outs}) != 1:
        return None
    if ins == outs:
        return "same"
    target = []
    for d in range(len(outs[0])):
        if all(d < len(i) and i[d] == o[d] for i, o in zip(ins, outs, strict=True)):
            target.append(0)  # allowzero=0 (the exporter's): 0 copies the input's dimension
        elif len({o[d] for o in outs}) == 1 and outs[0][d] != 0:
            target.append(int(outs[0][d]))
        else:
            target.append(-1)
    return target if target.count(-1) <= 1 else None


def _drop(graph, bypass: dict[str, str]) -> None:
    """Route around the `bypass` Reshapes, then drop every node and initializer nothing needs."""
    nodes = [n for n in graph.node if not (n.op_type == "Reshape" and n.output[0] in bypass)]
    for node in nodes:
        for k, name in enumerate(node.input):
            while name in bypass:
                name = bypass[name]
            node.input[k] = name
    needed = {o.name for o in graph.output}
    keep = []
    for node in reversed(nodes):  # the exporter writes nodes in topological order
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(node.input)
            for attr in node.attribute:  # a subgraph's outer-scope names (If / Loop)
                needed.update(x for g in [attr.g, *attr.graphs] for n in g.node for x in n.input)
    keep.reverse()
    del graph.node[:]
    graph.node.extend(keep)
    initializers = [i for i in graph.initializer if i.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(initializers)


def _same_outputs(model, lean, checks: list[Feeds]) -> bool:
    # one session at a time: an fp32 tower's session holds a copy of its ~250 MB of weights
    outputs = []
    for graph in (model, lean):
        session = _session(graph)
        outputs.append([session.run(None, feed) for feed in checks])
        del session
    before, after = outputs
    for a_outputs, b_outputs in zip(before, after, strict=True):
        for a, b in zip(a_outputs, b_outputs, strict=True):
            if a.shape != b.shape or not np.array_equal(a, b, equal_nan=True):
                return False
    return True
