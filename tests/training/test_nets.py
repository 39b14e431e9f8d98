"""Shapes and value ranges of every network, and the DCGAN initialisation."""

import pytest
import torch
from scipy import stats

from gan_suite.errors import ConfigError
from gan_suite.nets import DCGANDiscriminator, DCGANGenerator, Maxout, MaxoutDiscriminator, MLPGenerator, build_from_spec


@pytest.mark.parametrize("size", [28, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_dcgan_shapes_and_ranges(size, channels):
    g = DCGANGenerator(latent_dim=16, image_size=size, channels=channels, width=8)
    d = DCGANDiscriminator(image_size=size, channels=channels, width=8)
    x = g(torch.randn(5, 16))
    assert x.shape == (5, channels, size, size)
    assert x.min() >= -1 and x.max() <= 1
    assert d(x).shape == (5,)


@pytest.mark.parametrize("pack", [2, 4])
def test_packing_divides_the_batch(pack):
    d = DCGANDiscriminator(image_size=32, channels=3, width=8, pack=pack)
    assert d(torch.randn(8, 3, 32, 32)).shape == (8 // pack,)
    m = MaxoutDiscriminator(sample_shape=[2], hidden=[16], pieces=3, input_dropout=0, hidden_dropout=0, pack=pack)
    assert m(torch.randn(8, 2)).shape == (8 // pack,)
    with pytest.raises(ConfigError, match="not divisible"):
        m(torch.randn(7, 2))


def test_packing_concatenates_consecutive_samples():
    d = MaxoutDiscriminator(sample_shape=[2], hidden=[4], pieces=2, input_dropout=0, hidden_dropout=0, pack=2)
    x = torch.randn(4, 2)
    # swapping the two groups swaps the two outputs; swapping inside a group changes them
    out = d(x)
    assert torch.allclose(d(x[[2, 3, 0, 1]]), out.flip(0))
    assert not torch.allclose(d(x[[1, 0, 2, 3]])[0], out[0])


def test_mlp_goodfellow_sizes_and_output_ranges():
    g = MLPGenerator()  # 100 -> 1200 -> 1200 -> 784, tanh
    assert [m.out_features for m in g.net if isinstance(m, torch.nn.Linear)] == [1200, 1200, 784]
    x = g(torch.randn(3, 100))
    assert x.shape == (3, 1, 28, 28) and x.abs().max() <= 1
    sig = MLPGenerator(output="sigmoid")(torch.randn(3, 100))
    assert sig.min() >= 0 and sig.max() <= 1
    d = MaxoutDiscriminator()  # maxout 240x5, 240x5
    maxouts = [m for m in d.net if isinstance(m, Maxout)]
    assert [(m.units, m.pieces) for m in maxouts] == [(240, 5), (240, 5)]
    assert d(x).shape == (3,)


def test_maxout_takes_the_max_of_pieces():
    layer = Maxout(3, units=2, pieces=4)
    x = torch.randn(5, 3)
    expected = layer.linear(x).view(5, 2, 4).max(dim=2).values
    assert torch.equal(layer(x), expected)


# Each Kolmogorov-Smirnov check fails a correct initialisation with probability 1e-8; over the
# at most 30 checks below the false-failure rate stays below 1e-6.
_KS_ALPHA = 1e-8


def _assert_normal(values: torch.Tensor, mean: float, std: float, what: str) -> None:
    values = values.detach().double().flatten().numpy()
    pvalue = stats.kstest(values, stats.norm(loc=mean, scale=std).cdf).pvalue
    assert pvalue > _KS_ALPHA, f"{what}: mean {values.mean():.4f}, std {values.std():.4f}, KS p = {pvalue:.1e}"


@pytest.mark.parametrize(
    "build",
    [
        lambda: DCGANGenerator(latent_dim=100, image_size=64, channels=3, width=32),
        lambda: DCGANDiscriminator(image_size=64, channels=3, width=32, norm="batch"),
        lambda: DCGANDiscriminator(image_size=32, channels=1, width=32, norm="layer", pack=2),
    ],
    ids=["G", "D-batchnorm", "D-layernorm"],
)
def test_dcgan_initialisation_follows_radford(build):
    """Radford et al. 2015: every convolution's weights N(0, 0.02); norm weights N(1, 0.02), bias 0."""
    torch.manual_seed(0)
    net = build()
    convs = [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    norms = [m for m in net.modules() if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.GroupNorm))]
    assert len(convs) >= 4 and len(norms) >= 2
    for i, conv in enumerate(convs):  # PyTorch's default (Kaiming-uniform) fails these per layer
        _assert_normal(conv.weight, 0.0, 0.02, f"convolution {i}")
        assert conv.bias is None
    _assert_normal(torch.cat([m.weight for m in norms]), 1.0, 0.02, "norm weights")
    assert all(torch.equal(m.bias, torch.zeros_like(m.bias)) for m in norms)


def test_batchnorm_momentum_is_pytorch_default():
    d = DCGANDiscriminator(image_size=32, channels=3)
    for m in d.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            assert m.eps == 1e-5 and m.momentum == 0.1


def test_unsupported_size_is_a_one_line_error():
    with pytest.raises(ConfigError, match="supports image sizes"):
        DCGANGenerator(image_size=48)


def test_spec_rebuilds_an_identical_architecture():
    g = DCGANGenerator(latent_dim=10, image_size=32, channels=3, width=8)
    rebuilt = build_from_spec(g.spec())
    rebuilt.load_state_dict(g.state_dict())
    z = torch.randn(2, 10)
    g.eval(), rebuilt.eval()
    assert torch.equal(g(z), rebuilt(z))


def test_pack_samples_concatenates_groups_along_the_channels():
    from gan_suite.nets.packing import pack_samples

    images = torch.arange(4 * 2 * 3 * 3, dtype=torch.float32).view(4, 2, 3, 3)
    packed = pack_samples(images, 2)
    assert packed.shape == (2, 4, 3, 3)
    for group in range(2):
        assert torch.equal(packed[group], torch.cat([images[2 * group], images[2 * group + 1]]))
    vectors = torch.arange(6 * 2, dtype=torch.float32).view(6, 2)
    assert torch.equal(pack_samples(vectors, 3), vectors.view(2, 6))
    assert pack_samples(vectors, 1) is vectors
    with pytest.raises(ConfigError, match="batch of 6 samples is not divisible by the packing degree 4"):
        pack_samples(vectors, 4)
