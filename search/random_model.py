"""Build and save a random-weight CLIP (model + processor) with `save_pretrained`.

Why: the Hugging Face hub is not reachable from CI or from this project's build machines, yet the
encoder must be exercised through the real `from_pretrained` code path. `tiny` is a few-hundred-KB
model for tests and offline demos; `vit-b-32` has the exact architecture of
`openai/clip-vit-base-patch32` (random weights) so benchmarks measure the real cost of a forward pass.
Random weights give meaningless similarities; never use them to judge search quality.
"""

from __future__ import annotations

import json
from pathlib import Path

SIZES = ("tiny", "vit-b-32")


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte-level alphabet: every byte maps to a printable unicode character."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


def _write_tiny_vocab(path: Path) -> tuple[Path, Path, int]:
    """A byte-level BPE vocabulary with no merges: every word is spelled out in bytes.

    Enough to tokenise any UTF-8 text (emoji and RTL included) exactly as CLIP's tokenizer
    machinery does, with a 514-token vocabulary instead of 49,408.
    """
    alphabet = list(_bytes_to_unicode().values())
    tokens = alphabet + [a + "</w>" for a in alphabet] + ["<|startoftext|>", "<|endoftext|>"]
    vocab = {tok: i for i, tok in enumerate(tokens)}
    vocab_file = path / "vocab.json"
    merges_file = path / "merges.txt"
    vocab_file.write_text(json.dumps(vocab), encoding="utf-8")
    merges_file.write_text("#version: 0.2\n", encoding="utf-8")
    return vocab_file, merges_file, len(vocab)


def _config(size: str, vocab_size: int):
    from transformers import CLIPConfig

    # The text tower pools at the end-of-text token, so its id must be the tiny vocabulary's.
    special = {
        "bos_token_id": vocab_size - 2,
        "eos_token_id": vocab_size - 1,
        "pad_token_id": vocab_size - 1,
    }

    if size == "tiny":
        text = {
            "vocab_size": vocab_size,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 77,
            **special,
        }
        vision = {
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        }
        return CLIPConfig(text_config=text, vision_config=vision, projection_dim=16), 32
    if size == "vit-b-32":
        # Architecture of openai/clip-vit-base-patch32; the vocabulary is the tiny one, which
        # changes only the size of the token-embedding table, not the cost of a forward pass.
        text = {
            "vocab_size": vocab_size,
            "hidden_size": 512,
            "intermediate_size": 2048,
            "num_hidden_layers": 12,
            "num_attention_heads": 8,
            "max_position_embeddings": 77,
            **special,
        }
        vision = {
            "hidden_size": 768,
            "intermediate_size": 3072,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "image_size": 224,
            "patch_size": 32,
        }
        return CLIPConfig(text_config=text, vision_config=vision, projection_dim=512), 224
    raise ValueError(f"unknown size {size!r}; choose one of {', '.join(SIZES)}")


def save_random_clip(path: str | Path, *, size: str = "tiny", seed: int = 0) -> Path:
    """Write a loadable random CLIP model directory at `path` and return it."""
    import torch
    from transformers import CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    vocab_file, merges_file, vocab_size = _write_tiny_vocab(path)
    config, image_size = _config(size, vocab_size)
    torch.manual_seed(seed)
    model = CLIPModel(config).eval()
    tokenizer = CLIPTokenizer(vocab=str(vocab_file), merges=str(merges_file))
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
    )
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(path)
    model.save_pretrained(path)
    return path
