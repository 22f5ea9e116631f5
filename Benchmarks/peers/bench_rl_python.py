"""Python peer for Nudge's RL speed benchmarks (NudgeBench --only rl).

Measures, on this machine:
  * CartPole-v1 env steps/s: one env with random actions (resets included), and an 8-env
    gymnasium.vector.SyncVectorEnv (steps counted per sub-env).
  * Sutton & Barto's 10-armed testbed, 2000 runs x 1000 steps, epsilon-greedy (eps 0.1, sample
    averages): vectorized over runs with NumPy (the idiomatic fast form) -> pulls/s.
Prints JSON and writes Benchmarks/peers/results/rl_python.json.
Run: .venv-peers/bin/python Benchmarks/peers/bench_rl_python.py
"""
import json
import os
import time

import gymnasium as gym
import numpy as np


def best_of(fn, repeats=5):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        work = fn()
        times.append((time.perf_counter() - t0) / work)
    times.sort()
    return times[len(times) // 2], times[0]


def cartpole_single(steps=100_000):
    env = gym.make("CartPole-v1")
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 2, size=steps)

    def run():
        for a in actions:
            _, _, term, trunc, _ = env.step(int(a))
            if term or trunc:
                env.reset()
        return steps

    return best_of(run)


def cartpole_vector(n=8, steps=20_000):
    envs = gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1") for _ in range(n)])
    envs.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 2, size=(steps, n))

    def run():
        for a in actions:
            envs.step(a)
        return steps * n

    return best_of(run)


def testbed(runs=2000, steps=1000, k=10, eps=0.1):
    def run():
        rng = np.random.default_rng(0)
        q_star = rng.normal(size=(runs, k))
        q = np.zeros((runs, k))
        n = np.zeros((runs, k))
        idx = np.arange(runs)
        for _ in range(steps):
            explore = rng.random(runs) < eps
            greedy = np.argmax(q + 1e-9 * rng.random((runs, k)), axis=1)  # random tie-breaking
            a = np.where(explore, rng.integers(0, k, size=runs), greedy)
            r = rng.normal(q_star[idx, a], 1.0)
            n[idx, a] += 1
            q[idx, a] += (r - q[idx, a]) / n[idx, a]
        return runs * steps

    return best_of(run, repeats=3)


if __name__ == "__main__":
    out = {"gymnasium": gym.__version__, "numpy": np.__version__}
    m, b = cartpole_single()
    out["cartpole_single_steps_per_s"] = {"median": 1 / m, "best": 1 / b}
    m, b = cartpole_vector()
    out["cartpole_vector8_steps_per_s"] = {"median": 1 / m, "best": 1 / b}
    m, b = testbed()
    out["testbed_epsilon_greedy_pulls_per_s"] = {"median": 1 / m, "best": 1 / b,
                                                 "seconds_2000x1000": {"median": m * 2e6, "best": b * 2e6}}
    here = os.path.dirname(os.path.abspath(__file__))
    os.makedirs(os.path.join(here, "results"), exist_ok=True)
    with open(os.path.join(here, "results", "rl_python.json"), "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps(out, indent=1))
