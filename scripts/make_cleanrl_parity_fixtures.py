"""Parity fixtures for Nudge's PPO against CleanRL's own update (issue 23).

CleanRL is a set of single-file scripts, not a library, so this script mirrors the parts of
cleanrl/ppo.py and cleanrl/ppo_continuous_action.py (vwxyzjn/cleanrl@fe8d8a0, 2026-04-20) that act on a
collected rollout, statement for statement: the Agent (layer_init's orthogonal weights, Tanh MLPs;
the hidden width reduced from 64 to 8 to keep the fixture a few KB), GAE with its dones[t + 1]
bookkeeping (ppo.py 218-231), the flattening (234-240) and one update (241-297: shuffled mini-batches,
per-mini-batch advantage normalization with the unbiased std + 1e-8, the clipped surrogate, the
clipped value loss, the entropy bonus, clip_grad_norm_ and Adam with eps 1e-5, approx_kl (k3) and
old_approx_kl (k1), clip fractions and explained variance). The rollout (observations, rewards,
dones) is fixed and its actions, log-probs and values come from the initial agent, as CleanRL's
collection loop computes them. The Swift test Tests/NudgeRLTests/CleanRLPPOParityTests.swift loads
the same weights into Nudge's ActorCriticAgent, feeds the same rollout and mini-batch order through
PPO.rolloutAdvantages and PPO.update, and compares the advantages, returns, every logged statistic
and every parameter after the update to 1e-5 relative.

The reference runs in float64 (the float32 weights cast up), the exact value Nudge's float32 is
measured against.

Usage: /work/venv-gguf/bin/python scripts/make_cleanrl_parity_fixtures.py
Writes Tests/NudgeRLTests/Fixtures/parity/cleanrl_ppo.json.
"""

import json
import os

import numpy as np
import torch
import torch.nn as nn
from torch.distributions.categorical import Categorical
from torch.distributions.normal import Normal

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(os.path.dirname(HERE), "Tests", "NudgeRLTests", "Fixtures", "parity")
HIDDEN = 8


def layer_init(layer, std=np.sqrt(2), bias_const=0.0):  # ppo.py 94-97
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


class DiscreteAgent(nn.Module):  # ppo.py 100-125, width 8
    def __init__(self, obs_dim, n_actions):
        super().__init__()
        self.critic = nn.Sequential(layer_init(nn.Linear(obs_dim, HIDDEN)), nn.Tanh(), layer_init(nn.Linear(HIDDEN, HIDDEN)), nn.Tanh(),
                                    layer_init(nn.Linear(HIDDEN, 1), std=1.0))
        self.actor = nn.Sequential(layer_init(nn.Linear(obs_dim, HIDDEN)), nn.Tanh(), layer_init(nn.Linear(HIDDEN, HIDDEN)), nn.Tanh(),
                                   layer_init(nn.Linear(HIDDEN, n_actions), std=0.01))

    def get_value(self, x):
        return self.critic(x)

    def get_action_and_value(self, x, action=None):
        logits = self.actor(x)
        probs = Categorical(logits=logits)
        if action is None:
            action = probs.sample()
        return action, probs.log_prob(action), probs.entropy(), self.critic(x)

    def layers(self):
        return {"actor": [self.actor[i] for i in (0, 2, 4)], "critic": [self.critic[i] for i in (0, 2, 4)]}


class ContinuousAgent(nn.Module):  # ppo_continuous_action.py's Agent, width 8
    def __init__(self, obs_dim, action_dim):
        super().__init__()
        self.critic = nn.Sequential(layer_init(nn.Linear(obs_dim, HIDDEN)), nn.Tanh(), layer_init(nn.Linear(HIDDEN, HIDDEN)), nn.Tanh(),
                                    layer_init(nn.Linear(HIDDEN, 1), std=1.0))
        self.actor_mean = nn.Sequential(layer_init(nn.Linear(obs_dim, HIDDEN)), nn.Tanh(), layer_init(nn.Linear(HIDDEN, HIDDEN)), nn.Tanh(),
                                        layer_init(nn.Linear(HIDDEN, action_dim), std=0.01))
        self.actor_logstd = nn.Parameter(torch.zeros(1, action_dim))

    def get_value(self, x):
        return self.critic(x)

    def get_action_and_value(self, x, action=None):
        action_mean = self.actor_mean(x)
        action_logstd = self.actor_logstd.expand_as(action_mean)
        action_std = torch.exp(action_logstd)
        probs = Normal(action_mean, action_std)
        if action is None:
            action = probs.sample()
        return action, probs.log_prob(action).sum(1), probs.entropy().sum(1), self.critic(x)

    def layers(self):
        return {"actor": [self.actor_mean[i] for i in (0, 2, 4)], "critic": [self.critic[i] for i in (0, 2, 4)]}


def weights(agent):
    out = {k: [{"weight": l.weight.detach().reshape(-1).tolist(), "bias": l.bias.detach().tolist(), "shape": list(l.weight.shape)} for l in ls]
           for k, ls in agent.layers().items()}
    if isinstance(agent, ContinuousAgent):
        out["actor_logstd"] = agent.actor_logstd.detach().reshape(-1).tolist()
    return out


def case(name, continuous, seed, num_envs=2, num_steps=6, num_minibatches=2, update_epochs=2, learning_rate=2.5e-2,
         gamma=0.99, gae_lambda=0.95, clip_coef=0.2, ent_coef=0.01, vf_coef=0.5, max_grad_norm=0.5, norm_adv=True,
         clip_vloss=True, obs_dim=4, action_dim=3, done_steps=((2, 0),), final_done=(0, 1)):
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.set_default_dtype(torch.float32)
    agent = (ContinuousAgent if continuous else DiscreteAgent)(obs_dim, action_dim)
    initial = weights(agent)  # the float32 weights Nudge loads
    agent = agent.double()
    torch.set_default_dtype(torch.float64)
    g = torch.Generator().manual_seed(seed + 1)
    # The rollout: observations as the policy saw them, rewards, and the done flags of each step
    # (done_steps: (t, env) whose step t ended the episode), then CleanRL's collection bookkeeping.
    obs = torch.randn(num_steps, num_envs, obs_dim, generator=g, dtype=torch.float32).double()
    rewards = torch.randn(num_steps, num_envs, generator=g, dtype=torch.float32).double()
    next_obs = torch.randn(num_envs, obs_dim, generator=g, dtype=torch.float32).double()
    step_done = torch.zeros(num_steps, num_envs)
    for t, e in done_steps:
        step_done[t, e] = 1
    for e in final_done:
        step_done[num_steps - 1, e] = 1
    dones = torch.zeros(num_steps, num_envs)
    dones[1:] = step_done[:-1]  # dones[step] = next_done before the step (ppo.py 194)
    next_done = step_done[-1]
    actions = torch.zeros((num_steps, num_envs) + ((action_dim,) if continuous else ()))
    logprobs = torch.zeros(num_steps, num_envs)
    values = torch.zeros(num_steps, num_envs)
    with torch.no_grad():
        for step in range(num_steps):
            action, logprob, _, value = agent.get_action_and_value(obs[step])
            if continuous:
                action = action.float().double()  # a float32 action, as stored
            values[step] = value.flatten()
            actions[step] = action
            logprobs[step] = agent.get_action_and_value(obs[step], action)[1]
    # GAE, ppo.py 217-231.
    with torch.no_grad():
        next_value = agent.get_value(next_obs).reshape(1, -1)
        advantages = torch.zeros_like(rewards)
        lastgaelam = 0
        for t in reversed(range(num_steps)):
            if t == num_steps - 1:
                nextnonterminal = 1.0 - next_done
                nextvalues = next_value
            else:
                nextnonterminal = 1.0 - dones[t + 1]
                nextvalues = values[t + 1]
            delta = rewards[t] + gamma * nextvalues * nextnonterminal - values[t]
            advantages[t] = lastgaelam = delta + gamma * gae_lambda * nextnonterminal * lastgaelam
        returns = advantages + values
    # Flatten, 234-240 (row t·n + e).
    b_obs = obs.reshape((-1, obs_dim))
    b_logprobs = logprobs.reshape(-1)
    b_actions = actions.reshape((-1, action_dim) if continuous else (-1,))
    b_advantages = advantages.reshape(-1)
    b_returns = returns.reshape(-1)
    b_values = values.reshape(-1)
    batch_size = num_envs * num_steps
    minibatch_size = batch_size // num_minibatches
    optimizer = torch.optim.Adam(agent.parameters(), lr=learning_rate, eps=1e-5)  # 168
    # The update, 241-297.
    b_inds = np.arange(batch_size)
    clipfracs = []
    orders = []
    for epoch in range(update_epochs):
        np.random.shuffle(b_inds)
        orders.append(b_inds.tolist())
        for start in range(0, batch_size, minibatch_size):
            end = start + minibatch_size
            mb_inds = b_inds[start:end]
            _, newlogprob, entropy, newvalue = agent.get_action_and_value(
                b_obs[mb_inds], b_actions[mb_inds] if continuous else b_actions.long()[mb_inds])
            logratio = newlogprob - b_logprobs[mb_inds]
            ratio = logratio.exp()
            with torch.no_grad():
                old_approx_kl = (-logratio).mean()
                approx_kl = ((ratio - 1) - logratio).mean()
                clipfracs += [((ratio - 1.0).abs() > clip_coef).float().mean().item()]
            mb_advantages = b_advantages[mb_inds]
            if norm_adv:
                mb_advantages = (mb_advantages - mb_advantages.mean()) / (mb_advantages.std() + 1e-8)
            pg_loss1 = -mb_advantages * ratio
            pg_loss2 = -mb_advantages * torch.clamp(ratio, 1 - clip_coef, 1 + clip_coef)
            pg_loss = torch.max(pg_loss1, pg_loss2).mean()
            newvalue = newvalue.view(-1)
            if clip_vloss:
                v_loss_unclipped = (newvalue - b_returns[mb_inds]) ** 2
                v_clipped = b_values[mb_inds] + torch.clamp(newvalue - b_values[mb_inds], -clip_coef, clip_coef)
                v_loss_clipped = (v_clipped - b_returns[mb_inds]) ** 2
                v_loss_max = torch.max(v_loss_unclipped, v_loss_clipped)
                v_loss = 0.5 * v_loss_max.mean()
            else:
                v_loss = 0.5 * ((newvalue - b_returns[mb_inds]) ** 2).mean()
            entropy_loss = entropy.mean()
            loss = pg_loss - ent_coef * entropy_loss + v_loss * vf_coef
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(agent.parameters(), max_grad_norm)
            optimizer.step()
    y_pred, y_true = b_values.cpu().numpy(), b_returns.cpu().numpy()
    var_y = np.var(y_true)
    explained_var = np.nan if var_y == 0 else 1 - np.var(y_true - y_pred) / var_y
    return {
        "name": name, "reference": f"vwxyzjn/cleanrl@fe8d8a0 cleanrl/{'ppo_continuous_action' if continuous else 'ppo'}.py",
        "continuous": continuous, "obs_dim": obs_dim, "action_dim": action_dim, "hidden": HIDDEN, "num_envs": num_envs,
        "num_steps": num_steps, "num_minibatches": num_minibatches, "update_epochs": update_epochs,
        "learning_rate": learning_rate, "gamma": gamma, "gae_lambda": gae_lambda, "clip_coef": clip_coef, "ent_coef": ent_coef,
        "vf_coef": vf_coef, "max_grad_norm": max_grad_norm, "norm_adv": norm_adv, "clip_vloss": clip_vloss,
        "initial": initial, "observations": b_obs.tolist(), "rewards": rewards.reshape(-1).tolist(),
        "step_done": step_done.reshape(-1).tolist(), "next_obs": next_obs.tolist(),
        "actions": b_actions.reshape(-1).tolist() if continuous else b_actions.long().tolist(),
        "logprobs": b_logprobs.tolist(), "values": b_values.tolist(), "orders": orders,
        "expected": {
            "advantages": b_advantages.tolist(), "returns": b_returns.tolist(),
            "losses/value_loss": v_loss.item(), "losses/policy_loss": pg_loss.item(), "losses/entropy": entropy_loss.item(),
            "losses/old_approx_kl": old_approx_kl.item(), "losses/approx_kl": approx_kl.item(),
            "losses/clipfrac": float(np.mean(clipfracs)), "losses/explained_variance": float(explained_var),
            "updated": weights(agent),
        },
    }


def cases():
    return [
        case("discrete", continuous=False, seed=1, learning_rate=0.1),
        case("discrete_no_norm_adv_no_clip_vloss", continuous=False, seed=2, norm_adv=False, clip_vloss=False, num_minibatches=3,
             update_epochs=1, done_steps=((1, 1), (3, 0)), final_done=()),
        case("continuous", continuous=True, seed=3, obs_dim=3, action_dim=2, learning_rate=3e-2, ent_coef=0.005),
    ]


def rounded(x):
    """Nine significant digits (float32's round trip; the test's tolerance is 1e-5) keep the fixture small."""
    if isinstance(x, float):
        return x if x != x else float(f"{x:.9g}")
    if isinstance(x, list):
        return [rounded(v) for v in x]
    if isinstance(x, dict):
        return {k: rounded(v) for k, v in x.items()}
    return x


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    payload = {"generated_by": f"scripts/make_cleanrl_parity_fixtures.py, torch {torch.__version__}", "cases": rounded(cases())}
    with open(os.path.join(OUT, "cleanrl_ppo.json"), "w") as f:
        json.dump(payload, f, indent=None, separators=(",", ":"))
        f.write("\n")
