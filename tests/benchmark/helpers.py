"""Fakes and definitions shared by the benchmark tests."""

import json
import os
import sys

import yaml

# not from tests.conftest: that imports torch, and run_fake_benchmark.py must start fast
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FAKE_FIT = [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_fit.py")]
RING8 = os.path.join(REPO_ROOT, "configs", "gan_ring8.yaml")


def fake_evaluate(ckpt_path, *, features="auto", metrics=None, num_samples=None, real_split="heldout",
                  batch_size=256, device="cpu", out_dir=None, seed=0, **extra):
    """Deterministic metrics from a fake checkpoint: depend on seed, packing and training step."""
    with open(ckpt_path) as f:
        state = json.load(f)
    it, s, pack = state["iteration"], state["seed"], state["pack"]
    result = {
        "metrics": {
            "modes_covered": min(8, pack * 2 + s % 3 + it // 10),
            "high_quality": round(0.5 + 0.05 * s + 0.01 * pack, 4),
            "mode_kl": round(1.0 / (pack + s + 1), 6),
            "fid": 10.0 + s - pack + 100.0 / (it + 1),
        },
        "protocol": {"iteration": it, "features": features, "num_samples": num_samples, "seed": seed},
        "files": {},
    }
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "metrics.json"), "w") as f:
            json.dump(result, f)
    return result


def definition_dict(name="fake", variants=None, seeds=(0, 1), steps=20, every=5, **extra):
    raw = {
        "name": name,
        "base_config": RING8,
        "variants": variants if variants is not None else {"gan": {}, "pacgan2": {"model.init_args.pack": 2}},
        "seeds": list(seeds),
        "train": {"steps": steps},
        "evaluation": {"features": "raw2d", "metrics": ["modes"], "num_samples": 100, "every_n_steps": every},
        "main_metric": {"name": "modes_covered", "higher_is_better": True},
        "columns": [
            {"key": "modes_covered", "label": "modes /8"},
            {"key": "high_quality", "label": "high-quality %", "scale": 100, "higher_is_better": True},
            {"key": "mode_kl", "label": "reverse KL"},
        ],
        "published": {"PacGAN2": {"modes_covered": "7.9 +- 0.1", "high_quality": "95.6 +- 2.0", "mode_kl": "0.07 +- 0.03"}},
        "logger": "none",
    }
    raw.update(extra)
    return raw


def write_definition(path, raw):
    with open(path, "w") as f:
        yaml.safe_dump(raw, f, sort_keys=False)
    return str(path)
