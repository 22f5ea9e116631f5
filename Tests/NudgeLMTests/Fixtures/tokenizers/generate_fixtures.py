#!/usr/bin/env python3
"""Generates the tokenizer parity fixtures used by NudgeLMTests.

Trains small byte-level BPE tokenizers with the Hugging Face `tokenizers`
library on a synthetic corpus (nothing is downloaded from the hub), writes
their tokenizer.json files in several styles, and records what the library
produces for a corpus of tricky strings: pre-tokenizer pieces for the regex
patterns, token ids with and without special tokens, and decoded text.

Usage (from this folder):
    python3 -m venv /tmp/tok-venv && /tmp/tok-venv/bin/pip install tokenizers
    RAYON_NUM_THREADS=1 /tmp/tok-venv/bin/python generate_fixtures.py

Outputs (all in this folder):
    gpt2-legacy-merges.json  GPT-2 style: ByteLevel pre-tokenizer (default regex,
                             add_prefix_space false), <|endoftext|>; merges "a b".
    gpt2-prefix-space.json   Same model with add_prefix_space true; merges as pairs.
    llama3.json              Llama 3 style: Sequence[Split(Llama 3 regex, Isolated),
                             ByteLevel(use_regex false)], ignore_merges true, extra
                             whole-word vocab entries that merges cannot build,
                             TemplateProcessing adding <|begin_of_text|>; merges as pairs.
    llama3-legacy-merges.json  llama3.json with merges rewritten as "a b" strings.
    qwen2-style.json         Qwen2 style: NFC normalizer, Split(Qwen2 regex), ChatML
                             special tokens plus non-special added tokens that use
                             lstrip / rstrip / single_word / normalized.
    parity.json              Corpus strings and the library's outputs: ids without and with
                             special tokens, decode (keeping and skipping special tokens),
                             and decode of the first half of the ids (partial UTF-8).
    regex-pieces.json        Pre-tokenizer pieces for random strings (regex parity).
"""

import json
import os
import random

import tokenizers
from tokenizers import (AddedToken, Regex, Tokenizer, decoders, models,
                        normalizers, pre_tokenizers, processors, trainers)

HERE = os.path.dirname(os.path.abspath(__file__))

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
LLAMA3_PATTERN = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
QWEN2_PATTERN = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""

# ---------------------------------------------------------------------------
# Training corpus
# ---------------------------------------------------------------------------

WORDS = """the of and to in is was that for it with as on be at by this had not are but from
or have an they which one you were her all she there would their we him been has when who will
more no if out so said what up its about into than them can only other new some could time these
two may then do first any my now such like our over man me even most made after also did many
before must through back years where much your way well down should because each just those people
learning policy gradient reward model token tokenizer swift language training agent value function
reinforcement optimizer batch sequence transformer attention layer network loss entropy advantage
don't can't won't it's I'm you're they've we'll she'd He'S THEY'RE I'LL WE'VE""".split()

ACCENTED = """café naïve résumé Zürich façade São Paulo Ångström coöperate piñata jalapeño
crème brûlée déjà vu Mädchen Straße Ελληνικά γλώσσα русский язык Київ Čeština Łódź
niño señor über Öl Ærø þorn ðe""".split()

CJK = """中文 汉字 你好世界 日本語 こんにちは カタカナ 東京 한국어 안녕하세요 서울 漢字 學習""".split()

EMOJI = ["😀", "👍", "👍🏽", "❤️", "🎉", "🚀", "👨‍👩‍👧‍👦", "🇺🇸", "🇯🇵", "✨", "🤖", "🔥", "1️⃣", "🏳️‍🌈"]

CODE = [
    "func encode(_ text: String) -> [Int] {",
    "    return ids.map { $0 + 1 }",
    "}",
    "def train(model, data, lr=3e-4):",
    "    for step in range(1000):",
    "        loss = model(x).mean()",
    "if (x != nil && y >= 0) { print(\"ok\") }",
    "let tensor = Tensor(shape: [2, 3], scalars: [1.0, 2.5, -3.25])",
    "SELECT id, name FROM users WHERE age > 30;",
    "<div class=\"main\">Hello</div>",
    "x = {'a': 1, \"b\": [2, 3]}",
    "// TODO: fix this\t\t# tabs",
    "#include <stdio.h>",
    "    \treturn 0;\r\n",
]


def make_training_corpus(rng):
    lines = []
    for _ in range(2500):
        kind = rng.random()
        if kind < 0.45:
            n = rng.randint(3, 16)
            words = [rng.choice(WORDS) for _ in range(n)]
            if rng.random() < 0.3:
                words[0] = words[0].capitalize()
            line = " ".join(words) + rng.choice([".", "!", "?", ",", "", " :)"])
        elif kind < 0.6:
            line = " ".join(rng.choice(ACCENTED) for _ in range(rng.randint(2, 8)))
        elif kind < 0.7:
            line = "".join(rng.choice(CJK) for _ in range(rng.randint(1, 5)))
        elif kind < 0.85:
            line = rng.choice(CODE)
        elif kind < 0.93:
            line = " ".join(str(rng.randint(0, 10 ** rng.randint(1, 9))) for _ in range(rng.randint(1, 6)))
            line += " " + rng.choice(["%", "$", "km", "kg", "ms", "1.5e-3", "3.14159"])
        else:
            line = " ".join(rng.choice(WORDS + EMOJI) for _ in range(rng.randint(2, 8)))
        if rng.random() < 0.1:
            line = line.replace(" ", rng.choice(["  ", "\t", "   ", " \n "]))
        lines.append(line)
    return lines


# ---------------------------------------------------------------------------
# Corpus of tricky strings
# ---------------------------------------------------------------------------

def tricky_strings(rng):
    s = [
        "", " ", "  ", "   ", "\t", "\n", "\r\n", "\n\n", " \n", "\n ", "\t\t\n\n  ",
        "Hello, world!", "Hello world", " Hello world", "Hello world ", "  Hello   world  ",
        "hello\tworld", "hello\nworld", "hello\r\nworld", "hello\n\n\nworld", "hello \n world",
        "a\u00a0b", "a\u2028b", "a\u3000b", "a\u0085b", "a\x0bb\x0cc", "tab\t\tx", "x  \t y",
        "I'm here. You're there. They've gone. We'll see. She'd know. It's fine. Don't.",
        "I'M HERE. YOU'RE THERE. THEY'VE GONE. WE'LL SEE. SHE'D KNOW. IT'S FINE. DON'T.",
        "I'M, You'Re, tHeY'vE, 'S 's 'T 't 'LL 'll 'Ll", "'ſ 'ſt ſ'ſ", "''s '", "rock'n'roll",
        "0", "1", "12", "123", "1234", "12345", "123456", "1234567", "12345678901234567890",
        "3.14159", "-42", "1,000,000", "0x1F", "2024-01-15", "v1.2.3", "1e-10", "a1b2c3",
        "٣٤٥ ١٢", "１２３４", "²³ ½ Ⅻ ⅷ", "x² + y² = z²",
        "café", "cafe\u0301", "naïve", "nai\u0308ve", "Zürich", "Zu\u0308rich", "e\u0301\u0301\u0301",
        " \u0301", "\u0301abc", "a\u0300\u0301\u0302b", "Straße", "ÅNGSTRÖM", "Ελληνικά", "русский язык",
        "中文汉字", "你好，世界！", "日本語のテキスト", "こんにちは", "한국어 텍스트", "漢字 かな カナ",
        "हिन्दी", "ไทย ภาษา", "العربية", "עברית", "ελληνικά,русский;中文",
        "😀", "😀😀😀", "👍🏽", "👍🏿 👍🏻", "👨‍👩‍👧‍👦", "👩🏽‍💻", "🇺🇸🇯🇵", "1️⃣", "❤️", "☺️",
        "🏳️‍🌈", "family: 👨‍👩‍👧‍👦!", "emoji😀text", " 😀", "😀 ", "a\u200db", "a\u200bb", "\ufeffBOM",
        "\x00", "a\x00b", "\x7f", "\x1b[31mred\x1b[0m", "\u00ad", "\ufffd",
        "<|endoftext|>", "a<|endoftext|>b", " <|endoftext|> ", "<|endoftext|><|endoftext|>",
        "<|endoftext|", "<|endoftext|>>", "<<|endoftext|>", "text<|endoftext|>\n",
        "<|begin_of_text|>Hello", "<|eot_id|>", "Hi<|eot_id|>there",
        "<|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>",
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
        "<think>reasoning</think>answer", "a <think> b", "x<think>y", " </think>\n", "<tool>  call  </tool>",
        " <tool> x", "kitten", "a kitten b", "kittens", "mykitten", "kitten!", " kitten ",
        "func f(x: Int) -> Int { x * 2 }", "    indented\n        more\n", "def f():\n\treturn 1\n",
        "if (a&&b) || !c { }", "arr[0] += 1;", "#!/usr/bin/env python3", "x == y != z <= w",
        "https://example.com/path?q=1&r=2", "user@example.com", "C:\\Users\\name", "$100.00 (50% off)",
        "...", "!!!", "?!?", "—", "– -- ---", "«quoted» „German“ “smart”", "a...b", "end.",
        "   leading", "trailing   ", "  both  ", "\n\nleading newlines", "trailing newlines\n\n",
        "mixed \t\n\r whitespace \r\n\r\n end", "word\r\n\r\nword", " \r\n ", "!\n\n", "x !\n\nx",
        "The quick brown fox jumps over the lazy dog.", "THE QUICK BROWN FOX",
        "supercalifragilistic", " supercalifragilistic", " tokenizer tokenizers", " Nudge", "Nudge",
        "ﬁﬂ ligatures", "Ǆ ǅ ǆ", "İstanbul ı", "ΣΑΣ σας", "Ⓐⓑ", "ａｂｃ　ＡＢＣ",
    ]
    pool = list(" \t\n\r'sStT0123456789abcXYZ!?.,-_éüß\u0301\u00a0\u3000中日한😀👍🏽\u200d🇺") + [
        "<|endoftext|>", "<|eot_id|>", "<|im_end|>", "<think>", "kitten", "'re", "'LL", "  ", "\r\n"]
    for _ in range(40):
        n = rng.randint(1, 14)
        s.append("".join(rng.choice(pool) for _ in range(n)))
    return s


def random_regex_strings(rng, count):
    pool = list(" \t\n\r\x0b\x0c\u00a0\u2028\u3000'sStTrReEvVlLmMdDſ0123456789٣²½abcXYZ!?.,-_()[]{}\"#$%&*+/:;<=>@\\^`|~"
                "éüßÆ\u0301\u0308\u200d\u200b\ufeff中日한あア😀👍🏽🇺🇸❤️हि") + ["'s", "'re", "'ll", "'LL", "'Ve", "\r\n", "  ", "\n\n"]
    out = []
    for _ in range(count):
        n = rng.randint(1, 24)
        out.append("".join(rng.choice(pool) for _ in range(n)))
    return out


# ---------------------------------------------------------------------------
# Tokenizers
# ---------------------------------------------------------------------------

def train(lines, pre_tokenizer, vocab_size, ignore_merges):
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(lines, trainer)
    return tok


def legacy_merges(json_text):
    obj = json.loads(json_text)
    obj["model"]["merges"] = [f"{a} {b}" for a, b in obj["model"]["merges"]]
    return json.dumps(obj, ensure_ascii=False, indent=1)


def save(name, text):
    obj = json.loads(text)
    # Reload to make sure the file is accepted by the library as written.
    Tokenizer.from_str(text)
    with open(os.path.join(HERE, name), "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")


def main():
    rng = random.Random(20240615)
    lines = make_training_corpus(rng)

    # 1. GPT-2 style.
    gpt2 = train(lines, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True), 1200, False)
    gpt2.post_processor = processors.ByteLevel(trim_offsets=False)
    gpt2.add_special_tokens(["<|endoftext|>"])
    gpt2_legacy_text = legacy_merges(gpt2.to_str())
    save("gpt2-legacy-merges.json", gpt2_legacy_text)
    gpt2_legacy = Tokenizer.from_str(gpt2_legacy_text)

    prefix_obj = json.loads(gpt2.to_str())
    prefix_obj["pre_tokenizer"]["add_prefix_space"] = True
    prefix_text = json.dumps(prefix_obj, ensure_ascii=False)
    save("gpt2-prefix-space.json", prefix_text)
    gpt2_prefix = Tokenizer.from_str(prefix_text)

    # 2. Llama 3 style.
    llama_pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    base = train(lines, llama_pre, 1500, True)
    obj = json.loads(base.to_str())
    obj["model"]["ignore_merges"] = True
    vocab = obj["model"]["vocab"]
    # Whole words that the merges cannot build: with ignore_merges they are single tokens.
    for word in ["Ġsupercalifragilistic", "Ġtokenizer", "ĠNudge", "Nudge", "ĠTHE", "ĠQUICK", "Ġbrown"]:
        if word not in vocab:
            vocab[word] = len(vocab)
    llama = Tokenizer.from_str(json.dumps(obj, ensure_ascii=False))
    llama.add_special_tokens(["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
                              "<|end_header_id|>", "<|eot_id|>"])
    bos = llama.token_to_id("<|begin_of_text|>")
    llama.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                      pair="<|begin_of_text|> $A <|begin_of_text|>:1 $B:1",
                                      special_tokens=[("<|begin_of_text|>", bos)]),
    ])
    save("llama3.json", llama.to_str())
    save("llama3-legacy-merges.json", legacy_merges(llama.to_str()))
    llama_legacy = Tokenizer.from_str(legacy_merges(llama.to_str()))

    # 3. Qwen2 style (same merges, Qwen2 regex, NFC, ChatML specials, added tokens).
    qobj = json.loads(base.to_str())
    qobj["model"]["ignore_merges"] = False
    qwen = Tokenizer.from_str(json.dumps(qobj, ensure_ascii=False))
    qwen.normalizer = normalizers.NFC()
    qwen.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    qwen.post_processor = processors.ByteLevel(trim_offsets=False)
    qwen.add_special_tokens(["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    qwen.add_tokens([
        AddedToken("<think>", special=False, normalized=False),
        AddedToken("</think>", special=False, normalized=False, rstrip=True),
        AddedToken("<tool>", special=False, normalized=False, lstrip=True, rstrip=True),
        AddedToken("kitten", special=False, normalized=True, single_word=True),
        AddedToken("\u00e9\u00e9", special=False, normalized=True),
    ])
    save("qwen2-style.json", qwen.to_str())

    tokenizers_under_test = {
        "gpt2-legacy-merges": gpt2_legacy,
        "gpt2-prefix-space": gpt2_prefix,
        "llama3": llama,
        "llama3-legacy-merges": llama_legacy,
        "qwen2-style": qwen,
    }

    corpus = tricky_strings(rng)
    parity = {"library_version": tokenizers.__version__, "strings": corpus, "tokenizers": {}}
    for name, tok in tokenizers_under_test.items():
        entry = {"file": name + ".json", "ids": [], "ids_with_special": [], "decoded": [], "decoded_skip_special": [],
                 "decoded_first_half": []}
        for text in corpus:
            plain = tok.encode(text, add_special_tokens=False).ids
            with_special = tok.encode(text, add_special_tokens=True).ids
            entry["ids"].append(plain)
            entry["ids_with_special"].append(with_special)
            entry["decoded"].append(tok.decode(with_special, skip_special_tokens=False))
            entry["decoded_skip_special"].append(tok.decode(with_special, skip_special_tokens=True))
            # Cutting ids in half may split a UTF-8 sequence: checks U+FFFD replacement.
            entry["decoded_first_half"].append(tok.decode(plain[: len(plain) // 2], skip_special_tokens=False))
        parity["tokenizers"][name] = entry
    with open(os.path.join(HERE, "parity.json"), "w", encoding="utf-8") as f:
        json.dump(parity, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")

    regex_strings = corpus + random_regex_strings(rng, 400)
    pieces = {"strings": regex_strings, "patterns": {}}
    for name, pattern in [("gpt2", GPT2_PATTERN), ("llama3", LLAMA3_PATTERN), ("qwen2", QWEN2_PATTERN)]:
        split = pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False)
        pieces["patterns"][name] = {
            "pattern": pattern,
            "pieces": [[p for p, _ in split.pre_tokenize_str(t)] for t in regex_strings],
        }
    with open(os.path.join(HERE, "regex-pieces.json"), "w", encoding="utf-8") as f:
        json.dump(pieces, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
