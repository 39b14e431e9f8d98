"""A stand-in for ``python -m gan_suite fit`` in runner tests: same arguments, same files, no torch.

Writes the run directory the real CLI would (config.yaml, checkpoints/epoch=0-step=S.ckpt,
last.ckpt, samples/step_*.png) with JSON "checkpoints", prints progress lines, and
* exits 2 with the real NaN message when ``model.init_args.gp_weight`` is nan (diverged),
* raises when ``model.init_args.loss`` is 'crash' (failed),
* waits at the file gate of tests/benchmark/gate.py before training (for kill tests),
* with ``fake.stop`` = plateau / diverged, stops at step 4 and writes the status.json a stopping
  rule writes (best checkpoint at step 2); with ``fake.mode_history=true`` writes a mode history
  whose most frequent mode changes at every step.
"""

import json
import os
import sys
import zlib
import struct

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gate import pass_gate  # noqa: E402

PROGRESS_PREFIX = "@gan-suite-progress "


def _png(path, shade):
    width = height = 4
    raw = b"".join(b"\x00" + bytes([shade, 255 - shade, 128]) * width for _ in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    data += chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(data)


def main(argv):
    assert argv[0] == "fit" and argv[1] == "--config", argv
    options = {}
    for arg in argv[3:]:
        key, _, value = arg[2:].partition("=")
        options[key] = value
    seed = int(options["seed_everything"])
    max_steps = int(options.get("trainer.max_steps", "20"))
    d_steps = int(options.get("model.init_args.d_steps", "1"))
    every = int(options.get("checkpoint.every_n_train_steps", "0"))
    logger = options.get("trainer.logger")
    if logger == "false":
        run_dir = options["trainer.default_root_dir"]
    else:
        version = options.get("trainer.logger.init_args.version", "fakeid%d" % seed)
        run_dir = os.path.join(options["trainer.logger.init_args.save_dir"], options["trainer.logger.init_args.name"], version)
    os.makedirs(os.path.join(run_dir, "checkpoints"), exist_ok=True)
    os.makedirs(os.path.join(run_dir, "samples"), exist_ok=True)
    with open(os.path.join(run_dir, "config.yaml"), "w") as f:
        json.dump(options, f)  # JSON is YAML
    total = max_steps // (d_steps + 1)
    print(PROGRESS_PREFIX + json.dumps({"iteration": 0, "max_iterations": total}), flush=True)
    pass_gate()
    for iteration in range(1, total + 1):
        if options.get("model.init_args.gp_weight") in (".nan", "nan") and iteration == 3:
            print("Traceback ... (Lightning noise)", file=sys.stderr)
            print(f"gan-suite: error: discriminator loss is nan at training step {iteration} (optimizer step {iteration * 2}); "
                  "training stopped, the last saved checkpoint is untouched", file=sys.stderr)
            return 2
        if options.get("model.init_args.loss") == "crash" and iteration == 2:
            raise ValueError("boom: a crashing variant")
        step = iteration * (d_steps + 1)
        state = {"iteration": iteration, "seed": seed, "pack": int(options.get("model.init_args.pack", "1")), "options": options}
        if every and step % every == 0:
            with open(os.path.join(run_dir, "checkpoints", f"epoch=0-step={step}.ckpt"), "w") as f:
                json.dump(state, f)
        if iteration % 5 == 0 or iteration == total:
            _png(os.path.join(run_dir, "samples", f"step_{iteration:07d}.png"), (seed * 40 + iteration) % 256)
        print(PROGRESS_PREFIX + json.dumps({"iteration": iteration, "max_iterations": total}), flush=True)
        if options.get("fake.stop") and iteration == 4:
            status = {"status": options["fake.stop"], "reason": f"fake {options['fake.stop']}", "iteration": iteration,
                      "best": {"metric": "fid", "value": 1.0, "iteration": 2, "checkpoint": "checkpoints/best_fid.ckpt"}}
            with open(os.path.join(run_dir, "checkpoints", "best_fid.ckpt"), "w") as f:
                json.dump({**state, "iteration": 2}, f)
            with open(os.path.join(run_dir, "status.json"), "w") as f:
                json.dump(status, f)
            break
    if options.get("fake.mode_history") == "true":
        os.makedirs(os.path.join(run_dir, "evaluation"), exist_ok=True)
        steps = list(range(1, iteration + 1))
        shares = [[0.9 if (t % 2) == m else 0.1 for t in steps] for m in range(2)]
        history = {"steps": steps, "modes": ["0", "1"], "shares": shares, "dropped": [[False] * len(steps)] * 2,
                   "hops": len(steps) - 1, "mean_total_variation": 0.8}
        with open(os.path.join(run_dir, "evaluation", "mode_history.json"), "w") as f:
            json.dump(history, f)
    with open(os.path.join(run_dir, "checkpoints", "last.ckpt"), "w") as f:
        json.dump(state, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
