#!/usr/bin/env python3
"""Tokenizer fixtures for GGUF vocabularies, from llama.cpp's own vocabulary test files.

llama.cpp keeps vocabulary-only GGUF files with test texts and the ids the model's original
Hugging Face tokenizer gives them (models/ggml-vocab-NAME.gguf, .gguf.inp, .gguf.out, written by its
tests/test-tokenizer-0.py with AutoTokenizer). This script copies the ones Nudge's tests read and adds
expectations computed with transformers 5 + tokenizers from the same vocabulary:

    python3 -m venv /tmp/v && /tmp/v/bin/pip install gguf transformers tokenizers numpy
    git clone --depth 1 https://github.com/ggml-org/llama.cpp /tmp/llama.cpp
    /tmp/v/bin/python scripts/make_gguf_vocab_fixtures.py /tmp/llama.cpp/models

Tests/NudgeLMTests/Fixtures/gguf-vocab/
  llama-spm.gguf        Llama 2's SentencePiece vocabulary (32,000 tokens, scores, byte fallback)
  NAME.inp / NAME.out   llama.cpp's texts and the original tokenizer's ids, for llama-spm and the
                        byte-level vocabularies checked when their GGUF is given (NUDGE_GGUF_VOCAB_DIR)
  llama-spm.json        more texts (special tokens inside text, CRLF, ZWJ emoji, CJK) with ids and
                        decoded text from the legacy SentencePiece shape (Prepend + Replace normalizer,
                        the original Llama 2 tokenizer.json), ids under transformers' Metaspace
                        ("first") shape, and ids of the same vocabulary read as a Gemma file
                        (token order as merge order, no prefix space)
"""
import json
import pathlib
import shutil
import sys

from tokenizers import normalizers
from transformers.integrations.gguf.gguf_tokenizer_mapping import (
    add_gguf_special_tokens, gemma_tokenizer, get_gguf_tokenizer, sentencepiece_tokenizer)

root = pathlib.Path(__file__).resolve().parent.parent
out_dir = root / "Tests/NudgeLMTests/Fixtures/gguf-vocab"
models = pathlib.Path(sys.argv[1])
out_dir.mkdir(parents=True, exist_ok=True)

shutil.copyfile(models / "ggml-vocab-llama-spm.gguf", out_dir / "llama-spm.gguf")
for name in ["llama-spm", "gpt-2", "starcoder", "refact", "mpt", "deepseek-coder", "deepseek-llm", "falcon"]:
    for ext in ["inp", "out"]:
        shutil.copyfile(models / f"ggml-vocab-{name}.gguf.{ext}", out_dir / f"{name}.{ext}")

texts = open(models / "ggml-vocab-llama-spm.gguf.inp", encoding="utf-8").read().split("\n__ggml_vocab_test__\n")
texts += [
    "<s>Hello</s> world", "Hello <unk> there", "[INST] What is 2+2? [/INST]", "line one\r\nline two\r\n",
    "👨‍👩‍👧 family", "日本語のテキストと한국어", "1234567890 3.14159", "\t tabs\tand  spaces  ", "",
    "Ünïcödé àccents", "a\u0300\u0301 combining", "x" * 40, "emoji 🦙🦙🦙 llama",
]

arch, tok, config = get_gguf_tokenizer(str(out_dir / "llama-spm.gguf"))


def legacy_tokenizer(tokenizer_dict):
    # The original Llama 2 tokenizer.json: "▁" prepended by a normalizer, spaces replaced, no pre-tokenizer.
    t = sentencepiece_tokenizer(tokenizer_dict)
    t.backend_tokenizer.normalizer = normalizers.Sequence(
        [normalizers.Prepend(prepend="\u2581"), normalizers.Replace(pattern=" ", content="\u2581")])
    t.backend_tokenizer.pre_tokenizer = None
    return add_gguf_special_tokens(t, tokenizer_dict)


def legacy(tokenizer_dict):
    return legacy_tokenizer(tokenizer_dict).backend_tokenizer


shapes = {
    "legacy": legacy(tok),
    "metaspace": add_gguf_special_tokens(sentencepiece_tokenizer(tok), tok).backend_tokenizer,
    "gemma": add_gguf_special_tokens(gemma_tokenizer(tok), tok).backend_tokenizer,
}
fixture = {"texts": texts}
for shape, backend in shapes.items():
    ids = [backend.encode(t, add_special_tokens=False).ids for t in texts]
    fixture[f"{shape}_ids"] = ids
    fixture[f"{shape}_decoded"] = [backend.decode(i, skip_special_tokens=False) for i in ids]
# The file's add_bos_token (true) as transformers applies it (LlamaTokenizer's post-processor).
with_bos = legacy_tokenizer(tok)
with_bos.add_bos_token = bool(config["add_bos_token"])
with_bos.update_post_processor()
fixture["legacy_ids_with_bos"] = [with_bos.encode(t) for t in texts[:3]]
(out_dir / "llama-spm.json").write_text(json.dumps(fixture, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
print("wrote", out_dir)
