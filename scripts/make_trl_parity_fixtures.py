"""Parity fixtures for Nudge's trainers, computed by TRL's own code (issue 23).

Each case feeds fixed inputs (per-token log-probs, lengths, rewards, and for GRPO real token ids on the
tiny Llama fixture) to TRL's real loss methods, called unbound on a minimal stand-in `self` that holds
only the config fields the method reads, and records the loss and every metric TRL logs. The Swift
test Tests/NudgeAlignTests/TRLParityTests.swift drives Nudge's real code path with the same inputs
and compares to 1e-5 relative.

Usage (the repo's reference venv: torch 2.13.0+cpu, transformers 5.25, trl 1.16.0):

    /work/venv-gguf/bin/pip install trl==1.16.0      # do not reinstall torch
    /work/venv-gguf/bin/python scripts/make_trl_parity_fixtures.py

Writes Tests/NudgeAlignTests/Fixtures/parity/*.json.
"""

import json
import math
import os
from collections import defaultdict
from types import SimpleNamespace

import torch
import trl
from trl.experimental.cpo import CPOTrainer
from trl.experimental.orpo import ORPOTrainer
from trl.trainer.dpo_trainer import DPOTrainer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(ROOT, "Tests", "NudgeAlignTests", "Fixtures", "parity")


class Accel:
    """accelerate's Accelerator on one process: gathers are the identity."""

    device = torch.device("cpu")

    def gather(self, x):
        return x

    gather_for_metrics = gather


def fl(x):
    return [float(v) for v in x.reshape(-1).tolist()]


# ---------------------------------------------------------------------------------------------
# DPO family: B = 4 pairs, unequal completion lengths, per-token log-probs with zeros off the
# completion (what TRL's fused head returns for labels -100).

def preference_inputs():
    g = torch.Generator().manual_seed(23)
    chosen_len = [3, 5, 2, 4]
    rejected_len = [4, 2, 6, 3]
    prompt_len = 2
    b = len(chosen_len)
    t = prompt_len + max(chosen_len + rejected_len)
    lens = chosen_len + rejected_len
    completion_mask = torch.zeros(2 * b, t, dtype=torch.long)
    for r, n in enumerate(lens):
        completion_mask[r, prompt_len:prompt_len + n] = 1
    shift = completion_mask[:, 1:].float()
    policy = -(torch.rand(2 * b, t - 1, generator=g) * 2.5 + 0.05) * shift
    ref = (policy + 0.4 * torch.randn(2 * b, t - 1, generator=g)).clamp(max=-0.01) * shift
    return dict(b=b, t=t, chosen_len=chosen_len, rejected_len=rejected_len, completion_mask=completion_mask,
                policy=policy, ref=ref)


def dpo_case(name, loss_types, loss_weights, beta, label_smoothing, nudge):
    d = preference_inputs()
    per_token = d["policy"]
    outputs = SimpleNamespace(log_probs=per_token, entropy=torch.zeros_like(per_token),
                              mean_logits=torch.zeros_like(per_token), is_top1=torch.zeros_like(per_token, dtype=torch.bool))
    ref_sums = d["ref"].sum(dim=1)
    inputs = {
        "input_ids": torch.zeros_like(d["completion_mask"]),
        "attention_mask": torch.ones_like(d["completion_mask"]),
        "completion_mask": d["completion_mask"],
        "ref_chosen_logps": ref_sums[: d["b"]],
        "ref_rejected_logps": ref_sums[d["b"]:],
    }
    stub = SimpleNamespace(
        model=SimpleNamespace(training=True), accelerator=Accel(), aux_loss_enabled=False, ld_alpha=None,
        precompute_ref_logps=True, f_divergence_type="reverse_kl", loss_types=loss_types, loss_weights=loss_weights,
        beta=beta, label_smoothing=label_smoothing, use_weighting=False, _metrics={"train": defaultdict(list)},
        _total_train_tokens=0, _tp_size=1, args=SimpleNamespace())
    loss = DPOTrainer._compute_loss(stub, lambda **kw: outputs, inputs, False)
    m = stub._metrics["train"]
    sums = per_token.sum(dim=1)
    return {
        "name": name, "trainer": "DPOTrainer._compute_loss", "loss_type": loss_types, "loss_weights": loss_weights,
        "beta": beta, "nudge": nudge,
        "chosen": fl(sums[: d["b"]]), "rejected": fl(sums[d["b"]:]),
        "ref_chosen": fl(ref_sums[: d["b"]]), "ref_rejected": fl(ref_sums[d["b"]:]),
        "chosen_lengths": d["chosen_len"], "rejected_lengths": d["rejected_len"],
        "expected": {"loss": loss.item(), **{k: m[k][-1] for k in
                     ["rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies", "logps/chosen", "logps/rejected"]}},
    }


def reference_free_case(name, trainer, loss_type, beta, nudge, cpo_alpha=0.0, simpo_gamma=0.0):
    """CPO/SimPO via CPOTrainer.get_batch_loss_metrics, ORPO via ORPOTrainer.get_batch_loss_metrics;
    concatenated_forward is replaced by the fixed log-probs (summed, or averaged where TRL averages:
    CPO's ipo/simpo and ORPO always) and the NLL over the chosen tokens (CPO: completions, the token
    mean; ORPO: given, as TRL takes it over whole sequences)."""
    d = preference_inputs()
    b = d["b"]
    sums = d["policy"].sum(dim=1)
    lengths = torch.tensor(d["chosen_len"] + d["rejected_len"], dtype=torch.float32)
    averaged = trainer is ORPOTrainer or loss_type in ["ipo", "simpo"]
    logps = sums / lengths if averaged else sums
    if trainer is ORPOTrainer:
        nll = torch.tensor(1.7345)  # TRL: cross-entropy over the chosen rows' prompt and completion tokens
    else:
        nll = -sums[:b].sum() / lengths[:b].sum()  # TRL: cross-entropy over the chosen completion tokens
    forward = (logps[:b], logps[b:], torch.zeros(b, 3, 5), torch.zeros(b, 3, 5), nll)
    stub = SimpleNamespace(accelerator=Accel(), aux_loss_enabled=False, beta=beta, loss_type=loss_type,
                           label_smoothing=0.0, alpha=0.0, simpo_gamma=simpo_gamma, cpo_alpha=cpo_alpha,
                           concatenated_forward=lambda model, batch: forward)
    if trainer is CPOTrainer:
        stub.cpo_loss = lambda c, r: CPOTrainer.cpo_loss(stub, c, r)
    else:
        stub.odds_ratio_loss = lambda c, r: ORPOTrainer.odds_ratio_loss(stub, c, r)
    loss, metrics = trainer.get_batch_loss_metrics(stub, None, {}, "train")
    return {
        "name": name, "trainer": f"{trainer.__name__}.get_batch_loss_metrics", "loss_type": [loss_type], "beta": beta,
        "nudge": nudge, "chosen": fl(sums[:b]), "rejected": fl(sums[b:]), "ref_chosen": None, "ref_rejected": None,
        "chosen_lengths": d["chosen_len"], "rejected_lengths": d["rejected_len"],
        "chosen_nll": float(nll) if trainer is ORPOTrainer else None,
        "expected": {"loss": loss.item(), **{k: metrics[k] for k in
                     ["rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies", "logps/chosen", "logps/rejected"]}},
    }


def preference_cases():
    return [
        dpo_case("sigmoid", ["sigmoid"], [1.0], 0.1, 0.0, {"loss": "sigmoid"}),
        dpo_case("sigmoid_beta05", ["sigmoid"], [1.0], 0.5, 0.0, {"loss": "sigmoid"}),
        dpo_case("robust", ["robust"], [1.0], 0.3, 0.1, {"loss": "robust", "epsilon": 0.1}),
        dpo_case("hinge", ["hinge"], [1.0], 0.7, 0.0, {"loss": "hinge"}),
        dpo_case("ipo", ["ipo"], [1.0], 0.4, 0.0, {"loss": "ipo"}),
        # RPO: TRL 1.16 spells it loss_type=["sigmoid", "sft"], loss_weights=[1, alpha].
        dpo_case("rpo", ["sigmoid", "sft"], [1.0, 0.6], 0.2, 0.0, {"loss": "rpo", "alpha": 0.6}),
        reference_free_case("simpo", CPOTrainer, "simpo", 2.0, {"loss": "simpo", "gamma": 0.8}, simpo_gamma=0.8),
        reference_free_case("cpo", CPOTrainer, "sigmoid", 0.3, {"loss": "cpo", "lambda": 0.7}, cpo_alpha=0.7),
        # ORPO: TRL's β is the odds-ratio weight λ (and scales the reported rewards).
        reference_free_case("orpo", ORPOTrainer, "sigmoid", 0.25, {"loss": "orpo", "lambda": 0.25}),
    ]


# ---------------------------------------------------------------------------------------------
# GRPO end to end on the tiny Llama fixture (Tests/NudgeLMTests/Fixtures/lm/llama, reference
# llama_ref): 2 prompts of 4 tokens, G = 3 completions each of unequal lengths, fixed rewards.
# GRPOTrainer._compute_loss runs unbound on a stand-in self; its _get_per_token_logps_and_entropies
# is replaced by the plain log-softmax of the real model's logits (TRL's fused head computes the
# same), everything after it (ratios, clipping, k3, bias correction, aggregation, metrics) is TRL's.

LM = os.path.join(ROOT, "Tests", "NudgeLMTests", "Fixtures", "lm")
PROMPTS = [[5, 17, 42, 9], [33, 8, 71, 12]]
COMPLETIONS = [[40, 2, 99], [7, 7, 61, 23, 5], [88], [14, 3, 50, 11], [64, 9], [120, 31, 6, 77, 2, 18]]
REWARDS = [1.0, 0.25, -0.5, 0.75, 2.0, 0.0]
G = 3
MAX_COMPLETION_LENGTH = 8


def load_lm(name):
    from transformers import AutoModelForCausalLM
    m = AutoModelForCausalLM.from_pretrained(os.path.join(LM, name), attn_implementation="eager", torch_dtype=torch.float32)
    m.eval()  # no dropout; TRL's mode ("train") is the stand-in's flag
    return m


def logps_and_entropies(model, input_ids, attention_mask, logits_to_keep, **_):
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, -logits_to_keep - 1:-1, :]
    logp = torch.log_softmax(logits.float(), dim=-1)
    per_token = logp.gather(-1, input_ids[:, -logits_to_keep:].unsqueeze(-1)).squeeze(-1)
    entropy = -(logp.exp() * logp).sum(-1)
    return per_token, entropy


def grpo_advantages(rewards, scale_rewards):
    """trl/trainer/grpo_trainer.py (1.16.0) _generate_and_score_completions, lines 2765-2788, verbatim
    apart from the variable plumbing (the method samples and scores; here the rewards are given)."""
    from trl.trainer.utils import nanstd
    num_generations = G
    mean_grouped_rewards = torch.nanmean(rewards.view(-1, num_generations), dim=1)
    mean_grouped_rewards = mean_grouped_rewards.repeat_interleave(num_generations, dim=0)
    if scale_rewards in ["group", "none"]:
        std_rewards = nanstd(rewards.view(-1, num_generations), dim=1)
        std_rewards = std_rewards.repeat_interleave(num_generations, dim=0)
    elif scale_rewards == "batch":
        std_rewards = nanstd(rewards).expand_as(rewards)
    advantages = rewards - mean_grouped_rewards
    if scale_rewards != "none":
        advantages = advantages / (std_rewards + 1e-4)
    is_std_zero = torch.isclose(std_rewards, torch.zeros_like(std_rewards))
    return advantages, is_std_zero


def grpo_case(name, loss_type="dapo", scale_rewards="group", beta=0.0, bias_correction=False,
              importance_sampling_level="token", epsilon=0.2, epsilon_high=None, rewards=REWARDS):
    from trl.trainer.grpo_trainer import GRPOTrainer
    from trl.trainer.utils import nanstd
    policy = load_lm("llama")
    ref_model = load_lm("llama_ref") if beta != 0 else None
    b = len(COMPLETIONS)
    prompt_ids = torch.tensor([PROMPTS[i // G] for i in range(b)])
    width = max(len(c) for c in COMPLETIONS)
    completion_ids = torch.tensor([c + [0] * (width - len(c)) for c in COMPLETIONS])
    completion_mask = torch.tensor([[1] * len(c) + [0] * (width - len(c)) for c in COMPLETIONS])
    r = torch.tensor(rewards, dtype=torch.float32)
    advantages, is_std_zero = grpo_advantages(r, scale_rewards)
    inputs = {"prompt_ids": prompt_ids, "prompt_mask": torch.ones_like(prompt_ids), "completion_ids": completion_ids,
              "completion_mask": completion_mask, "advantages": advantages, "old_per_token_logps": None,
              "num_items_in_batch": completion_mask.sum()}
    if beta != 0:
        with torch.no_grad():
            inputs["ref_per_token_logps"], _ = logps_and_entropies(
                ref_model, torch.cat([prompt_ids, completion_ids], 1), torch.cat([torch.ones_like(prompt_ids), completion_mask], 1), width)
    accel = Accel()
    accel.num_processes = 1
    accel.reduce = lambda x, reduction="sum": x
    stub = SimpleNamespace(
        _get_per_token_logps_and_entropies=lambda *a, **k: (*logps_and_entropies(*a, **k), None),
        aux_loss_enabled=False, top_entropy_quantile=1.0, off_policy_mask_threshold=None,
        importance_sampling_level=importance_sampling_level, beta=beta, loss_type=loss_type,
        epsilon_low=epsilon, epsilon_high=epsilon_high if epsilon_high is not None else epsilon,
        args=SimpleNamespace(use_bias_correction_kl=bias_correction, delta=None, steps_per_generation=1),
        use_vllm=False, vllm_importance_sampling_correction=False, model=SimpleNamespace(training=True),
        current_gradient_accumulation_steps=1, max_completion_length=MAX_COMPLETION_LENGTH, accelerator=accel,
        _entropy_bonus_enabled=False, _metrics={"train": defaultdict(list)})
    policy.zero_grad()
    loss = GRPOTrainer._compute_loss(stub, policy, inputs)
    loss.backward()
    grads = [p.grad.detach().reshape(-1) for p in policy.parameters() if p.grad is not None]
    grad_norm = torch.linalg.vector_norm(torch.cat(grads)).item()  # what clip_grad_norm_ returns and TRL logs
    m = stub._metrics["train"]
    expected = {"loss": loss.item(), "grad_norm": grad_norm, "reward": torch.nanmean(r).item(),
                "reward_std": nanstd(r).item(), "frac_reward_zero_std": is_std_zero.float().mean().item(),
                "entropy": m["entropy"][-1], "clip_ratio/low_mean": m["clip_ratio/low_mean"][-1],
                "clip_ratio/high_mean": m["clip_ratio/high_mean"][-1], "clip_ratio/region_mean": m["clip_ratio/region_mean"][-1]}
    if beta != 0:
        expected["kl"] = m["kl"][-1]
    return {"name": name, "trainer": "GRPOTrainer._compute_loss", "loss_type": loss_type, "scale_rewards": scale_rewards,
            "beta": beta, "use_bias_correction_kl": bias_correction, "importance_sampling_level": importance_sampling_level,
            "epsilon": epsilon, "epsilon_high": epsilon_high, "num_generations": G,
            "max_completion_length": MAX_COMPLETION_LENGTH, "prompts": PROMPTS, "completions": COMPLETIONS,
            "rewards": rewards, "advantages": fl(advantages), "expected": expected}


def grpo_cases():
    cases = []
    for loss_type in ["grpo", "bnpo", "dr_grpo", "dapo"]:
        for scale in ["group", "batch", "none"]:
            cases.append(grpo_case(f"{loss_type}_{scale}", loss_type=loss_type, scale_rewards=scale))
    cases.append(grpo_case("beta_k3", loss_type="grpo", beta=0.04))
    cases.append(grpo_case("beta_k3_bias_corrected", loss_type="bnpo", beta=0.3, bias_correction=True))
    cases.append(grpo_case("clip_higher", loss_type="dapo", epsilon=0.2, epsilon_high=0.28, beta=0.1))
    cases.append(grpo_case("gspo", loss_type="grpo", importance_sampling_level="sequence", epsilon=3e-4, epsilon_high=4e-4))
    # One group with equal rewards: frac_reward_zero_std and a zero-advantage group.
    cases.append(grpo_case("zero_std_group", loss_type="dapo", rewards=[0.5, 0.5, 0.5, 0.75, 2.0, 0.0]))
    return cases


def write(name, payload):
    os.makedirs(OUT, exist_ok=True)
    payload = {"generated_by": f"scripts/make_trl_parity_fixtures.py, trl {trl.__version__}, torch {torch.__version__}",
               **payload}
    with open(os.path.join(OUT, name), "w") as f:
        json.dump(payload, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    torch.set_default_dtype(torch.float32)
    write("preference.json", {"cases": preference_cases()})
    write("grpo.json", {"cases": grpo_cases()})
