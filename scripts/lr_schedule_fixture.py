# The learning rates transformers' schedulers give each optimizer step (the values the Swift test
# `theLearningRateFollowsTransformersSchedulers` in Tests/NudgeAlignTests/ProcessRewardTests.swift holds):
# peak 1.0, 10 steps, for each lr_scheduler_type and warmup_steps. Run with /work/venv-gguf/bin/python.
import json
import torch
from transformers import get_scheduler

out = {}
for kind in ["linear", "cosine", "constant", "constant_with_warmup"]:
    for warmup in [0, 3]:
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=1.0)
        sched = get_scheduler(kind, opt, num_warmup_steps=warmup, num_training_steps=10)
        rates = []
        for _ in range(10):
            rates.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        out[f"{kind}/{warmup}"] = [round(r, 6) for r in rates]
print(json.dumps(out, indent=1))
