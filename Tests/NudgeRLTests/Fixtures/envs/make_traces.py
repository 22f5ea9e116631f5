"""Compact Gymnasium traces for the Swift environments beyond CartPole and FrozenLake 4x4.

Run with gymnasium 1.4 / numpy 2 in a venv:  python make_traces.py   (TRACES_OUT=dir to write elsewhere)

Writes MountainCar-v0.json, MountainCarContinuous-v0.json, Acrobot-v1.json, Pendulum-v1.json,
CliffWalking-v1.json, Taxi-v3.json and FrozenLake8x8-v1.json.

The classic-control policies and seeds of MountainCar, Acrobot and Pendulum's first trace are those of
gym_traces.py beside this script (a subset, to keep the files small). A trace is stored column-wise:
  env_id, make_kwargs, gymnasium_version, max_episode_steps, reset_seed, initial_obs, initial_state, policy,
  actions, obs[t], rewards[t], terminated[t], truncated[t], states[t]
one entry per action, up to the first termination or truncation (or `max_steps` when the policy is cut short).
obs are float32 written as shortest round-trip decimals; states are the env's internal state as float64 (or the
int `s` of the toy-text environments). Tabular files also carry Gymnasium's transition table P[s][a].
"""
import json
import os
from collections import deque
from pathlib import Path

import gymnasium as gym
import numpy as np

OUT = Path(os.environ.get("TRACES_OUT", Path(__file__).resolve().parent))


def f32(x):
    return float(np.format_float_positional(np.float32(x), unique=True, trim="-"))


def obs_json(obs):
    if isinstance(obs, (int, np.integer)):
        return int(obs)
    return [f32(v) for v in np.asarray(obs).reshape(-1)]


def state_of(env):
    u = env.unwrapped
    if hasattr(u, "s") and not hasattr(u, "state"):
        return int(u.s)
    return [float(v) for v in np.asarray(u.state, dtype=np.float64).reshape(-1)]


def action_json(a):
    return int(a) if isinstance(a, (int, np.integer)) else [float(v) for v in np.asarray(a).reshape(-1)]


def run_trace(env_id, make_kwargs, seed, policy_name, policy, max_steps=None, masks=False):
    env = gym.make(env_id, **make_kwargs)
    obs, info = env.reset(seed=seed)
    tr = {"env_id": env_id, "make_kwargs": make_kwargs, "gymnasium_version": gym.__version__,
          "max_episode_steps": env.spec.max_episode_steps, "reset_seed": seed,
          "initial_obs": obs_json(obs), "initial_state": state_of(env), "policy": policy_name,
          "actions": [], "obs": [], "rewards": [], "terminated": [], "truncated": [], "states": []}
    if masks:
        tr["initial_action_mask"] = [int(v) for v in info["action_mask"]]
        tr["action_masks"] = []
    t = 0
    while True:
        a = policy(t, obs)
        obs, r, term, trunc, info = env.step(a)
        tr["actions"].append(action_json(a))
        tr["obs"].append(obs_json(obs))
        tr["rewards"].append(float(r))
        tr["terminated"].append(bool(term))
        tr["truncated"].append(bool(trunc))
        tr["states"].append(state_of(env))
        if masks:
            tr["action_masks"].append([int(v) for v in info["action_mask"]])
        t += 1
        if term or trunc or (max_steps is not None and t >= max_steps):
            break
    env.close()
    return tr


def random_discrete(n, seed):
    rng = np.random.default_rng(seed)
    seq = [int(x) for x in rng.integers(0, n, size=1000)]
    return f"uniform random discrete actions, numpy default_rng({seed})", (lambda t, obs: seq[t])


def table_of(env, compact_probability_one=False):
    P = env.unwrapped.P
    if compact_probability_one:  # every entry is a single outcome with probability 1: [next_s, reward, terminated]
        assert all(len(P[s][a]) == 1 and P[s][a][0][0] == 1.0 for s in P for a in P[s])
        return [[[int(P[s][a][0][1]), float(P[s][a][0][2]), bool(P[s][a][0][3])] for a in sorted(P[s])]
                for s in sorted(P)]
    return [[[[float(p), int(ns), float(r), bool(d)] for (p, ns, r, d) in P[s][a]] for a in sorted(P[s])]
            for s in sorted(P)]


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    files = {}

    # MountainCar-v0 (gym_traces seeds 0 and 2): random, truncated at 200; energy pumping to the goal.
    name, pol = random_discrete(3, 200)
    files["MountainCar-v0"] = [
        run_trace("MountainCar-v0", {}, 0, name, pol),
        run_trace("MountainCar-v0", {}, 2, "a = 2 if velocity >= 0 else 0 (obs-based pumping)",
                  lambda t, o: 2 if o[1] >= 0 else 0),
    ]

    # MountainCarContinuous-v0: pumping with float32 forces in [0.5, 1.5] (|a| > 1 is clipped for the dynamics but
    # counts in the reward) until the goal; random forces in [-1.5, 1.5], cut at 150 steps.
    rng = np.random.default_rng(700)
    mags = rng.uniform(0.5, 1.5, size=1000).astype(np.float32)
    rnd = rng.uniform(-1.5, 1.5, size=1000).astype(np.float32)
    files["MountainCarContinuous-v0"] = [
        run_trace("MountainCarContinuous-v0", {}, 0,
                  "a = sign(velocity or +) * U(0.5, 1.5) float32, numpy default_rng(700) (pumping to the goal)",
                  lambda t, o: np.array([mags[t] if o[1] >= 0 else -mags[t]], dtype=np.float32)),
        run_trace("MountainCarContinuous-v0", {}, 1, "a = U(-1.5, 1.5) float32, numpy default_rng(700) after 1000 draws",
                  lambda t, o: np.array([rnd[t]], dtype=np.float32), max_steps=150),
    ]

    # Acrobot-v1 (gym_traces seeds 0 and 2): random, truncated at 500; pumping along theta2_dot, terminates.
    name, pol = random_discrete(3, 300)
    files["Acrobot-v1"] = [
        run_trace("Acrobot-v1", {}, 0, name, pol),
        run_trace("Acrobot-v1", {}, 2, "a = 2 if theta2_dot > 0 else 0 (obs[5]) (pumping, terminates)",
                  lambda t, o: 2 if o[5] > 0 else 0),
    ]

    # Pendulum-v1: gym_traces seed 0 (multiples of 0.25 in [-3, 3], truncated at 200), and g = 9.81 with arbitrary
    # float32 torques in [-3, 3] (exercises the float32 rounding of 3.0*u and 0.001*u**2), cut at 60 steps.
    rng = np.random.default_rng(400)
    seq = [np.array([0.25 * int(x)], dtype=np.float32) for x in rng.integers(-12, 13, size=200)]
    rng = np.random.default_rng(410)
    seq2 = [np.array([x], dtype=np.float32) for x in rng.uniform(-3, 3, size=200)]
    files["Pendulum-v1"] = [
        run_trace("Pendulum-v1", {}, 0, "u = 0.25*randint(-12,12) (float32), numpy default_rng(400); |u|>2 is clipped",
                  lambda t, o: seq[t]),
        run_trace("Pendulum-v1", {"g": 9.81}, 5, "u = U(-3, 3) float32, numpy default_rng(410)",
                  lambda t, o: seq2[t], max_steps=60),
    ]

    # CliffWalking-v1: the safe path along the cliff, a fall and recovery, random cut at 60. Plus both P tables.
    safe = [0] + [1] * 11 + [2]  # UP, RIGHT x 11, DOWN
    fall = [1, 0, 1, 2] + [1] * 10 + [2]  # RIGHT into the cliff (back to start), then up, right, down: cliff again...
    name, pol = random_discrete(4, 800)
    env = gym.make("CliffWalking-v1")
    slippery = gym.make("CliffWalking-v1", is_slippery=True)
    files["CliffWalking-v1"] = {
        "transition_table": table_of(env),
        "transition_table_slippery": table_of(slippery),
        "traces": [
            run_trace("CliffWalking-v1", {}, 0, "safe path [UP, RIGHT x11, DOWN]", lambda t, o: safe[t]),
            run_trace("CliffWalking-v1", {}, 0, "cliff falls " + str(fall), lambda t, o: fall[t], max_steps=len(fall)),
            run_trace("CliffWalking-v1", {}, 0, name, pol, max_steps=60),
        ],
    }

    # Taxi (Gymnasium 1.4 registers the default Taxi as Taxi-v4; Taxi-v3 had the same default dynamics).
    env = gym.make("Taxi-v4")
    P = env.unwrapped.P

    def shortest_delivery(s0):
        prev, queue = {s0: None}, deque([s0])
        while queue:
            s = queue.popleft()
            for a in range(6):
                _, ns, _, done = P[s][a][0]
                if done:
                    path = [a]
                    while prev[s] is not None:
                        s, pa = prev[s]
                        path.append(pa)
                    return path[::-1]
                if ns not in prev:
                    prev[ns] = (s, a)
                    queue.append(ns)
        raise RuntimeError("no delivery path")

    probe = gym.make("Taxi-v4")
    s0, _ = probe.reset(seed=3)
    plan = shortest_delivery(int(s0))
    name, pol = random_discrete(6, 900)
    dist = env.unwrapped.initial_state_distrib
    files["Taxi-v3"] = {
        "gymnasium_id": "Taxi-v4",
        "transition_table": table_of(env, compact_probability_one=True),
        "initial_states": [int(s) for s in np.nonzero(dist)[0]],
        "initial_probability": float(dist[np.nonzero(dist)[0][0]]),
        "traces": [
            run_trace("Taxi-v4", {}, 3, f"shortest delivery from the reset state {plan}", lambda t, o: plan[t], masks=True),
            run_trace("Taxi-v4", {}, 4, name, pol, masks=True),
        ],
    }

    # FrozenLake8x8-v1: slippery P table, and non-slippery scripted runs to the goal and into a hole.
    env = gym.make("FrozenLake8x8-v1", is_slippery=True)
    desc = ["".join(c.decode() for c in row) for row in env.unwrapped.desc]
    to_goal = [2] * 7 + [1] * 7  # RIGHT x7, DOWN x7 along the right edge
    to_hole = [1, 1, 2, 2, 2, 1]  # 0 -> 8 -> 16 -> 17 -> 18 -> 19 (H)
    files["FrozenLake8x8-v1"] = {
        "map": desc,
        "transition_table": table_of(env),
        "traces": [
            run_trace("FrozenLake8x8-v1", {"is_slippery": False}, 0, f"scripted path {to_goal}", lambda t, o: to_goal[t]),
            run_trace("FrozenLake8x8-v1", {"is_slippery": False}, 0, f"scripted into a hole {to_hole}",
                      lambda t, o: to_hole[t]),
        ],
    }

    total = 0
    for name, obj in files.items():
        p = OUT / f"{name}.json"
        p.write_text(json.dumps(obj, separators=(",", ":")))
        total += p.stat().st_size
        trs = obj["traces"] if isinstance(obj, dict) else obj
        print(f"{name:26s} {p.stat().st_size / 1e3:6.1f} kB lengths={[len(t['actions']) for t in trs]} "
              f"returns={[round(sum(t['rewards']), 2) for t in trs]} "
              f"ends={['T' if t['terminated'][-1] else ('t' if t['truncated'][-1] else '-') for t in trs]}")
    print(f"total {total / 1e3:.1f} kB")


if __name__ == "__main__":
    main()
