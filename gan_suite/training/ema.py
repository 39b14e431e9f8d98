"""Exponential moving average of the generator's weights (used for sampling when enabled)."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model for parameters; buffers are copied.

    ``decay = 0`` copies the model (used before the EMA start step): lerp with weight 1 returns
    its end point exactly.
    """
    ema_params = [p for p in ema.parameters()]
    model_params = [p.detach() for p in model.parameters()]
    torch._foreach_lerp_(ema_params, model_params, 1.0 - decay)
    for b_ema, b in zip(ema.buffers(), model.buffers()):
        b_ema.copy_(b)
