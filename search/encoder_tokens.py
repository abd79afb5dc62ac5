"""Text queries tokenised by the fast `tokenizers` backend directly, as int64 numpy arrays.

Why: transformers' tokenizer call (argument checks, backend reconfiguration, BatchEncoding, torch
tensors) costs 0.13-0.4 ms CPU per query against 0.02 ms for the Rust backend it wraps. This
module calls a private copy of that backend (the processor's own object is reconfigured by every
processor call, so it cannot be shared) with the processor's truncation, and pads in numpy the way
the processor pads (to the longest text, or to the full length for SigLIP: TEXT_PADDING).

Guarantee: `direct_tokenizer` returns a tokenizer only when it gives exactly the processor's
arrays (same keys, same ids and masks) on CHECK_TEXTS, one at a time and as one batch; otherwise
None and the processor serves (slow tokenizers, chat-marked or exotic wrappers).
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from search.encoder_model import ClipEncoder

logger = logging.getLogger("search.encoder")

# Texts both paths must tokenise alike before the direct one serves: plain queries, case, accents,
# scripts without spaces, emoji, control/odd whitespace, special-token look-alikes, the empty
# text, and one far past every model's text length (truncation).
CHECK_TEXTS = (
    "red chair", "a fluffy striped salmon pillow for the sofa", "Navy LINEN Shirt", "Café crème brûlée",
    "שולחן עץ", "椅子 红色", "🍵 tea cup", "  tabs\tand\nnew lines  ", "<|endoftext|> <s> [CLS]", "",
    "kids rain boots size 30, 2-pack (EU)!", " ".join(["word"] * 200),
)  # fmt: skip


class DirectTokenizer:
    """Calls a private copy of the processor's fast backend; pads like the processor."""

    def __init__(self, backend, *, keys: Sequence[str], max_length: int, pad_to_max: bool, pad_id: int, pad_type_id: int, left: bool):  # fmt: skip
        self.backend = backend
        self.keys = tuple(keys)
        self.max_length = max_length
        self.pad_to_max = pad_to_max
        self.pad = {"input_ids": pad_id, "attention_mask": 0, "token_type_ids": pad_type_id}
        self.left = left

    def __call__(self, texts: Sequence[str]) -> dict[str, NDArray[np.int64]]:
        return self.arrays(self.encode(texts))

    def encode(self, texts: Sequence[str]) -> list[Any]:
        # encode() per text, not encode_batch(): no rayon thread pool in a web worker.
        return [self.backend.encode(text) for text in texts]

    def groups(self, encodings: Sequence[Any], spread: int) -> list[list[int]]:
        """Indices of `encodings` in groups whose lengths differ by at most `spread` tokens,
        shortest first: padding a 6-token query to a pasted 77-token paragraph costs ~12x its
        own forward, an extra pass only the weights' read again (~6 tokens' worth)."""
        if self.pad_to_max:
            return [list(range(len(encodings)))]
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
        groups: list[list[int]] = []
        for i in order:
            if groups and len(encodings[i].ids) - len(encodings[groups[-1][0]].ids) <= spread:
                groups[-1].append(i)
            else:
                groups.append([i])
        return groups

    def arrays(self, encodings: Sequence[Any]) -> dict[str, NDArray[np.int64]]:
        """The tower's inputs for `encodings`, padded like the processor pads."""
        width = self.max_length if self.pad_to_max else max(len(e.ids) for e in encodings)
        fields = {"input_ids": "ids", "attention_mask": "attention_mask", "token_type_ids": "type_ids"}  # fmt: skip
        out = {}
        for key in self.keys:
            rows = [getattr(encoding, fields[key]) for encoding in encodings]
            if all(len(row) == width for row in rows):  # one query: nothing to pad
                out[key] = np.array(rows, dtype=np.int64)
                continue
            array = np.full((len(rows), width), self.pad[key], dtype=np.int64)
            for i, row in enumerate(rows):
                if self.left:
                    array[i, width - len(row) :] = row
                else:
                    array[i, : len(row)] = row
            out[key] = array
        return out


# One checked copy per processor tokenizer: the fp32 and int8 encoders share the processor, and a
# copy of CLIP's BPE tables is ~9 MB.
_checked: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def direct_tokenizer(encoder: ClipEncoder) -> DirectTokenizer | None:
    """A DirectTokenizer for `encoder`'s processor, or None where it would not be exact."""
    wrapper = encoder.processor.tokenizer
    key = (encoder.model.config.model_type, encoder.model.config.text_config.max_position_embeddings)  # fmt: skip
    with contextlib.suppress(TypeError):  # a tokenizer that takes no weak reference: not shared
        if key in _checked.get(wrapper, {}):
            return _checked[wrapper][key]
    result = _checked_candidate(encoder)
    with contextlib.suppress(TypeError):
        _checked.setdefault(wrapper, {})[key] = result
    return result


def _checked_candidate(encoder: ClipEncoder) -> DirectTokenizer | None:
    try:
        candidate = _build(encoder)
        if candidate is not None and _agrees(encoder, candidate):
            return candidate
    except Exception as exc:  # an unusual tokenizer: the processor serves, only slower
        logger.info("direct tokenizer unavailable for %s (%s)", encoder.model_name, exc)
        return None
    logger.info("direct tokenizer differs from the processor for %s; processor", encoder.model_name)
    return None


def _build(encoder: ClipEncoder) -> DirectTokenizer | None:
    from tokenizers import Tokenizer

    from search.encoder_model import TEXT_INPUTS, TEXT_PADDING, max_text_tokens

    wrapper = encoder.processor.tokenizer
    backend = getattr(wrapper, "backend_tokenizer", None)
    if not getattr(wrapper, "is_fast", False) or backend is None or wrapper.pad_token_id is None:
        return None
    max_length = max_text_tokens(encoder.model, encoder.processor)
    copy = Tokenizer.from_str(backend.to_str())
    copy.no_padding()
    copy.enable_truncation(max_length, strategy="longest_first", direction=wrapper.truncation_side)
    copy.encode_special_tokens = bool(getattr(wrapper, "split_special_tokens", False))
    return DirectTokenizer(
        copy,
        keys=[k for k in TEXT_INPUTS if k in wrapper.model_input_names],
        max_length=max_length,
        pad_to_max=TEXT_PADDING.get(encoder.model.config.model_type) == "max_length",
        pad_id=int(wrapper.pad_token_id),
        pad_type_id=int(getattr(wrapper, "pad_token_type_id", 0) or 0),
        left=wrapper.padding_side == "left",
    )


def _agrees(encoder: ClipEncoder, candidate: DirectTokenizer) -> bool:
    for batch in [[text] for text in CHECK_TEXTS] + [list(CHECK_TEXTS)]:
        if not _same(encoder.tokenize(batch), candidate(encoder._texts_in(batch))):
            return False
    return True


def _same(reference: dict[str, Any], got: dict[str, NDArray[np.int64]]) -> bool:
    if set(reference) != set(got):
        return False
    return all(np.array_equal(reference[k].numpy(), got[k]) for k in reference)
