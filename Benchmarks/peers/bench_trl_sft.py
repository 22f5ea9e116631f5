"""TRL SFTTrainer on the same random Llama "S" as bench_trl.py (copied from ../shared/peers) (its tokenizer, model and
text helpers): 8 prompt/completion rows per step (32-character prompts, 64-95-character completions of
random lowercase words, completion-only loss, no packing), 12 steps. Prints the median step time after the
first and the tokens per second over those steps. Run beside `NudgeBench --only sft`.

    .venv-peers/bin/python Benchmarks/peers/bench_trl_sft.py
"""
import json
import os
import random
import statistics
import tempfile
import time

from datasets import Dataset

import bench_trl as b


def main(steps=12):
    from trl import SFTConfig, SFTTrainer
    tok = b.make_tokenizer()
    rng = random.Random(0)
    rows = [{"prompt": b.rand_text(rng, 32), "completion": b.rand_text(rng, rng.randint(64, 95))} for _ in range(8 * steps)]
    tokens = sum(len(tok(r["prompt"] + r["completion"])["input_ids"]) + 1 for r in rows)
    with tempfile.TemporaryDirectory() as d:
        args = SFTConfig(**b.common_args(os.path.join(d, "out"), steps, 8), max_length=128, packing=False,
                         completion_only_loss=True)
        timer = b.StepTimer()
        trainer = SFTTrainer(model=b.saved_model(tok, d), args=args, train_dataset=Dataset.from_list(rows),
                             processing_class=tok, callbacks=[timer])
        t0 = time.perf_counter()
        trainer.train()
        total = time.perf_counter() - t0
    median = statistics.median(timer.durations[1:])
    print(json.dumps({"steps": steps, "s_per_step_median_excl_first": median, "tokens_per_step": tokens / steps,
                      "tokens_per_s": tokens / steps / median, "train_wall_s": total}))


if __name__ == "__main__":
    main()
