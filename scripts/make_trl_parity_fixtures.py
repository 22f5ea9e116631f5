"""Parity fixtures for Nudge's trainers, computed by TRL's own code (issue 23).

Each case feeds fixed inputs (per-token log-probs, lengths, rewards, and for GRPO, RLOO, KTO and DPO
end to end, and CPO, SimPO and ORPO end to end through CPOTrainer / ORPOTrainer.compute_loss
(dpo_trainer.json), real token ids on the tiny Llama fixture) to TRL's real loss methods, called unbound on a minimal stand-in `self` that holds
only the config fields the method reads, and records the loss and every metric TRL logs. The Swift
test Tests/NudgeAlignTests/TRLParityTests.swift drives Nudge's real code path with the same inputs
and compares to 1e-5 relative. PPO-RLHF (ppo_rlhf.json, Tests/NudgeAlignTests/PPORLHFParityTests.swift) mirrors
TRL's last PPOTrainer, which 1.16 no longer ships; REINFORCE++ (reinforce_pp.json,
Tests/NudgeAlignTests/ReinforcePlusPlusParityTests.swift) mirrors OpenRLHF's functions; see their sections.

Usage (the repo's reference venv: torch 2.13.0+cpu, transformers 5.25, trl 1.16.0):

    /work/venv-gguf/bin/pip install trl==1.16.0      # do not reinstall torch
    /work/venv-gguf/bin/python scripts/make_trl_parity_fixtures.py

Writes Tests/NudgeAlignTests/Fixtures/parity/*.json (arguments, e.g. dpo_trainer.json: only those).
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

    def autocast(self):
        import contextlib
        return contextlib.nullcontext()


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
            "rewards": rewards, "advantages": fl(advantages), "expected": expected,
            "parameter_grad_norms": parameter_grad_norms(policy)}


def parameter_grad_norms(model):
    """The gradient's norm per parameter (issue 23), by transformers' parameter name."""
    return {n: torch.linalg.vector_norm(p.grad.detach()).item() for n, p in model.named_parameters() if p.grad is not None}


def optimizer_step(policy, lr, max_grad_norm=1.0):
    """What HF Trainer does between two loss computations: clip_grad_norm_ (the norm it returns is the
    logged grad_norm), then torch's AdamW (betas 0.9/0.999, eps 1e-8, weight_decay 0: TRL's defaults
    and Nudge's GRPOConfig's)."""
    grad_norm = torch.nn.utils.clip_grad_norm_(list(policy.parameters()), max_grad_norm).item()
    opt = torch.optim.AdamW(policy.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    opt.step()
    policy.zero_grad()
    return grad_norm


def mu2_expected(iterations, keys):
    """μ = 2: TRL logs each optimizer step; Nudge logs one step per generation batch with the μ losses and
    loss-side metrics averaged and the last grad_norm. Both iterations are recorded as TRL logs them."""
    out = {k: sum(it[k] for it in iterations) / len(iterations) for k in keys}
    out["grad_norm"] = iterations[-1]["grad_norm"]
    return out


def grpo_mu2_case(name, lr, loss_type="dapo", beta=0.04, epsilon=0.2, epsilon_high=None, rewards=REWARDS,
                  importance_sampling_level="token", bias_correction=False):
    """num_iterations = 2: old_per_token_logps from the sampling-time weights (TRL computes them when
    num_iterations > 1), the loss, its backward, one clipped AdamW step, then the loss again on the
    updated weights against the same old log-probs and advantages; the second pass is where the clip
    metrics become non-zero."""
    from trl.trainer.grpo_trainer import GRPOTrainer
    from trl.trainer.utils import nanstd
    policy = load_lm("llama")
    ref_model = load_lm("llama_ref") if beta != 0 else None
    b = len(COMPLETIONS)
    prompt_ids = torch.tensor([PROMPTS[i // G] for i in range(b)])
    width = max(len(c) for c in COMPLETIONS)
    completion_ids = torch.tensor([c + [0] * (width - len(c)) for c in COMPLETIONS])
    completion_mask = torch.tensor([[1] * len(c) + [0] * (width - len(c)) for c in COMPLETIONS])
    ids = torch.cat([prompt_ids, completion_ids], 1)
    attn = torch.cat([torch.ones_like(prompt_ids), completion_mask], 1)
    r = torch.tensor(rewards, dtype=torch.float32)
    advantages, is_std_zero = grpo_advantages(r, "group")
    with torch.no_grad():
        old, _ = logps_and_entropies(policy, ids, attn, width)
    inputs = {"prompt_ids": prompt_ids, "prompt_mask": torch.ones_like(prompt_ids), "completion_ids": completion_ids,
              "completion_mask": completion_mask, "advantages": advantages, "old_per_token_logps": old,
              "num_items_in_batch": completion_mask.sum()}
    if beta != 0:
        with torch.no_grad():
            inputs["ref_per_token_logps"], _ = logps_and_entropies(ref_model, ids, attn, width)
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
    keys = ["loss", "entropy", "clip_ratio/low_mean", "clip_ratio/high_mean", "clip_ratio/region_mean"] + (["kl"] if beta != 0 else [])
    iterations = []
    policy.zero_grad()
    for _ in range(2):
        loss = GRPOTrainer._compute_loss(stub, policy, inputs)
        loss.backward()
        m = stub._metrics["train"]
        it = {"loss": loss.item(), **{k: m[k][-1] for k in keys if k != "loss"}}
        grad_norms = parameter_grad_norms(policy)  # the last step's, before clipping, as Nudge records them
        it["grad_norm"] = optimizer_step(policy, lr)
        iterations.append(it)
    expected = mu2_expected(iterations, keys)
    expected.update({"reward": torch.nanmean(r).item(), "reward_std": nanstd(r).item(),
                     "frac_reward_zero_std": is_std_zero.float().mean().item()})
    return {"name": name, "trainer": "GRPOTrainer._compute_loss x2 with clip_grad_norm_ + torch AdamW between",
            "loss_type": loss_type, "scale_rewards": "group", "beta": beta, "use_bias_correction_kl": bias_correction,
            "importance_sampling_level": importance_sampling_level, "epsilon": epsilon, "epsilon_high": epsilon_high, "num_generations": G,
            "num_iterations": 2, "learning_rate": lr, "max_grad_norm": 1.0,
            "max_completion_length": MAX_COMPLETION_LENGTH, "prompts": PROMPTS, "completions": COMPLETIONS,
            "rewards": rewards, "advantages": fl(advantages), "iterations": iterations, "expected": expected,
            "parameter_grad_norms": grad_norms}


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
    # μ = 2 (issue 23): a large enough step that the second pass clips.
    cases.append(grpo_mu2_case("mu2_dapo_beta", MU2_LR, loss_type="dapo", beta=0.04))
    cases.append(grpo_mu2_case("mu2_grpo_clip_higher", MU2_LR, loss_type="grpo", beta=0.0, epsilon=0.2, epsilon_high=0.28))
    # μ = 2 with GSPO's sequence-level ratio (its small ε and a small step: the second pass clips four
    # of the six sequences, not all, so a gradient is left) and with the KL bias correction (β > 0:
    # the k3 term weighted by the ratio, which is no longer 1).
    cases.append(grpo_mu2_case("mu2_gspo", 1e-6, loss_type="grpo", beta=0.0, epsilon=3e-4, epsilon_high=4e-4,
                               importance_sampling_level="sequence"))
    cases.append(grpo_mu2_case("mu2_bnpo_beta_bias_corrected", MU2_LR, loss_type="bnpo", beta=0.3, bias_correction=True))
    return cases


MU2_LR = 3e-3


# ---------------------------------------------------------------------------------------------
# RLOO end to end on the same fixture: RLOOTrainer._compute_loss on a stand-in self. Its
# _generate_and_score_completions computes old_logps (summed over the completion) and the
# ref log-probs with the sampling-time weights, subtracts β·Σ(log π_old − log π_ref) from each reward,
# and takes the leave-one-out advantages; rloo_advantages is that code verbatim.

def rloo_advantages(rewards, old_per_token_logps, ref_per_token_logps, completion_mask, beta, normalize_advantages=False):
    """trl/trainer/rloo_trainer.py (1.16.0) _generate_and_score_completions, lines 1663-1699, verbatim
    apart from the variable plumbing (one reward function of weight 1, no reward clipping, one process)."""
    from trl.trainer.utils import nanstd
    num_generations = G
    if beta != 0.0:
        per_token_kl = old_per_token_logps - ref_per_token_logps
        kl = (per_token_kl * completion_mask).sum(-1)
        rewards = rewards - beta * kl
    grouped_rewards = rewards.view(-1, num_generations)
    std_rewards = nanstd(grouped_rewards, dim=1)
    scorable_counts = (~torch.isnan(grouped_rewards)).sum(dim=1, keepdim=True)
    grouped_sum = torch.nansum(grouped_rewards, dim=1, keepdim=True)
    baselines = (grouped_sum - grouped_rewards) / (scorable_counts - 1)
    baselines = baselines.view(-1)
    advantages = rewards - baselines
    if normalize_advantages:
        advantages = (advantages - torch.nanmean(advantages)) / (nanstd(advantages) + 1e-4)
    advantages = torch.nan_to_num(advantages, nan=0.0)
    is_std_zero = torch.isclose(std_rewards, torch.zeros_like(std_rewards))
    kl_metric = (per_token_kl * completion_mask).sum() / completion_mask.sum().float().clamp(min=1.0) if beta != 0.0 else None
    return advantages, is_std_zero, kl_metric


def rloo_case(name, beta=0.05, epsilon=0.2, epsilon_high=None, num_iterations=1, lr=MU2_LR, rewards=REWARDS):
    from trl.trainer.rloo_trainer import RLOOTrainer
    from trl.trainer.utils import nanstd
    policy = load_lm("llama")
    ref_model = load_lm("llama_ref") if beta != 0 else None
    b = len(COMPLETIONS)
    prompt_ids = torch.tensor([PROMPTS[i // G] for i in range(b)])
    width = max(len(c) for c in COMPLETIONS)
    completion_ids = torch.tensor([c + [0] * (width - len(c)) for c in COMPLETIONS])
    completion_mask = torch.tensor([[1] * len(c) + [0] * (width - len(c)) for c in COMPLETIONS])
    ids = torch.cat([prompt_ids, completion_ids], 1)
    attn = torch.cat([torch.ones_like(prompt_ids), completion_mask], 1)
    r = torch.tensor(rewards, dtype=torch.float32)
    with torch.no_grad():
        old_per_token, _ = logps_and_entropies(policy, ids, attn, width)
        ref_per_token = logps_and_entropies(ref_model, ids, attn, width)[0] if beta != 0 else None
    advantages, is_std_zero, kl_metric = rloo_advantages(r, old_per_token, ref_per_token, completion_mask, beta)
    inputs = {"prompt_ids": prompt_ids, "prompt_mask": torch.ones_like(prompt_ids), "completion_ids": completion_ids,
              "completion_mask": completion_mask, "old_logps": (old_per_token * completion_mask).sum(1), "advantages": advantages}
    accel = Accel()
    accel.num_processes = 1
    accel.reduce = lambda x, reduction="sum": x
    stub = SimpleNamespace(
        _get_per_token_logps_and_entropies=lambda *a, **k: (*logps_and_entropies(*a, **k), None),
        aux_loss_enabled=False, epsilon_low=epsilon, epsilon_high=epsilon_high if epsilon_high is not None else epsilon,
        model=SimpleNamespace(training=True), accelerator=accel, _metrics={"train": defaultdict(list)})
    keys = ["loss", "entropy", "clip_ratio/low_mean", "clip_ratio/high_mean", "clip_ratio/region_mean"]
    iterations = []
    policy.zero_grad()
    for _ in range(num_iterations):
        loss = RLOOTrainer._compute_loss(stub, policy, inputs)
        loss.backward()
        m = stub._metrics["train"]
        it = {"loss": loss.item(), **{k: m[k][-1] for k in keys if k != "loss"}}
        grad_norms = parameter_grad_norms(policy)  # the last step's, before clipping, as Nudge records them
        it["grad_norm"] = optimizer_step(policy, lr)
        iterations.append(it)
    expected = mu2_expected(iterations, keys)
    expected.update({"reward": torch.nanmean(r).item(), "reward_std": nanstd(r).item(),
                     "frac_reward_zero_std": is_std_zero.float().mean().item()})
    if beta != 0:
        expected["kl"] = kl_metric.item()
    return {"name": name, "trainer": "RLOOTrainer._compute_loss" + (f" x{num_iterations} with clip_grad_norm_ + torch AdamW between" if num_iterations > 1 else ""),
            "beta": beta, "epsilon": epsilon, "epsilon_high": epsilon_high, "num_generations": G, "num_iterations": num_iterations,
            "learning_rate": lr, "max_grad_norm": 1.0, "max_completion_length": MAX_COMPLETION_LENGTH, "prompts": PROMPTS,
            "completions": COMPLETIONS, "rewards": rewards, "advantages": fl(advantages), "iterations": iterations,
            "expected": expected, "parameter_grad_norms": grad_norms}


def rloo_cases():
    return [
        rloo_case("rloo_default"),  # RLOOConfig's defaults: β 0.05, ε 0.2
        rloo_case("rloo_beta0", beta=0.0),
        rloo_case("rloo_clip_higher_beta", beta=0.2, epsilon=0.2, epsilon_high=0.28),
        # A group with equal raw rewards: TRL's frac_reward_zero_std is taken after the KL penalty.
        rloo_case("rloo_zero_std_group", rewards=[0.5, 0.5, 0.5, 0.75, 2.0, 0.0]),
        rloo_case("rloo_zero_std_group_beta0", beta=0.0, rewards=[0.5, 0.5, 0.5, 0.75, 2.0, 0.0]),
        rloo_case("rloo_mu2", num_iterations=2, lr=1e-4),  # partly clipped on the second pass
    ]


# ---------------------------------------------------------------------------------------------
# KTO on the tiny Llama fixture: KTOTrainer._compute_loss on a stand-in self, the models being the real
# weights with TRL's own fused LM head (add_fused_lm_head: per-token log-probs of the labels, entropies,
# mean logits, as KTOTrainer.__init__ installs it). The reference log-probs are precomputed with
# llama_ref by KTOTrainer.compute_ref_log_probs (precompute_ref_logps), and the KL rows are TRL's
# rotation of the completions by one within the batch: (x_1, y_n), (x_2, y_1), ...

KTO_PROMPTS = [[5, 17, 42, 9], [33, 8, 71], [12, 90, 4, 4, 61], [200, 3]]
KTO_COMPLETIONS = [[40, 2, 99], [7, 7, 61, 23, 5], [88, 14], [120, 31, 6, 77]]


def kto_batch(prompts, completions):
    rows = [p + c for p, c in zip(prompts, completions)]
    width = max(len(r) for r in rows)
    ids = torch.tensor([r + [0] * (width - len(r)) for r in rows])
    attn = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    cmask = torch.tensor([[0] * len(p) + [1] * len(c) + [0] * (width - len(p) - len(c)) for p, c in zip(prompts, completions)])
    return ids, attn, cmask


def kto_case(name, labels, beta=0.1, desirable_weight=1.0, undesirable_weight=1.0, policy_name="llama", reference_name="llama_ref"):
    from trl.trainer.kto_trainer import KTOTrainer
    from trl.trainer.utils import add_fused_lm_head
    policy, ref = load_lm(policy_name), load_lm(reference_name)
    add_fused_lm_head(policy, outputs=("log_probs", "entropy", "mean_logits"))
    add_fused_lm_head(ref)
    kl_completions = [KTO_COMPLETIONS[-1]] + KTO_COMPLETIONS[:-1]
    ids, attn, cmask = kto_batch(KTO_PROMPTS, KTO_COMPLETIONS)
    kl_ids, kl_attn, kl_cmask = kto_batch(KTO_PROMPTS, kl_completions)
    batch = {"input_ids": ids, "attention_mask": attn, "completion_mask": cmask, "KL_input_ids": kl_ids,
             "KL_attention_mask": kl_attn, "KL_completion_mask": kl_cmask, "label": torch.tensor(labels)}
    stub = SimpleNamespace(
        accelerator=Accel(), model=SimpleNamespace(training=True), aux_loss_enabled=False, precompute_ref_logps=True,
        calculate_KL=True, loss_type="kto", beta=beta, desirable_weight=desirable_weight,
        undesirable_weight=undesirable_weight, _metrics={"train": defaultdict(list)}, _total_train_tokens=0, _tp_size=1,
        args=SimpleNamespace(gradient_checkpointing_kwargs=None))
    stub._compute_kl_logps = lambda model, b: KTOTrainer._compute_kl_logps(stub, model, b)
    stub.compute_ref_log_probs = lambda model, b: KTOTrainer.compute_ref_log_probs(stub, model, b)
    stub.ref_model = ref
    stub.model = SimpleNamespace(training=True, is_gradient_checkpointing=False)
    # precompute_ref_logps: TRL's _precompute_ref_logps calls compute_ref_log_probs on the reference.
    with torch.no_grad():
        batch["ref_logps"], batch["ref_KL_logps"] = KTOTrainer.compute_ref_log_probs(
            SimpleNamespace(ref_model=ref, model=stub.model, calculate_KL=True, accelerator=Accel(),
                            args=SimpleNamespace(gradient_checkpointing_kwargs=None)), ref, batch)
    policy.zero_grad()
    loss = KTOTrainer._compute_loss(stub, policy, batch, False)
    loss.backward()
    grads = [p.grad.detach().reshape(-1) for p in policy.parameters() if p.grad is not None]
    m = stub._metrics["train"]
    expected = {"loss": loss.item(), "grad_norm": torch.linalg.vector_norm(torch.cat(grads)).item(), "kl": m["kl"][-1]}
    for k in ["rewards/chosen", "rewards/rejected", "rewards/margins", "logps/chosen", "logps/rejected", "entropy",
              "logits/chosen", "logits/rejected"]:
        if m[k]:
            expected[k] = m[k][-1]
    return {"name": name, "trainer": "KTOTrainer._compute_loss (precompute_ref_logps, calculate_KL)", "beta": beta,
            "desirable_weight": desirable_weight, "undesirable_weight": undesirable_weight, "policy": policy_name,
            "reference": reference_name, "prompts": KTO_PROMPTS,
            "completions": KTO_COMPLETIONS, "labels": labels, "expected": expected,
            "parameter_grad_norms": parameter_grad_norms(policy)}


def kto_cases():
    return [
        kto_case("kto_default", [True, False, True, False]),  # KTOConfig's defaults: β 0.1, weights 1
        kto_case("kto_weighted", [True, True, True, False], beta=0.5, desirable_weight=1.0, undesirable_weight=1.33),
        kto_case("kto_all_desirable", [True, True, True, True], beta=0.3),
        # Policy and reference swapped: the KL estimate is negative and clamped to 0.
        kto_case("kto_clamped_kl", [False, True, False, False], beta=0.2, policy_name="llama_ref", reference_name="llama"),
    ]


# ---------------------------------------------------------------------------------------------
# DPO end to end on the tiny Llama fixture (policy llama, reference llama_ref): B = 3 pairs whose
# prompts, chosen and rejected completions all have different lengths, batched by TRL's own
# DataCollatorForPreference (prompt + completion rows, chosen rows then rejected rows, right-padded).
# The reference log-probs are precomputed by DPOTrainer.compute_ref_log_probs (precompute_ref_logps,
# what DPOTrainer does when given a reference or by default), the loss and every metric by
# DPOTrainer._compute_loss, both unbound on a stand-in self, the models carrying TRL's fused LM head
# with the outputs DPOTrainer.__init__ asks for (log_probs, entropy, mean_logits, is_top1). Two
# training steps: loss, backward, clip_grad_norm_ (its return is the logged grad_norm), one torch
# AdamW step (constant learning rate, weight decay 0), then the second step's loss on the updated
# weights, so the update itself is compared too. TRL's default linear learning-rate decay is not
# part of it (Nudge's offline trainers keep the rate constant), nor is learning_rate.

DPO_PROMPTS = [[5, 17, 42, 9], [33, 8, 71], [12, 90, 4, 4, 61]]
DPO_CHOSEN = [[40, 2, 99], [7, 7, 61, 23, 5], [88, 14]]
DPO_REJECTED = [[120, 31, 6, 77], [64], [3, 50, 11, 19, 2, 8]]
DPO_METRICS = ["entropy", "num_tokens", "logits/chosen", "logits/rejected", "mean_token_accuracy", "rewards/chosen",
               "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen", "logps/rejected"]


def dpo_trainer_case(name, loss_types, loss_weights, beta, nudge, lr=1e-3, max_grad_norm=1.0, steps=2, label_smoothing=0.0):
    from trl.trainer.dpo_trainer import DataCollatorForPreference
    from trl.trainer.utils import add_fused_lm_head
    policy, ref = load_lm("llama"), load_lm("llama_ref")
    add_fused_lm_head(policy, outputs=("log_probs", "entropy", "mean_logits", "is_top1"))  # DPOTrainer.__init__, line 957
    add_fused_lm_head(ref)
    examples = [{"prompt_ids": p, "chosen_ids": c, "rejected_ids": r} for p, c, r in zip(DPO_PROMPTS, DPO_CHOSEN, DPO_REJECTED)]
    batch = DataCollatorForPreference(pad_token_id=0)(examples)
    model_stub = SimpleNamespace(training=True, is_gradient_checkpointing=False)
    ref_stub = SimpleNamespace(accelerator=Accel(), ref_model=ref, model=model_stub, ld_alpha=None,
                               args=SimpleNamespace(gradient_checkpointing_kwargs=None))
    batch["ref_chosen_logps"], batch["ref_rejected_logps"] = DPOTrainer.compute_ref_log_probs(ref_stub, ref, batch)
    stub = SimpleNamespace(
        model=model_stub, accelerator=Accel(), aux_loss_enabled=False, ld_alpha=None, precompute_ref_logps=True,
        f_divergence_type="reverse_kl", loss_types=loss_types, loss_weights=loss_weights, beta=beta, label_smoothing=label_smoothing,
        use_weighting=False, _metrics={"train": defaultdict(list)}, _total_train_tokens=0, _tp_size=1,
        args=SimpleNamespace(gradient_checkpointing_kwargs=None))
    opt = torch.optim.AdamW(policy.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    iterations = []
    grad_norms = None
    for step in range(steps):
        policy.zero_grad()
        loss = DPOTrainer._compute_loss(stub, policy, batch, False)
        loss.backward()
        if step == 0:
            grad_norms = parameter_grad_norms(policy)  # the first step's, before clipping
        m = stub._metrics["train"]
        it = {"loss": loss.item(), **{k: float(m[k][-1]) for k in DPO_METRICS}}
        it["grad_norm"] = torch.nn.utils.clip_grad_norm_(list(policy.parameters()), max_grad_norm).item()
        opt.step()
        iterations.append(it)
    return {"name": name, "trainer": f"DPOTrainer._compute_loss x{steps} with clip_grad_norm_ + torch AdamW between",
            "loss_type": loss_types, "loss_weights": loss_weights, "beta": beta, "nudge": nudge, "learning_rate": lr,
            "max_grad_norm": max_grad_norm, "policy": "llama", "reference": "llama_ref", "prompts": DPO_PROMPTS,
            "chosen": DPO_CHOSEN, "rejected": DPO_REJECTED,
            "ref_chosen_logps": fl(batch["ref_chosen_logps"]), "ref_rejected_logps": fl(batch["ref_rejected_logps"]),
            "iterations": iterations, "parameter_grad_norms": grad_norms}


def dpo_trainer_cases():
    return [
        dpo_trainer_case("dpo_sigmoid", ["sigmoid"], [1.0], 0.1, {"loss": "sigmoid"}),
        # IPO: TRL divides each log-ratio by its completion's token count (the length-normalised one).
        dpo_trainer_case("dpo_ipo", ["ipo"], [1.0], 0.4, {"loss": "ipo"}),
        # RPO: TRL 1.16's loss list, sigmoid + 0.6 x sft (the token mean NLL of the chosen completions).
        dpo_trainer_case("dpo_rpo", ["sigmoid", "sft"], [1.0, 0.6], 0.2, {"loss": "rpo", "alpha": 0.6}),
        dpo_trainer_case("dpo_robust", ["robust"], [1.0], 0.3, {"loss": "robust", "epsilon": 0.1}, label_smoothing=0.1),
        dpo_trainer_case("dpo_hinge", ["hinge"], [1.0], 0.7, {"loss": "hinge"}, lr=2e-5),
        # The reference-free losses against TRL's own trainers (no reference model).
        reference_free_trainer_case("cpo", CPOTrainer, "sigmoid", 0.3, {"loss": "cpo", "lambda": 0.7}, cpo_alpha=0.7),
        # SimPO: CPOTrainer with loss_type "simpo" and cpo_alpha 0 (CPOConfig's SimPO setting; no NLL term).
        # β 1 (not 2): rewards/margins is a difference of two rewards near -6, so one float32 ulp of them stays
        # well inside the 1e-6 absolute tolerance (at β 2, near -12, one ulp is 9.5e-7).
        reference_free_trainer_case("simpo", CPOTrainer, "simpo", 1.0, {"loss": "simpo", "gamma": 0.8}, simpo_gamma=0.8),
        # ORPO: TRL's β is the odds-ratio weight λ (and scales the reported rewards).
        reference_free_trainer_case("orpo", ORPOTrainer, "sigmoid", 0.25, {"loss": "orpo", "lambda": 0.25}),
    ]


# CPO, SimPO and ORPO end to end: the same prompts and completions, tokenized as CPOTrainer /
# ORPOTrainer.tokenize_row leaves them (prompt + completion ids, labels -100 on the prompt; no BOS or
# EOS is added, the ids are taken as given, as Nudge's pre-tokenized rows are), batched by their
# DPODataCollatorWithPadding (right-padded with pad id 0, labels with -100), then compute_loss ->
# get_batch_loss_metrics -> concatenated_forward (TRL's own, on the plain model's logits) -> cpo_loss /
# odds_ratio_loss, unbound on a stand-in self; the same two clipped AdamW steps as dpo_trainer_case.
# The NLL term is TRL's: CPO's cross-entropy over the chosen completion tokens (x cpo_alpha), ORPO's over
# the chosen rows' whole sequences (prompt and completion, padding excluded).
# Compared: loss, grad_norm (and per parameter), rewards/*, logps/*. Not compared (kept in the case's
# "not_compared" with TRL's values): the metrics below, which Nudge does not log under these definitions.
REFERENCE_FREE_NOT_COMPARED = {
    "logits/chosen": "TRL: the mean logit over every position of the chosen rows (prompt and padding included) "
                     "and the whole vocabulary; Nudge logs logits/* only for DPOTrainer's definition (completion tokens)",
    "logits/rejected": "as logits/chosen, over the rejected rows",
    "nll_loss": "not logged by Nudge; the NLL term is compared through loss and the gradients",
    "log_odds_ratio": "ORPO only: mean log sigma(log odds ratio); not logged by Nudge (it is in loss)",
    "log_odds_chosen": "ORPO only: mean log odds ratio; not logged by Nudge (it is in loss)",
}
REFERENCE_FREE_METRICS = ["rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen",
                          "logps/rejected"]


def reference_free_trainer_case(name, trainer, loss_type, beta, nudge, cpo_alpha=0.0, simpo_gamma=0.0, lr=1e-3,
                                max_grad_norm=1.0, steps=2):
    from trl.experimental.utils import DPODataCollatorWithPadding
    policy = load_lm("llama")
    features = []
    for p, c, r in zip(DPO_PROMPTS, DPO_CHOSEN, DPO_REJECTED):
        f = {"prompt_input_ids": p, "prompt_attention_mask": [1] * len(p)}
        for key, completion in [("chosen", c), ("rejected", r)]:
            f[f"{key}_input_ids"] = p + completion
            f[f"{key}_attention_mask"] = [1] * (len(p) + len(completion))
            f[f"{key}_labels"] = [-100] * len(p) + completion
        features.append(f)
    batch = DPODataCollatorWithPadding(pad_token_id=0, is_encoder_decoder=False)(features)
    stub = SimpleNamespace(
        accelerator=Accel(), is_encoder_decoder=False, aux_loss_enabled=False, pad_token_id=0, padding_value=0,
        beta=beta, loss_type=loss_type, label_smoothing=0.0, alpha=0.0, simpo_gamma=simpo_gamma, cpo_alpha=cpo_alpha,
        _peft_has_been_casted_to_bf16=False, _stored_metrics=defaultdict(lambda: defaultdict(list)),
        args=SimpleNamespace(device=torch.device("cpu")))
    stub.concatenated_inputs = trainer.concatenated_inputs
    stub.get_batch_logps = trainer.get_batch_logps
    stub.concatenated_forward = lambda model, b: trainer.concatenated_forward(stub, model, b)
    if trainer is CPOTrainer:
        stub.cpo_loss = lambda c, r: CPOTrainer.cpo_loss(stub, c, r)
    else:
        stub.odds_ratio_loss = lambda c, r: ORPOTrainer.odds_ratio_loss(stub, c, r)
    stub.get_batch_loss_metrics = lambda model, b, train_eval="train": trainer.get_batch_loss_metrics(stub, model, b, train_eval)
    stub.store_metrics = lambda metrics, train_eval="train": trainer.store_metrics(stub, metrics, train_eval)
    opt = torch.optim.AdamW(policy.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    iterations, not_compared = [], []
    grad_norms = None
    for step in range(steps):
        policy.zero_grad()
        loss = trainer.compute_loss(stub, policy, batch)
        loss.backward()
        if step == 0:
            grad_norms = parameter_grad_norms(policy)  # the first step's, before clipping
        # What log() averages since the last log (one loss computation per logged step here).
        stored = {k: torch.tensor(v).mean().item() for k, v in stub._stored_metrics["train"].items()}
        stub._stored_metrics["train"].clear()
        unknown = set(stored) - set(REFERENCE_FREE_METRICS) - set(REFERENCE_FREE_NOT_COMPARED)
        assert not unknown, unknown
        it = {"loss": loss.item(), **{k: stored[k] for k in REFERENCE_FREE_METRICS}}
        it["grad_norm"] = torch.nn.utils.clip_grad_norm_(list(policy.parameters()), max_grad_norm).item()
        opt.step()
        iterations.append(it)
        not_compared.append({k: v for k, v in stored.items() if k in REFERENCE_FREE_NOT_COMPARED})
    return {"name": name, "trainer": f"{trainer.__name__}.compute_loss x{steps} with clip_grad_norm_ + torch AdamW between",
            "loss_type": [loss_type], "beta": beta, "cpo_alpha": cpo_alpha if trainer is CPOTrainer else None,
            "simpo_gamma": simpo_gamma if loss_type == "simpo" else None, "nudge": nudge, "learning_rate": lr,
            "max_grad_norm": max_grad_norm, "policy": "llama", "reference": None, "prompts": DPO_PROMPTS,
            "chosen": DPO_CHOSEN, "rejected": DPO_REJECTED, "iterations": iterations, "parameter_grad_norms": grad_norms,
            "not_compared": {k: REFERENCE_FREE_NOT_COMPARED[k] for k in not_compared[0]},
            "not_compared_trl_values": not_compared}


# ---------------------------------------------------------------------------------------------
# PPO-RLHF. TRL 1.16 no longer ships PPOTrainer (trl/experimental/ppo was dropped after 1.10), so
# the reference is trl/experimental/ppo/ppo_trainer.py at huggingface/trl commit f2cd577 (1.10.0.dev0,
# 2026-07-24), the last PPOTrainer: ppo_rlhf_case mirrors its train() from the rollout tensors on,
# statement for statement, on the tiny Llama fixture (policy llama, reference llama_ref, value model =
# a second llama_ref trunk with a fixed score head), using installed trl 1.16's own helpers where they
# still exist (get_reward, first_true_indices, selective_log_softmax). Line numbers below are that file's.
#
# Where the score goes (PPORLHF.swift's header): TRL adds it at sequence_lengths + 1 when that is
# inside the response and trains values one position past the last real token (padding_mask_p1);
# Nudge by default at the last real token. The ppo_* cases' completions fill the whole response
# length (response_length = 6, no pad, no stop token), where TRL's actual_end (line 778) falls back to
# sequence_lengths and padding_mask_p1 equals padding_mask: the two placements coincide (asserted).
# The ppo_trl_score_position* cases have completions of unequal lengths, right-padded with the pad id
# as TRL's responses are, against Nudge's scorePosition = .afterLastToken. Two statistics are not
# compared there: TRL's objective/entropy sums −logprob over the padding too, where it set the
# logprob to INVALID_LOGPROB = 1 (each pad subtracts 1), and its policy/entropy_avg averages the
# entropy of the pad positions' logits as well (which depend on how pads are fed to the model);
# Nudge's are over the completion tokens only.

PPO_PROMPTS = [[5, 17, 42, 9], [33, 8, 71, 12], [12, 90, 4, 61], [200, 3, 77, 15]]
PPO_COMPLETIONS = [[40, 7, 99, 23, 5, 61], [7, 7, 61, 23, 5, 88], [88, 14, 120, 31, 6, 77], [64, 9, 3, 50, 11, 18]]
PPO_SCORES = [1.0, -0.5, 0.25, 2.0]
PPO_UNEQUAL = [[40, 7, 99, 23, 5, 61], [7, 7, 61], [88, 14, 120, 31, 6], [64, 9]]
PAD = 0  # the fixture's pad id; no fixture token is 0, so TRL's attention masks are all ones


def ppo_masked_mean(values, mask):  # ppo_trainer.py 237-242 (axis=None)
    return (values * mask).sum() / mask.sum()


def ppo_masked_var(values, mask):  # 245-261, unbiased
    mean = ppo_masked_mean(values, mask)
    variance = ppo_masked_mean((values - mean) ** 2, mask)
    mask_sum = mask.sum()
    return variance * (mask_sum / (mask_sum - 1))


def ppo_masked_whiten(values, mask, shift_mean=True):  # 264-270
    mean, var = ppo_masked_mean(values, mask), ppo_masked_var(values, mask)
    whitened = (values - mean) * torch.rsqrt(var + 1e-8)
    if not shift_mean:
        whitened += mean
    return whitened


def ppo_forward(model, query_responses, pad_token_id):  # forward(), 191-220
    attention_mask = query_responses != pad_token_id
    position_ids = attention_mask.cumsum(1) - attention_mask.long()
    input_ids = torch.masked_fill(query_responses, ~attention_mask, 0)
    return model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, return_dict=True,
                 output_hidden_states=True)


class PPOValueModel(torch.nn.Module):
    """AutoModelForSequenceClassification's shape: a backbone under base_model_prefix and a bias-free score."""

    base_model_prefix = "model"

    def __init__(self, backbone, score_weight):
        super().__init__()
        self.model = backbone
        self.score = torch.nn.Linear(score_weight.shape[1], 1, bias=False)
        with torch.no_grad():
            self.score.weight.copy_(score_weight)


class PPOPolicyAndValue(torch.nn.Module):  # PolicyAndValueWrapper, 275-294
    def __init__(self, policy, value_model):
        super().__init__()
        self.policy = policy
        self.value_model = value_model
        self.critic_backbone = getattr(value_model, value_model.base_model_prefix)

    def forward(self, **kwargs):
        output = self.critic_backbone(**kwargs)
        logits = self.value_model.score(output.hidden_states[-1])
        return self.policy(**kwargs), logits


def ppo_score_weight():
    g = torch.Generator().manual_seed(2023)
    return torch.randn(1, 64, generator=g) * 0.125


def ppo_rlhf_case(name, kl_coef=0.05, kl_estimator="k1", gamma=1.0, lam=0.95, cliprange=0.2, cliprange_value=0.2,
                  vf_coef=0.1, temperature=0.7, whiten_rewards=False, num_ppo_epochs=1, lr=3e-6, completions=None):
    completions = completions or PPO_COMPLETIONS
    full_length = all(len(c) == len(completions[0]) for c in completions)
    from trl.experimental.utils import first_true_indices, get_reward
    from trl.trainer.utils import selective_log_softmax
    # Run in float64 (TRL's code on the float32 weights cast up): in float32 the reference's own
    # gradient norm is off by 1.3e-5 relative on ppo_default (against float64), more than the
    # tolerance, while Nudge's float32 is within 1e-7 of float64.
    policy, ref_policy = load_lm("llama").double(), load_lm("llama_ref").double()
    weight = ppo_score_weight()
    value_model = PPOValueModel(load_lm("llama_ref").model, weight).double()
    model = PPOPolicyAndValue(policy, value_model)
    # TRL's optimizer: HF Trainer's AdamW (betas 0.9/0.999, eps 1e-8, weight_decay 0); the scheduler
    # steps once per rollout batch (line 911), so the lr is constant within it. TRL's loop never clips
    # gradients (no clip_grad_norm_ in train(); max_grad_norm is unused).
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    queries = torch.tensor(PPO_PROMPTS)
    width = max(len(c) for c in completions)
    responses = torch.tensor([c + [PAD] * (width - len(c)) for c in completions])
    context_length = queries.shape[1]
    query_responses = torch.cat([queries, responses], 1)
    with torch.no_grad():
        # Rollout (711-748): the sampling logits are the policy's divided by temperature + 1e-7
        # (generation_kwargs, 616); the reference's likewise (724-726); values by get_reward (737-740).
        logits = ppo_forward(policy, query_responses, PAD).logits[:, context_length - 1: -1] / (temperature + 1e-7)
        logprobs = selective_log_softmax(logits, responses)
        ref_logits = ppo_forward(ref_policy, query_responses, PAD).logits[:, context_length - 1: -1]
        ref_logits /= temperature + 1e-7
        ref_logprobs = selective_log_softmax(ref_logits, responses)
        postprocessed_responses = responses  # stop_token_id None: no truncation
        sequence_lengths = first_true_indices(postprocessed_responses == PAD) - 1
        full_value, _, _ = get_reward(value_model, query_responses, PAD, context_length)
        values = full_value[:, context_length - 1: -1].squeeze(-1)
        scores = torch.tensor(PPO_SCORES, dtype=torch.float64)
        # 762-799, verbatim.
        response_idxs = torch.arange(responses.shape[1]).repeat(responses.shape[0], 1)
        padding_mask = response_idxs > sequence_lengths.unsqueeze(1)
        logprobs = torch.masked_fill(logprobs, padding_mask, INVALID_LOGPROB)
        ref_logprobs = torch.masked_fill(ref_logprobs, padding_mask, INVALID_LOGPROB)
        sequence_lengths_p1 = sequence_lengths + 1
        padding_mask_p1 = response_idxs > (sequence_lengths_p1.unsqueeze(1))
        values = torch.masked_fill(values, padding_mask_p1, 0)
        logr = ref_logprobs - logprobs
        kl = -logr if kl_estimator == "k1" else (logr.exp() - 1) - logr
        non_score_reward = -kl_coef * kl
        rewards = non_score_reward.clone()
        actual_start = torch.arange(rewards.size(0))
        actual_end = torch.where(sequence_lengths_p1 < rewards.size(1), sequence_lengths_p1, sequence_lengths)
        if full_length:
            assert torch.equal(actual_end, sequence_lengths) and torch.equal(padding_mask_p1, padding_mask)
        rewards[actual_start, actual_end] += scores
        if whiten_rewards:
            rewards = ppo_masked_whiten(rewards, mask=~padding_mask_p1, shift_mean=False)
            rewards = torch.masked_fill(rewards, padding_mask_p1, 0)
        lastgaelam = 0
        advantages_reversed = []
        gen_length = responses.shape[1]
        for t in reversed(range(gen_length)):
            nextvalues = values[:, t + 1] if t < gen_length - 1 else 0.0
            delta = rewards[:, t] + gamma * nextvalues - values[:, t]
            lastgaelam = delta + gamma * lam * lastgaelam
            advantages_reversed.append(lastgaelam)
        advantages = torch.stack(advantages_reversed[::-1], axis=1)
        returns = advantages + values
        raw_advantages = advantages.clone()
        advantages = ppo_masked_whiten(advantages, ~padding_mask)
        advantages = torch.masked_fill(advantages, padding_mask, 0)
    # 801-868 with one mini-batch of the whole batch and no gradient accumulation: the permutation
    # (803) only reorders rows inside means, so it is left out.
    stats = defaultdict(list)
    grad_norms = []
    for _ in range(num_ppo_epochs):
        mb_advantage, mb_responses, mb_query_responses = advantages, responses, query_responses
        mb_logprobs, mb_return, mb_values = logprobs, returns, values
        output, vpred_temp = ppo_forward(model, mb_query_responses, PAD)
        logits = output.logits[:, context_length - 1: -1]
        logits /= temperature + 1e-7
        new_logprobs = selective_log_softmax(logits, mb_responses)
        new_logprobs = torch.masked_fill(new_logprobs, padding_mask, INVALID_LOGPROB)
        vpred = vpred_temp[:, context_length - 1: -1].squeeze(-1)
        vpred = torch.masked_fill(vpred, padding_mask_p1, 0)
        vpredclipped = torch.clamp(vpred, mb_values - cliprange_value, mb_values + cliprange_value)
        vf_losses1 = torch.square(vpred - mb_return)
        vf_losses2 = torch.square(vpredclipped - mb_return)
        vf_loss_max = torch.max(vf_losses1, vf_losses2)
        vf_loss = 0.5 * ppo_masked_mean(vf_loss_max, ~padding_mask_p1)
        vf_clipfrac = ppo_masked_mean((vf_losses2 > vf_losses1).float(), ~padding_mask_p1)
        logprobs_diff = new_logprobs - mb_logprobs
        ratio = torch.exp(logprobs_diff)
        pg_losses = -mb_advantage * ratio
        pg_losses2 = -mb_advantage * torch.clamp(ratio, 1.0 - cliprange, 1.0 + cliprange)
        pg_loss_max = torch.max(pg_losses, pg_losses2)
        pg_loss = ppo_masked_mean(pg_loss_max, ~padding_mask)
        loss = pg_loss + vf_coef * vf_loss
        loss.backward()
        # Not a TRL statistic: the gradient's norm (Nudge logs grad_norm, the pre-clip norm).
        grad_norms.append(torch.linalg.vector_norm(torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.grad is not None])).item())
        optimizer.step()
        optimizer.zero_grad()
        with torch.no_grad():
            pg_clipfrac = ppo_masked_mean((pg_losses2 > pg_losses).float(), ~padding_mask)
            prob_dist = torch.nn.functional.softmax(logits, dim=-1)
            entropy = torch.logsumexp(logits, dim=-1) - torch.sum(prob_dist * logits, dim=-1)
            approxkl = 0.5 * (logprobs_diff ** 2).mean()
            for k, v in [("approxkl", approxkl), ("pg_clipfrac", pg_clipfrac), ("pg_loss", pg_loss), ("vf_loss", vf_loss),
                         ("vf_clipfrac", vf_clipfrac), ("entropy", entropy.mean()), ("ratio", ratio.mean())]:
                stats[k].append(v.item())
    with torch.no_grad():  # 880-903
        mean_kl = kl.sum(1).mean()
        mean_entropy = (-logprobs).sum(1).mean()
        mean_non_score_reward = non_score_reward.sum(1).mean()
        rlhf_reward = mean_non_score_reward + scores.mean()
    st = {k: torch.tensor(v) for k, v in stats.items()}
    expected = {
        "objective/kl": mean_kl.item(), "objective/entropy": mean_entropy.item(),
        "objective/non_score_reward": mean_non_score_reward.item(), "objective/rlhf_reward": rlhf_reward.item(),
        "objective/scores": scores.mean().item(), "policy/approxkl_avg": st["approxkl"].mean().item(),
        "policy/clipfrac_avg": st["pg_clipfrac"].mean().item(), "loss/policy_avg": st["pg_loss"].mean().item(),
        "loss/value_avg": st["vf_loss"].mean().item(), "val/clipfrac_avg": st["vf_clipfrac"].mean().item(),
        "policy/entropy_avg": st["entropy"].mean().item(), "val/ratio": st["ratio"].mean().item(),
        "grad_norm": sum(grad_norms) / len(grad_norms),
    }
    if len(stats["ratio"]) > 1:
        expected["val/ratio_var"] = st["ratio"].var().item()
    return {"name": name, "reference": "huggingface/trl@f2cd577 trl/experimental/ppo/ppo_trainer.py PPOTrainer.train, lines 711-903",
            "kl_coef": kl_coef, "kl_estimator": kl_estimator, "gamma": gamma, "lam": lam, "cliprange": cliprange,
            "cliprange_value": cliprange_value, "vf_coef": vf_coef, "temperature": temperature, "whiten_rewards": whiten_rewards,
            "num_ppo_epochs": num_ppo_epochs, "num_mini_batches": 1, "learning_rate": lr, "prompts": PPO_PROMPTS,
            "completions": completions, "scores": PPO_SCORES, "value_score_weight": fl(weight),
            "score_position": "last_token" if full_length else "after_last_token",
            "not_compared": [] if full_length else ["objective/entropy", "policy/entropy_avg"],
            "raw_advantages_first_token": fl(raw_advantages[:, 0]), "iterations": stats, "expected": expected}


INVALID_LOGPROB = 1.0  # ppo_trainer.py line 69


def ppo_rlhf_cases():
    return [
        ppo_rlhf_case("ppo_default"),  # PPOConfig's loss defaults: β 0.05 k1, γ 1, λ 0.95, ε 0.2, vf 0.1
        # Two epochs with a large step: the second pass clips both the ratio and the values.
        ppo_rlhf_case("ppo_two_epochs", gamma=0.9, lam=0.8, num_ppo_epochs=2, lr=5e-4, kl_coef=0.2),
        ppo_rlhf_case("ppo_k3_whitened_rewards", kl_estimator="k3", kl_coef=0.3, whiten_rewards=True, num_ppo_epochs=2,
                      lr=3e-4, cliprange=0.1, cliprange_value=0.05, vf_coef=0.5, temperature=1.0),
        # Unequal lengths (6, 3, 5, 2): TRL's score one past the last token of the three short rows.
        ppo_rlhf_case("ppo_trl_score_position", num_ppo_epochs=2, lr=5e-4, kl_coef=0.1, completions=PPO_UNEQUAL),
        ppo_rlhf_case("ppo_trl_score_position_k3_whitened", kl_estimator="k3", kl_coef=0.3, gamma=0.9, lam=0.8,
                      whiten_rewards=True, num_ppo_epochs=2, lr=3e-4, vf_coef=0.5, completions=PPO_UNEQUAL),
    ]


# ---------------------------------------------------------------------------------------------
# REINFORCE++ against OpenRLHF (OpenRLHF/OpenRLHF@3c3be62, 2026-08-13; not on PyPI in a form that runs
# without Ray/DeepSpeed/flash-attn, so its functions are mirrored here, statement for statement):
# openrlhf/models/utils.py compute_approx_kl (64-95: k1 = log π − log π_ref, clamped to ±10) and
# compute_reward (98-123: −β·kl per token, the reward scattered at the last action token);
# openrlhf/trainer/ppo_utils/experience_maker.py compute_advantages_and_returns (238-330: the
# reinforce_baseline group-mean subtraction, γ forced to 1 for it, get_cumulative_returns 380-410,
# whitening over every action token of the batch with the population variance and
# rsqrt(clamp(var, 1e-8))); openrlhf/models/loss.py PolicyLoss (116-230, "ppo", token-level: the
# clipped surrogate summed over the batch's action tokens / their count). The policy and reference
# log-probs come from the tiny Llama fixture (log-softmax of the logits, what log_probs_from_logits
# computes at temperature 1); the rollout is the GRPO cases' (G = 3).


def openrlhf_compute_approx_kl(log_probs, log_probs_base, kl_estimator="k1"):
    log_ratio = log_probs.float() - log_probs_base.float()
    assert kl_estimator == "k1"
    return log_ratio.clamp(min=-10, max=10)


def openrlhf_compute_reward(r, kl_coef, kl, action_mask):
    if kl_coef <= 0.0:
        kl_coef = 0.0
    kl_reward = -kl_coef * kl
    eos_indices = action_mask.size(1) - 1 - action_mask.long().fliplr().argmax(dim=1, keepdim=True)
    last_reward = torch.zeros_like(kl).scatter_(dim=1, index=eos_indices, src=r.unsqueeze(1).to(kl.dtype))
    return last_reward + kl_reward


def openrlhf_cumulative_returns(rewards, action_mask, gamma):
    response_length = rewards.size(1)
    returns = torch.zeros_like(rewards)
    cumulative_return = torch.zeros(rewards.size(0))
    if action_mask is not None:
        rewards = action_mask * rewards
    for t in reversed(range(response_length)):
        cumulative_return = rewards[:, t] + gamma * cumulative_return
        returns[:, t] = cumulative_return
    return returns


def openrlhf_advantages(raw_rewards, kl, action_mask, estimator, kl_coef, gamma, n_samples_per_prompt):
    rewards = raw_rewards.reshape(-1, n_samples_per_prompt)
    if estimator == "reinforce_baseline":
        rewards = rewards - rewards.mean(-1, keepdim=True)
        gamma = 1.0
    rewards = rewards.reshape(-1)
    reward = openrlhf_compute_reward(rewards, kl_coef, kl, action_mask)
    advantages = openrlhf_cumulative_returns(reward, action_mask, gamma)
    all_advantages = advantages.flatten().float()
    all_action_masks = action_mask.flatten()
    num_actions = all_action_masks.sum()
    mean = (all_advantages * all_action_masks).sum() / num_actions
    var = ((all_advantages - mean).pow(2) * all_action_masks).sum() / num_actions
    rstd = var.clamp(min=1e-8).rsqrt()
    return (advantages - mean) * rstd


def openrlhf_policy_loss(log_probs, old_log_probs, advantages, action_mask, clip_eps_low=0.2, clip_eps_high=0.2):
    raw_policy_log_ratio = log_probs - old_log_probs
    ratio = raw_policy_log_ratio.clamp(min=-20.0, max=20.0).exp()
    surr1 = ratio * advantages
    surr2 = ratio.clamp(1 - clip_eps_low, 1 + clip_eps_high) * advantages
    loss = -torch.min(surr1, surr2)
    # aggregate_loss, token_level_loss with one micro-batch and dp_size 1: the token mean.
    return (loss * action_mask).sum() / action_mask.sum()


def reinforce_pp_log_probs(model, ids, attn, width, temperature):
    """log_probs_from_logits (openrlhf/models/utils.py): the logits divided by the temperature, log-softmax, gathered."""
    logits = model(input_ids=ids, attention_mask=attn).logits[:, -width - 1:-1, :]
    if temperature != 1.0:
        logits = logits / temperature
    return torch.log_softmax(logits.float(), dim=-1).gather(-1, ids[:, -width:].unsqueeze(-1)).squeeze(-1)


def reinforce_pp_case(name, estimator="reinforce", beta=0.05, gamma=1.0, num_iterations=1, lr=1e-4, rewards=REWARDS,
                      temperature=1.0):
    policy, ref_model = load_lm("llama"), load_lm("llama_ref")
    b = len(COMPLETIONS)
    prompt_ids = torch.tensor([PROMPTS[i // G] for i in range(b)])
    width = max(len(c) for c in COMPLETIONS)
    completion_ids = torch.tensor([c + [0] * (width - len(c)) for c in COMPLETIONS])
    action_mask = torch.tensor([[1] * len(c) + [0] * (width - len(c)) for c in COMPLETIONS]).float()
    ids = torch.cat([prompt_ids, completion_ids], 1)
    attn = torch.cat([torch.ones_like(prompt_ids), action_mask.long()], 1)
    with torch.no_grad():
        old = reinforce_pp_log_probs(policy, ids, attn, width, temperature)
        ref = reinforce_pp_log_probs(ref_model, ids, attn, width, temperature)
    kl = openrlhf_compute_approx_kl(old, ref) * action_mask
    clamped = int(((old - ref).abs() * action_mask > 10).sum())
    advantages = openrlhf_advantages(torch.tensor(rewards), kl, action_mask, estimator, beta, gamma, G)
    iterations = []
    policy.zero_grad()
    for _ in range(num_iterations):
        current = reinforce_pp_log_probs(policy, ids, attn, width, temperature)
        loss = openrlhf_policy_loss(current, old, advantages, action_mask)
        loss.backward()
        # OpenRLHF's step: grad clipping at max_norm 1.0, then Adam without weight decay (its default
        # l2 = 0), as the GRPO μ = 2 cases.
        iterations.append({"loss": loss.item(), "grad_norm": optimizer_step(policy, lr)})
    expected = {"loss": sum(it["loss"] for it in iterations) / len(iterations), "grad_norm": iterations[-1]["grad_norm"]}
    return {"name": name, "reference": "OpenRLHF@3c3be62 compute_approx_kl, compute_reward, compute_advantages_and_returns, PolicyLoss",
            "estimator": estimator, "beta": beta, "gamma": gamma, "temperature": temperature, "clamped_k1_tokens": clamped,
            "num_generations": G, "num_iterations": num_iterations,
            "learning_rate": lr, "max_grad_norm": 1.0, "max_completion_length": MAX_COMPLETION_LENGTH, "prompts": PROMPTS,
            "completions": COMPLETIONS, "rewards": rewards,
            "token_advantages": [fl(advantages[r, :len(c)]) for r, c in enumerate(COMPLETIONS)],
            "iterations": iterations, "expected": expected}


def reinforce_pp_cases():
    return [
        reinforce_pp_case("reinforce_pp"),
        reinforce_pp_case("reinforce_pp_gamma", beta=0.3, gamma=0.9),
        reinforce_pp_case("reinforce_pp_beta0", beta=0.0),
        # γ is forced to 1 for the baseline variant (OpenRLHF logs a warning and overrides it).
        reinforce_pp_case("reinforce_baseline", estimator="reinforce_baseline", beta=0.1, gamma=0.9),
        reinforce_pp_case("reinforce_pp_mu2", beta=0.1, gamma=0.95, num_iterations=2, lr=3e-3),
        # At temperature 0.2 two tokens' k1 exceed 10 and are clamped (compute_approx_kl's ±10).
        reinforce_pp_case("reinforce_pp_k1_clamped", beta=0.05, temperature=0.2),
    ]


def write(name, payload):
    os.makedirs(OUT, exist_ok=True)
    payload = {"generated_by": f"scripts/make_trl_parity_fixtures.py, trl {trl.__version__}, torch {torch.__version__}",
               **payload}
    with open(os.path.join(OUT, name), "w") as f:
        json.dump(payload, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    import sys
    torch.set_default_dtype(torch.float32)
    fixtures = {"preference.json": preference_cases, "grpo.json": grpo_cases, "rloo.json": rloo_cases,
                "kto.json": kto_cases, "dpo_trainer.json": dpo_trainer_cases, "ppo_rlhf.json": ppo_rlhf_cases,
                "reinforce_pp.json": reinforce_pp_cases}
    # Optional arguments name the fixtures to (re)write; none: all of them.
    for name in sys.argv[1:] or fixtures:
        write(name, {"cases": fixtures[name]()})
