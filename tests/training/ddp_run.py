"""Trains a small GAN with the gan_ddp strategy (or one process) and saves each rank's state.

Run as a script (Lightning's popen launcher re-executes it for rank 1):
    python tests/training/ddp_run.py OUT_DIR DEVICES BATCH STEPS RANK_INVARIANT(0/1) [LOSS] [mlp|dcgan[+reuse_fakes]] [eval|no] [NUM_NODES]
Each rank writes OUT_DIR/rank<r>.pt with the G and D parameters and its first noise batch.
With NUM_NODES > 1 the script is one node's process of a multi-node run, started by torchrun or
srun (DEVICES processes per node; Lightning reads the launcher's environment).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402

from gan_suite.data import MNISTBundled, Toy2D  # noqa: E402
from gan_suite.evaluation.callback import EvaluationCallback  # noqa: E402
from gan_suite.evaluation.protocol import compute_metrics  # noqa: E402
from gan_suite.evaluation.streaming import generated_features  # noqa: E402
from gan_suite.models import DCGAN, VanillaGAN  # noqa: E402
from tests.training.helpers import adam  # noqa: E402


class FirstNoise:
    def sample_noise(self, n):
        z = super().sample_noise(n)
        if not hasattr(self, "first_noise"):
            self.first_noise = z.detach().clone()
        return z


class RecordingGAN(FirstNoise, VanillaGAN):
    pass


class RecordingDCGAN(FirstNoise, DCGAN):
    pass


class SaveState(pl.Callback):
    def __init__(self, out, evaluation=None):
        self.out = out
        self.evaluation = evaluation

    def on_train_end(self, trainer, module):
        evaluated = reference = None
        if self.evaluation is not None:
            # every rank generates its share; the gathered result must equal one process's
            evaluated = self.evaluation.evaluate(trainer, module)
            fake = generated_features(
                module.sampling_generator, module.latent_dim, self.evaluation._extractor, self.evaluation.num_samples,
                self.evaluation.batch_size, module.device, self.evaluation.seed, progress=False,
            )
            reference = compute_metrics(
                self.evaluation.metrics, fake, self.evaluation._references[0][1], context=self.evaluation._context, log=lambda m: None,
            )
        torch.save(
            {
                "evaluated": evaluated,
                "reference": reference,
                # parameters only: BatchNorm running statistics are rank-local between DDP forwards
                # (DDP broadcasts rank 0's buffers at each wrapped forward), as in plain DDP
                "generator": {k: v.detach().clone() for k, v in module.generator.named_parameters()},
                "discriminator": {k: v.detach().clone() for k, v in module.discriminator.named_parameters()},
                "noise": module.first_noise,
                "iteration": module.iteration,
                "world_size": trainer.world_size,
                "node_rank": trainer.node_rank,
                "num_nodes": trainer.num_nodes,
            },
            os.path.join(self.out, f"rank{trainer.global_rank}.pt"),
        )


def main():
    out, devices, batch, steps, invariant = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
    loss = sys.argv[6] if len(sys.argv) > 6 else "non_saturating"
    model, *model_options = (sys.argv[7] if len(sys.argv) > 7 else "mlp").split("+")
    reuse_fakes = "reuse_fakes" in model_options
    evaluate = len(sys.argv) > 8 and sys.argv[8] == "eval"
    num_nodes = int(sys.argv[9]) if len(sys.argv) > 9 else 1
    torch.set_num_threads(1)
    pl.seed_everything(0, verbose=False)
    module = RecordingGAN(
        sample_shape=[2], latent_dim=2, g_hidden=[32, 32], g_output="linear", d_hidden=[32, 32], d_pieces=3,
        d_input_dropout=0.0, d_hidden_dropout=0.0, goodfellow_schedule=False, g_optimizer=adam(1e-3), d_optimizer=adam(1e-3),
        rank_invariant_noise=invariant, loss=loss, reuse_fakes=reuse_fakes,
    )
    data = Toy2D("ring8", num_samples=4000, batch_size=batch)
    if model == "dcgan":  # BatchNorm in G and D
        module = RecordingDCGAN(image_size=28, channels=1, g_width=8, d_width=8, loss=loss, rank_invariant_noise=invariant, reuse_fakes=reuse_fakes)
        data = MNISTBundled(batch_size=batch)
    evaluation = None
    if evaluate:  # an odd sample count: the two ranks' shares differ in size
        evaluation = EvaluationCallback(
            every_n_steps=0, num_samples=1001, features="raw2d", metrics=["fid", "pr", "modes"], best_metric=None, batch_size=128,
        )
    trainer = pl.Trainer(
        accelerator="cpu", devices=devices, num_nodes=num_nodes, strategy="gan_ddp" if devices * num_nodes > 1 else "auto",
        max_steps=2 * steps,
        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, default_root_dir=out,
        callbacks=[SaveState(out, evaluation), *([evaluation] if evaluation else [])],
    )
    trainer.fit(module, data)


if __name__ == "__main__":
    import gan_suite.training  # noqa: F401  (registers gan_ddp)

    main()
