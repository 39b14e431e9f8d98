"""Generator and discriminator networks."""

from gan_suite.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from gan_suite.nets.mlp import Maxout, MaxoutDiscriminator, MLPGenerator
from gan_suite.nets.spec import build_from_spec

__all__ = ["DCGANGenerator", "DCGANDiscriminator", "MLPGenerator", "MaxoutDiscriminator", "Maxout", "build_from_spec"]
