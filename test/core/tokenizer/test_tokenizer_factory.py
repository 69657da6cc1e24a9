import json

import pytest
import torch

from faster_core.tokenizer import ActionTokenizer, BinTokenizer, FASTerVQ, FASTTokenizer, load_tokenizer
from faster_core.tokenizer.normalize import quantile_stats

from tokenizer_testdata import smooth_chunks


def saved_tokenizers(root, tiny_config):
    chunks = smooth_chunks(64, 8, 4)
    q01, q99 = quantile_stats(chunks)
    import dataclasses

    torch.manual_seed(0)
    tokenizers = {
        "fastervq": FASTerVQ(dataclasses.replace(tiny_config, q01=q01, q99=q99)),
        "fast": FASTTokenizer.fit(chunks),
        "bins": BinTokenizer.fit(chunks),
    }
    for name, tokenizer in tokenizers.items():
        tokenizer.save_pretrained(root / name)
    return tokenizers, chunks


def test_every_tokenizer_loads_by_path_and_satisfies_the_interface(tmp_path, tiny_config):
    tokenizers, chunks = saved_tokenizers(tmp_path, tiny_config)
    for name, original in tokenizers.items():
        loaded = load_tokenizer(tmp_path / name)
        assert type(loaded) is type(original)
        assert isinstance(loaded, ActionTokenizer)
        tokens = loaded.tokenize(chunks[:4])
        assert tokens == original.tokenize(chunks[:4])
        assert all(0 <= t < loaded.vocab_size for row in tokens for t in row)
        assert loaded.detokenize(tokens).shape == (4, 8, 4)
        if loaded.fixed_length:
            assert {len(row) for row in tokens} == {loaded.tokens_per_chunk}


def test_names_resolve_on_the_search_path(tmp_path, tiny_config, monkeypatch):
    saved_tokenizers(tmp_path, tiny_config)
    monkeypatch.setenv("FASTER_TOKENIZER_PATH", str(tmp_path))
    assert isinstance(load_tokenizer("bins"), BinTokenizer)
    with pytest.raises(ValueError, match="no tokenizer at 'nope'"):
        load_tokenizer("nope")


def test_unknown_type_is_refused(tmp_path):
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"type": "mystery"}))
    with pytest.raises(ValueError, match="unknown tokenizer type 'mystery'"):
        load_tokenizer(tmp_path)
