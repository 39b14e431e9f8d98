"""DDP strategy that wraps the generator and the discriminator in separate DDP modules.

Lightning's DDP strategy wraps the whole LightningModule in one DistributedDataParallel. A GAN
step uses only one network's parameters per backward, so that wrapper fails ("parameters that were
not used in producing the loss") unless ``find_unused_parameters=True``, which costs a graph
traversal per backward and an all-reduce of both networks' gradients on every backward.

Here each update owns exactly one DDP module whose parameters are all used by its loss:

- the discriminator update runs D on the real batch, the fake batch and (WGAN-GP) the
  interpolates inside ONE forward of a DDP-wrapped "discriminator pass" module; one forward per
  backward also avoids the in-place error that two BatchNorm forwards of one DDP module raise.
- the generator update runs a DDP-wrapped G, and then the plain (unwrapped) D with its parameters
  frozen, so only G's gradients are computed and all-reduced.

The LightningModule itself stays unwrapped (``self.model is self.lightning_module``): Lightning then
calls ``training_step`` directly and ``manual_backward`` does a plain backward, which the
sub-module DDP wrappers synchronise.
"""

from __future__ import annotations

from torch.nn.parallel import DistributedDataParallel
from pytorch_lightning.strategies import DDPStrategy, StrategyRegistry

from gan_suite.errors import ConfigError


class SeparateNetworksDDPStrategy(DDPStrategy):
    """DDP for GAN modules: G and D are wrapped separately (see the module docstring)."""

    strategy_name = "gan_ddp"

    def configure_ddp(self) -> None:
        module = self.model
        wrap = getattr(module, "wrap_networks_for_ddp", None)
        if wrap is None:
            raise ConfigError(f"strategy 'gan_ddp' needs a gan_suite GAN module, got {type(module).__name__}")
        device_ids = self.determine_ddp_device_ids()

        def make_ddp(net):
            return DistributedDataParallel(net, device_ids=device_ids, **self._ddp_kwargs)

        wrap(make_ddp)

    def teardown(self) -> None:
        module = self.lightning_module
        if module is not None and hasattr(module, "unwrap_networks"):
            module.unwrap_networks()
        super().teardown()


def register() -> None:
    """Make ``strategy: gan_ddp`` (popen launcher) and ``gan_ddp_spawn`` available by name."""
    for name, start_method in (("gan_ddp", "popen"), ("gan_ddp_spawn", "spawn")):
        if name not in StrategyRegistry:
            StrategyRegistry.register(
                name,
                SeparateNetworksDDPStrategy,
                description=f"DDP with G and D wrapped separately, start_method '{start_method}'",
                start_method=start_method,
            )
