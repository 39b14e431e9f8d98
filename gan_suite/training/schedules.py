"""Learning-rate schedules not offered by torch.optim."""

from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler


class GoodfellowSchedule(LRScheduler):
    """Goodfellow et al. 2014's MNIST schedule for SGD with momentum, stepped once per update.

    lr_t = max(lr_0 / decay^t, min_lr); momentum rises linearly from ``momentum_start`` to
    ``momentum_end`` over ``momentum_steps`` steps (250 epochs of 500 updates in the paper) and
    stays there. torch.optim has exponential lr decay but nothing that also ramps momentum.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        decay: float = 1.000004,
        min_lr: float = 1e-6,
        momentum_start: float = 0.5,
        momentum_end: float = 0.7,
        momentum_steps: int = 125_000,
        last_epoch: int = -1,
    ) -> None:
        self.decay, self.min_lr = decay, min_lr
        self.momentum_start, self.momentum_end, self.momentum_steps = momentum_start, momentum_end, momentum_steps
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        t = self.last_epoch
        frac = min(t / self.momentum_steps, 1.0) if self.momentum_steps > 0 else 1.0
        momentum = self.momentum_start + frac * (self.momentum_end - self.momentum_start)
        for group in self.optimizer.param_groups:
            if "momentum" in group:
                group["momentum"] = momentum
        return [max(base / self.decay**t, self.min_lr) for base in self.base_lrs]
