"""The random benchmark model's vocabulary: a query must cost the text tower what it costs the
real CLIP tokenizer (one position per everyday word), while any text still tokenises."""

import pytest

from demo.random_model import CLIP_VOCAB_SIZE, COMMON_WORDS, _write_vocab


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import CLIPTokenizer

    path = tmp_path_factory.mktemp("vocab")
    vocab, merges, size = _write_vocab(path, COMMON_WORDS, CLIP_VOCAB_SIZE)
    assert size == CLIP_VOCAB_SIZE
    return CLIPTokenizer(vocab=str(vocab), merges=str(merges))


def test_every_common_word_is_one_token(tokenizer):
    spelled_out = [w for w in COMMON_WORDS if len(tokenizer(w)["input_ids"]) != 3]  # bos, w, eos
    assert spelled_out == []


def test_a_shopper_query_costs_one_position_per_word(tokenizer):
    ids = tokenizer("Fluffy striped SALMON pillow")["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids)[1:-1] == [
        "fluffy</w>",
        "striped</w>",
        "salmon</w>",
        "pillow</w>",
    ]


def test_unknown_words_emoji_and_rtl_still_tokenise_byte_by_byte(tokenizer):
    for text in ["zyzzyva", "🍵 mug", "כוס קפה", "Brand042"]:
        ids = tokenizer(text)["input_ids"]
        assert len(ids) > 3
        assert max(ids) < CLIP_VOCAB_SIZE
        assert tokenizer.decode(ids, skip_special_tokens=True).replace(" ", "") == text.lower().replace(" ", "")  # fmt: skip


def test_random_model_families_save_and_refuse_unknown_names(tmp_path):
    from django.core.management import call_command
    from django.core.management.base import CommandError
    from transformers import AutoConfig

    from demo.random_model import save_random_model

    call_command("create_random_model", str(tmp_path / "s2"), "--family", "siglip2")
    assert AutoConfig.from_pretrained(tmp_path / "s2").model_type == "siglip2"
    assert (tmp_path / "s2" / "processor_config.json").is_file()
    with pytest.raises(ValueError, match="unknown family"):
        save_random_model(tmp_path / "x", family="align")
    with pytest.raises(CommandError, match="unknown size"):
        call_command(
            "create_random_model", str(tmp_path / "y"), "--family", "siglip", "--size", "vit-b-32"
        )


def test_download_model_lists_recommended_models_of_every_family(capsys):
    from django.core.management import call_command

    call_command("download_model", "--list")
    out = capsys.readouterr().out
    for family in ("openai/clip", "google/siglip-", "google/siglip2", "chinese-clip", "AltCLIP"):
        assert family in out
    assert "multilingual" in out
