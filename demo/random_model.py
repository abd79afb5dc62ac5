"""Build and save a random-weight CLIP (model + processor) with `save_pretrained`.

Why: the Hugging Face hub is not reachable from CI or from this project's build machines, yet the
encoder must be exercised through the real `from_pretrained` code path. `tiny` is a few-hundred-KB
model for tests and offline demos; `vit-b-32` has the exact architecture and vocabulary size of
`openai/clip-vit-base-patch32` (random weights), with everyday shopping words as single tokens, so
benchmarks measure the real cost of a forward pass, of a text query and the real model's memory.
Random weights give meaningless similarities; never use them to judge search quality.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

SIZES = ("tiny", "vit-b-32")
CLIP_VOCAB_SIZE = 49_408


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


# Words a product search meets, one token each in CLIP's real 49,408-token vocabulary. The
# ViT-B/32-shaped model gets merges that make them single tokens too, so a benchmark query costs
# the text tower as many positions as it would cost the real model (spelled out byte by byte,
# "fluffy striped salmon pillow" would be 29 positions instead of about 6).
_COMMON_WORDS_TEXT = """
a an and the for with of in on to by from set pack new sale big small large tall long short round
square soft hard light dark warm cold cozy cosy modern vintage classic rustic minimal sporty
elegant fluffy striped dotted checked floral plain chunky washed shiny matte retro luxury cheap
red green blue black white grey gray navy salmon yellow orange pink purple brown beige gold golden
silver teal olive cream ivory charcoal mustard coral mint lilac sage rose wooden ceramic glass
steel linen cotton wool leather velvet bamboo marble brass copper enamel stoneware rattan denim
silk oak walnut pine plastic metal paper stone clay iron chair table lamp vase mug cup cushion
pillow rug fork spoon knife plate bowl kettle basket mirror clock shelf stool blanket curtain jug
candle sofa bed desk shirt dress skirt jacket coat sneaker sneakers boot boots shoe shoes hat cap
scarf bag handbag backpack wallet belt watch ring necklace earrings sock socks towel sheet throw
cutlery kitchen living room bedroom bathroom dining garden office outdoor lighting kids baby men
women home decor gift toy book pen phone case laptop bottle jar pot pan tray box frame poster
"""
COMMON_WORDS = tuple(_COMMON_WORDS_TEXT.split())


def _bpe(pieces: list[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    """Byte-pair encoding of one word: merge the best-ranked adjacent pair until none applies."""
    while len(pieces) > 1:
        pairs = [
            (ranks.get(pair, len(ranks)), i) for i, pair in enumerate(itertools.pairwise(pieces))
        ]
        rank, i = min(pairs)
        if rank == len(ranks):
            break
        pieces = [*pieces[:i], pieces[i] + pieces[i + 1], *pieces[i + 2 :]]
    return pieces


def _write_vocab(path: Path, words: tuple[str, ...] = (), size: int = 0) -> tuple[Path, Path, int]:
    """A byte-level BPE vocabulary: any UTF-8 text (emoji and RTL included) tokenises exactly as
    CLIP's tokenizer machinery does; `words` become single tokens through merges; `size` pads the
    vocabulary (unused tokens) to the real model's embedding-table size.
    """
    alphabet = list(_bytes_to_unicode().values())
    tokens = alphabet + [a + "</w>" for a in alphabet]
    known, ranks = set(tokens), {}
    for word in words:
        # As BPE training would: tokenise the word with the merges so far, then merge what is
        # left from left to right. New merges rank after every old one, so earlier words keep
        # tokenising as before.
        pieces = _bpe([*word[:-1], word[-1] + "</w>"], ranks)
        merged = pieces[0]
        for piece in pieces[1:]:
            ranks[(merged, piece)] = len(ranks)
            merged += piece
            if merged not in known:
                known.add(merged)
                tokens.append(merged)
    merges = [f"{a} {b}" for a, b in ranks]
    special = ["<|startoftext|>", "<|endoftext|>"]
    tokens += [f"<|unused{i}|>" for i in range(max(0, size - len(tokens) - len(special)))]
    tokens += special
    vocab = {tok: i for i, tok in enumerate(dict.fromkeys(tokens))}
    vocab_file = path / "vocab.json"
    merges_file = path / "merges.txt"
    vocab_file.write_text(json.dumps(vocab), encoding="utf-8")
    merges_file.write_text("#version: 0.2\n" + "".join(f"{m}\n" for m in merges), encoding="utf-8")
    return vocab_file, merges_file, len(vocab)


def _config(size: str, vocab_size: int):
    """CLIPConfig and image side of a CLIP size: mostly the two sizes' shapes, written out as data
    (hence about 50 lines)."""
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
        # Architecture of openai/clip-vit-base-patch32, vocabulary size included (see _write_vocab).
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
    from transformers import CLIPImageProcessorPil, CLIPModel, CLIPProcessor, CLIPTokenizer

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if size == "vit-b-32":
        vocab_file, merges_file, vocab_size = _write_vocab(path, COMMON_WORDS, CLIP_VOCAB_SIZE)
    else:
        vocab_file, merges_file, vocab_size = _write_vocab(path)
    config, image_size = _config(size, vocab_size)
    torch.manual_seed(seed)
    model = CLIPModel(config).eval()
    tokenizer = CLIPTokenizer(vocab=str(vocab_file), merges=str(merges_file))
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
    )
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(path)
    model.save_pretrained(path)
    return path


FAMILIES = ("clip", "siglip", "siglip2", "chinese_clip", "altclip")
# SigLIP towers read texts padded to this many tokens (64 in the released models).
SIGLIP_TEXT_TOKENS = 64


def _gemma_tokenizer(vocab_size: int = 0):
    """A Gemma-style tokenizer (SigLIP 2's kind): letters, "▁" for spaces and byte fallback, so
    text in any script tokenises; `vocab_size` pads the table to a real model's size."""
    from transformers import GemmaTokenizer

    specials = ["<pad>", "<eos>", "<bos>", "<unk>"]
    pieces = [f"<0x{b:02X}>" for b in range(256)] + ["▁"]
    pieces += [chr(c) for c in range(ord("a"), ord("z") + 1)] + list("0123456789")
    pieces += [f"<unused{i}>" for i in range(max(0, vocab_size - len(specials) - len(pieces)))]
    vocab = {token: i for i, token in enumerate(specials + pieces)}
    # Right padding, as SigLIP 2's released tokenizer: the tower pools the last position.
    return GemmaTokenizer(vocab=vocab, merges=[], padding_side="right"), len(vocab)


def _sentencepiece_tokenizer(path: Path):
    """SigLIP's own tokenizer (SentencePiece, what google/siglip-* ship): a tiny unigram model
    trained on shopping words, with byte fallback so any script tokenises."""
    import sentencepiece
    from transformers import SiglipTokenizer

    corpus = path / "spm-corpus.txt"
    lines = [" ".join(COMMON_WORDS[i : i + 8]) for i in range(0, len(COMMON_WORDS), 8)]
    corpus.write_text("\n".join(lines * 4), encoding="utf-8")
    sentencepiece.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(path / "spiece"),
        vocab_size=400,
        model_type="unigram",
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        pad_piece="<pad>",
        eos_piece="</s>",
        byte_fallback=True,
        character_coverage=1.0,
        minloglevel=2,
    )
    corpus.unlink()
    tokenizer = SiglipTokenizer(vocab_file=str(path / "spiece.model"))
    (path / "spiece.model").unlink()
    (path / "spiece.vocab").unlink()
    return tokenizer, len(tokenizer)


_SIGLIP_SHAPES = {
    # size: text/vision width, MLP, layers, heads, image side, patch
    "tiny": (32, 64, 2, 2, 32, 8),
    # google/siglip-base-patch16-224 / siglip2-base-patch16-224 (vocabularies 32k / 256k).
    "base": (768, 3072, 12, 12, 224, 16),
}


def _siglip_configs(family: str, size: str, vocab_size: int) -> tuple[dict, dict]:
    if size not in _SIGLIP_SHAPES:
        raise ValueError(f"unknown size {size!r} for {family}; choose one of tiny, base")
    width, mlp, layers, heads, side, patch = _SIGLIP_SHAPES[size]
    tower = {
        "hidden_size": width,
        "intermediate_size": mlp,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
    }
    text = {
        **tower,
        "vocab_size": vocab_size,
        "max_position_embeddings": SIGLIP_TEXT_TOKENS if size == "base" else 16,
        "pad_token_id": 0,
        "eos_token_id": 1,
        "bos_token_id": 2,
    }
    vision = {**tower, "patch_size": patch}
    if family == "siglip2":
        # Siglip2Processor applies 16-pixel patches, 256 of them, whatever its image processor
        # was saved with: the random model uses that grid at every size.
        vision["patch_size"], vision["num_patches"] = 16, 256
    else:
        vision["image_size"] = side
    return text, vision


def save_random_model(
    path: str | Path, *, family: str = "clip", size: str = "tiny", seed: int = 0
) -> Path:
    """A loadable random-weight model of `family` (clip, siglip, siglip2) saved at `path`.

    CLIP sizes are `SIZES`; SigLIP sizes are tiny and base (the released base models' shapes,
    vocabulary size included, for speed and memory benchmarks).
    """
    if family == "clip":
        return save_random_clip(path, size=size, seed=seed)
    if family in ("chinese_clip", "altclip"):
        if size != "tiny":
            raise ValueError(f"unknown size {size!r} for {family}; only tiny")
        return save_random_bilingual(path, family=family, seed=seed)
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose one of {', '.join(FAMILIES)}")
    import torch

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if family == "siglip" and size == "tiny":
        tokenizer, vocab_size = _sentencepiece_tokenizer(path)
    else:
        # Base shapes: the released vocabulary sizes (a SentencePiece model that large cannot
        # be trained on a few words), for speed and memory; the tokenizer kind costs the same.
        real_vocab = {"siglip": 32_000, "siglip2": 256_000}[family] if size == "base" else 0
        tokenizer, vocab_size = _gemma_tokenizer(real_vocab)
    text, vision = _siglip_configs(family, size, vocab_size)
    torch.manual_seed(seed)
    model, processor = _siglip_model(family, text, vision, tokenizer)
    model.eval().save_pretrained(path)
    processor.save_pretrained(path)
    return path


def _siglip_model(family: str, text: dict, vision: dict, tokenizer):
    """A random SigLIP or SigLIP 2 model and its processor (fixed-size or patch-budget images)."""
    from transformers import (
        Siglip2Config,
        Siglip2ImageProcessorPil,
        Siglip2Model,
        Siglip2Processor,
        SiglipConfig,
        SiglipImageProcessorPil,
        SiglipModel,
        SiglipProcessor,
    )

    if family == "siglip":
        model = SiglipModel(SiglipConfig(text_config=text, vision_config=vision))
        side = vision["image_size"]
        image_processor = SiglipImageProcessorPil(size={"height": side, "width": side})
        return model, SiglipProcessor(image_processor=image_processor, tokenizer=tokenizer)
    model = Siglip2Model(Siglip2Config(text_config=text, vision_config=vision))
    image_processor = Siglip2ImageProcessorPil(
        patch_size=vision["patch_size"], max_num_patches=vision["num_patches"]
    )
    return model, Siglip2Processor(image_processor=image_processor, tokenizer=tokenizer)


def _wordpiece_tokenizer():
    """A BERT WordPiece tokenizer (ChineseCLIP's kind): letters, word pieces and CJK characters."""
    from transformers import BertTokenizer

    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list("0123456789")
    tokens += letters + [f"##{c}" for c in letters] + list("红色蓝的杯子衬衫木椅")
    tokens += list(COMMON_WORDS[:60])
    vocab = {token: i for i, token in enumerate(dict.fromkeys(tokens))}
    return BertTokenizer(vocab=vocab), len(vocab)


def _unigram_tokenizer():
    """An XLM-R unigram tokenizer (AltCLIP's kind): "▁"-prefixed words and single characters."""
    from transformers import XLMRobertaTokenizer

    pieces = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [(chr(c), -5.0) for c in range(ord("a"), ord("z") + 1)]
    pieces += [(f"▁{w}", -3.0) for w in COMMON_WORDS[:60]]
    pieces += [(c, -6.0) for c in "红色蓝的杯子衬衫木椅"]
    pieces.append(("<mask>", 0.0))
    return XLMRobertaTokenizer(vocab=pieces, model_max_length=64), len(pieces)


def _tiny_tower() -> dict:
    return {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
    }


def save_random_bilingual(path: str | Path, *, family: str, seed: int = 0) -> Path:
    """A tiny random ChineseCLIP (BERT text tower) or AltCLIP (XLM-R text tower)."""
    import torch
    from transformers import (
        AltCLIPConfig,
        AltCLIPModel,
        AltCLIPProcessor,
        ChineseCLIPConfig,
        ChineseCLIPImageProcessorPil,
        ChineseCLIPModel,
        ChineseCLIPProcessor,
        CLIPImageProcessorPil,
    )

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    vision = {**_tiny_tower(), "image_size": 32, "patch_size": 8}
    square = {"height": 32, "width": 32}
    torch.manual_seed(seed)
    if family == "chinese_clip":
        tokenizer, vocab_size = _wordpiece_tokenizer()
        text = {**_tiny_tower(), "vocab_size": vocab_size, "max_position_embeddings": 64}
        config = ChineseCLIPConfig(text_config=text, vision_config=vision, projection_dim=16)
        model = ChineseCLIPModel(config)
        images = ChineseCLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size=square)
        processor = ChineseCLIPProcessor(image_processor=images, tokenizer=tokenizer)
    elif family == "altclip":
        tokenizer, vocab_size = _unigram_tokenizer()
        text = {
            **_tiny_tower(),
            "vocab_size": vocab_size,
            "max_position_embeddings": 66,  # XLM-R: 64 tokens + the padding offset of 2
            "project_dim": 16,
            "pad_token_id": 1,
        }
        config = AltCLIPConfig(text_config=text, vision_config=vision, projection_dim=16)
        model = AltCLIPModel(config)
        images = CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size=square)
        processor = AltCLIPProcessor(image_processor=images, tokenizer=tokenizer)
    else:
        raise ValueError(f"unknown family {family!r}")
    model.eval().save_pretrained(path)
    processor.save_pretrained(path)
    return path
