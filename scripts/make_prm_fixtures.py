"""Fixtures for Nudge's PRM row layout (issue 26): TRL's PRMTrainer.tokenize_row on real tokenizers.

TRL 1.16 (the repo's reference venv) no longer ships PRMTrainer; `tokenize_row` below is its last
version, copied verbatim from trl/trainer/prm_trainer.py (huggingface/trl, the release before the
trainer's removal), so the fixture is TRL's own construction of input_ids and labels: BOS (when the
tokenizer has one) and the prompt, each step followed by the step separator, the step's label on
the separator's last token, -100 elsewhere, the completion cut to max_completion_length, the whole
to max_length. The tokenizers are transformers' fast tokenizers over the repo's tokenizer.json
fixtures (Tests/NudgeLMTests/Fixtures/tokenizers), which Nudge's BPETokenizer reads too.

Usage: /work/venv-gguf/bin/python scripts/make_prm_fixtures.py
Writes Tests/NudgeAlignTests/Fixtures/prm/tokenize_row.json.
"""

import json
import os
from itertools import chain

from transformers import PreTrainedTokenizerFast

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TOKENIZERS = os.path.join(ROOT, "Tests", "NudgeLMTests", "Fixtures", "tokenizers")
OUT = os.path.join(ROOT, "Tests", "NudgeAlignTests", "Fixtures", "prm", "tokenize_row.json")


def tokenize_row(features, tokenizer, step_separator, max_length, max_completion_length, train_on_last_step_only, is_eval):
    # Verbatim from TRL's PRMTrainer.tokenize_row.
    prompt_ids = tokenizer(features["prompt"], add_special_tokens=False)["input_ids"]
    completions_ids = [
        tokenizer(completion, add_special_tokens=False)["input_ids"] for completion in features["completions"]
    ]
    if train_on_last_step_only and not is_eval:
        labels = [-100] * (len(features["labels"]) - 1) + [int(features["labels"][-1])]
    else:
        labels = [int(label) for label in features["labels"]]

    separator_ids = tokenizer.encode(step_separator, add_special_tokens=False)
    completions_ids = [completion + separator_ids for completion in completions_ids]

    labels = [
        [-100] * (len(completion) - 1) + [label] for completion, label in zip(completions_ids, labels, strict=True)
    ]

    completion_ids = list(chain(*completions_ids))
    labels = list(chain(*labels))

    if tokenizer.bos_token_id is not None:
        prompt_ids = [tokenizer.bos_token_id] + prompt_ids

    if max_completion_length is not None:
        completion_ids = completion_ids[:max_completion_length]
        labels = labels[:max_completion_length]

    input_ids = prompt_ids + completion_ids
    labels = [-100] * len(prompt_ids) + labels

    if max_length is not None:
        input_ids = input_ids[:max_length]
        labels = labels[:max_length]

    return {"input_ids": input_ids, "labels": labels}


ROWS = [
    {"prompt": "Add with carries: 47 + 85", "completions": ["7+5+0=12", "4+8+1=13", "132"], "labels": [True, True, True]},
    {"prompt": "Add with carries: 305 + 918", "completions": ["5+8+0=13", "0+1+1=3", "3+9+0=12", "1223"],
     "labels": [True, False, False, True]},
    {"prompt": "Which number is larger, 9.8 or 9.11?", "completions": ["11 is greater than 8.", "Hence, 9.11 > 9.8."],
     "labels": [True, False]},
]

SETTINGS = [
    {"step_separator": "\n", "max_length": None, "max_completion_length": None, "train_on_last_step_only": False, "is_eval": False},
    {"step_separator": "\n", "max_length": None, "max_completion_length": None, "train_on_last_step_only": True, "is_eval": False},
    {"step_separator": "\n", "max_length": None, "max_completion_length": None, "train_on_last_step_only": True, "is_eval": True},
    {"step_separator": "\n", "max_length": 14, "max_completion_length": None, "train_on_last_step_only": False, "is_eval": False},
    {"step_separator": "\n", "max_length": None, "max_completion_length": 9, "train_on_last_step_only": False, "is_eval": False},
    {"step_separator": " ки\n", "max_length": None, "max_completion_length": None, "train_on_last_step_only": False, "is_eval": False},
]


def main():
    cases = []
    for name, bos in [("qwen2-style.json", None), ("llama3.json", "<|begin_of_text|>")]:
        kwargs = {"tokenizer_file": os.path.join(TOKENIZERS, name)}
        if bos:
            kwargs["bos_token"] = bos
        tokenizer = PreTrainedTokenizerFast(**kwargs)
        for row in ROWS:
            for setting in SETTINGS:
                out = tokenize_row(row, tokenizer, **setting)
                cases.append({"tokenizer": name, "row": row, **setting, **out})
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"cases": cases}, f, indent=1, ensure_ascii=False)
    print(f"wrote {len(cases)} cases to {OUT}")


if __name__ == "__main__":
    main()
