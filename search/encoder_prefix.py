"""Causal text towers whose every text starts with the same token: that token's rows stored.

Why: CLIP's text tower is causal and every tokenised text starts with the start token, so that
token's row (its keys and values in every layer, and its residual row at the end) is the same for
every query. Computed once here and stored in the file, each pass computes one row fewer: ~4% CPU
for a 6-token query at 1 thread (bench.onnx_text), as the tower costs ~0.4 ms a token.

How: each attention layer's keys and values (the MatMul operands around its Softmax) get the
stored row 0 concatenated in front, its mask loses row 0, the residual stream starts at row 1,
and the stored row 0 is put back in front before the last LayerNormalization (so pooling indices
are unchanged).

Guarantee: `prefix_onnx_file` rewrites a file only when the outputs are bit-identical to the
graph it was given on texts from the encoder's own tokenizer (alone and in padded batches, one
word to past the model's length) and on the lean checks (search.encoder_graph); a tower that is
not causal, or a tokenizer whose texts do not all start with the same token, fails that and the
file stays as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from search.encoder_graph import (
    CHECK_SHAPES,
    PROBE_SHAPES,
    Feeds,
    _feeds,
    _same_outputs,
    _session,
    node_links,
)
from search.encoder_tokens import CHECK_TEXTS

logger = logging.getLogger("search.encoder")


def prefix_onnx_file(path: Path, names: Sequence[str], token_arrays: Callable[[list[str]], Feeds]) -> bool:  # fmt: skip
    """Store the first token's rows in the tower at `path` where that is bit-identical; True
    when rewritten."""
    import onnx

    try:
        model = onnx.load(str(path))
        sample = token_arrays([" ".join(["word"] * 400)])
        width = int(sample["input_ids"].shape[1])
        probes = [_feeds(sample, names, b, min(t, width)) for b, t in PROBE_SHAPES]
        texts = [[text] for text in CHECK_TEXTS] + [list(CHECK_TEXTS), list(CHECK_TEXTS[:4])]
        checks = [{n: token_arrays(batch)[n] for n in names} for batch in texts]
        checks += [_feeds(sample, names, b, min(t, width) or width) for b, t in CHECK_SHAPES]
        rewritten = _prefixed(model, names, probes)
        if rewritten is None:
            return False
        if not _same_outputs(model, rewritten, checks):
            logger.info("stored first-token rows change %s's outputs; not used", path.name)
            return False
    except Exception as exc:  # an unusual graph: the given one is correct, only slower
        logger.warning("stored first-token rows unavailable for %s (%s)", path.name, exc)
        return False
    onnx.save(rewritten, str(path))
    return True


def _attention(model) -> list[tuple[str, str, str]] | None:
    """(keys, values, mask) per attention layer, as the exporter writes them: Softmax(Add(
    MatMul(q [* s], k [* s]), mask)) [-> Where(IsNaN)] -> MatMul(., v); None for another shape."""
    graph = model.graph
    producer, consumers = node_links(graph)
    constants = {i.name for i in graph.initializer} | {o for n in graph.node if n.op_type == "Constant" for o in n.output}  # fmt: skip
    layers = []
    for softmax in (n for n in graph.node if n.op_type == "Softmax"):
        add = producer.get(softmax.input[0])
        if add is None or add.op_type != "Add":
            return None
        scores = producer.get(add.input[0])
        if scores is None or scores.op_type != "MatMul":
            return None
        keys = scores.input[1]
        scaled = producer.get(keys)
        if scaled is not None and scaled.op_type == "Mul" and scaled.input[1] in constants:
            keys = scaled.input[0]
        probs = softmax.output[0]
        after = consumers.get(probs, [])
        if len(after) == 2 and {n.op_type for n in after} == {"IsNaN", "Where"}:
            probs = next(n for n in after if n.op_type == "Where").output[0]
        mixes = [n for n in consumers.get(probs, []) if n.op_type == "MatMul" and n.input[0] == probs]  # fmt: skip
        if len(mixes) != 1:
            return None
        layers.append((keys, mixes[0].input[1], add.input[1]))
    return layers or None


def _prefixed(model, names: Sequence[str], probes: list[Feeds]):
    """A copy of `model` with the first token's rows stored, or None where its layout is not
    the one this knows."""
    import onnx

    layers = _attention(model)
    norms = [n for n in model.graph.node if n.op_type == "LayerNormalization"]
    if layers is None or len(norms) < 2:
        return None
    stream, last = norms[0].input[0], norms[-1].input[0]
    tensors = [x for keys, values, _ in layers for x in (keys, values)] + [stream, last]
    session = _session(model, tensors)
    shapes = [[v.shape for v in session.run(tensors, feed)] for feed in probes]
    first = dict(zip(tensors, session.run(tensors, probes[0]), strict=True))
    del session
    lengths = [feed[names[0]].shape[1] for feed in probes]
    axes = [_token_axis([s[i] for s in shapes], lengths) for i in range(len(tensors))]
    if None in axes:
        return None
    rewritten = onnx.ModelProto()
    rewritten.CopyFrom(model)
    _rewrite(rewritten, names[0], layers, dict(zip(tensors, axes, strict=True)), first, stream, last)  # fmt: skip
    return rewritten


def _token_axis(shapes: list[tuple], lengths: list[int]) -> int | None:
    """The one axis whose size is the token count in every probe."""
    axes = [d for d in range(len(shapes[0])) if all(s[d] == n for s, n in zip(shapes, lengths, strict=True))]  # fmt: skip
    return axes[0] if len(axes) == 1 else None


def _rewrite(model, ids: str, layers, axes: dict[str, int], first: dict, stream: str, last: str) -> None:  # fmt: skip
    from onnx import helper, numpy_helper

    graph = model.graph
    nodes, initializers, rename = [], [], {}

    def constant(name, array):
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(op, inputs, output, **attrs):
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    one, zero = constant("prefix/one", np.array([1], np.int64)), constant("prefix/zero", np.array([0], np.int64))  # fmt: skip
    end = constant("prefix/end", np.array([np.iinfo(np.int64).max], np.int64))
    batch = node("Slice", [node("Shape", [ids], "prefix/ids_shape"), zero, one], "prefix/batch")

    shapes: dict[tuple, str] = {}  # one batch-sized shape per row shape, not one per layer

    def stored_in_front(name: str, key: str) -> None:
        """`name` gets the stored row 0 of `key`, repeated over the batch, in front."""
        axis = axes[key]
        row = np.take(first[key], [0], axis=axis)[:1]
        if row.shape[1:] not in shapes:
            tail = constant(f"prefix/tail{len(shapes)}", np.array(row.shape[1:], np.int64))
            shapes[row.shape[1:]] = node("Concat", [batch, tail], f"prefix/shape{len(shapes)}", axis=0)  # fmt: skip
        shape = shapes[row.shape[1:]]
        rows = node("Expand", [constant(f"prefix/{key}/row0", row), shape], f"prefix/{key}/rows")
        rename[key] = node("Concat", [rows, name], f"prefix/{key}/full", axis=axis)

    for keys, values, _ in layers:
        stored_in_front(keys, keys)
        stored_in_front(values, values)
    stored_in_front(last, last)
    for mask in dict.fromkeys(m for _, _, m in layers):
        rename[mask] = node("Slice", [mask, one, end, constant(f"prefix/{mask}/axis", np.array([-2], np.int64))], f"prefix/{mask}/rows")  # fmt: skip
    later = node("Slice", [stream, one, end, constant("prefix/stream/axis", np.array([axes[stream]], np.int64))], "prefix/stream/rows")  # fmt: skip
    for existing in graph.node:  # our own nodes (not in the graph yet) read the old tensors
        for k, name in enumerate(existing.input):
            if name in rename:
                existing.input[k] = rename[name]
            elif name == stream and existing.op_type != "Shape":  # masks are sized from it
                existing.input[k] = later
    graph.initializer.extend(initializers)
    _sorted(graph, nodes)
    del graph.value_info[:]  # shapes recorded at export no longer hold (one row fewer)


def _sorted(graph, extra: list) -> None:
    """The graph's nodes plus `extra` in an order where every input exists before its use."""
    ready = {i.name for i in graph.initializer} | {i.name for i in graph.input} | {""}
    pending, order = [*graph.node, *extra], []
    while pending:
        rest = []
        for node in pending:
            if all(name in ready for name in node.input):
                order.append(node)
                ready.update(node.output)
            else:
                rest.append(node)
        if len(rest) == len(pending):
            raise ValueError("cycle in the rewritten graph")
        pending = rest
    del graph.node[:]
    graph.node.extend(order)
