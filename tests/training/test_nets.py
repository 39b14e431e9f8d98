"""Shapes and value ranges of every network, and the DCGAN initialisation."""

import pytest
import torch
from scipy import stats

from gan_suite.errors import ConfigError
from gan_suite.nets.dcgan import MapProjection, WholeMapConv2d
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


def _kinds(net: torch.nn.Sequential) -> list[str]:
    return [type(m).__name__ for m in net]


def test_mlp_generator_layers_as_listed():
    """Linear (+ BatchNorm) + ReLU per hidden width, then the output layer and its activation."""
    plain = MLPGenerator(latent_dim=2, sample_shape=[2], hidden=[8, 8])
    assert _kinds(plain.net) == ["Linear", "ReLU", "Linear", "ReLU", "Linear", "Tanh"]
    assert plain.condition is None and plain.num_classes == 0  # unconditional by default
    normed = MLPGenerator(latent_dim=2, sample_shape=[2], hidden=[8, 8], batch_norm=True, output="linear")
    assert _kinds(normed.net) == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert _kinds(MLPGenerator(hidden=[8], output="sigmoid").net)[-1] == "Sigmoid"
    widths = [(m.in_features, m.out_features) for m in normed.net if isinstance(m, torch.nn.Linear)]
    assert widths == [(2, 8), (8, 8), (8, 2)]
    with torch.no_grad():  # 'linear' is unbounded: scaled weights give points far outside [-1, 1]
        normed.net[-1].weight.mul_(100.0)
    assert normed.eval()(torch.randn(64, 2)).abs().max() > 1


def test_conditional_mlp_generator_widens_the_first_layer_by_the_embedding():
    from gan_suite.nets.conditional import CLASS_EMBED_DIM

    g = MLPGenerator(latent_dim=16, sample_shape=[2], hidden=[8], num_classes=10)
    assert g.net[0].in_features == 16 + CLASS_EMBED_DIM
    z = torch.randn(4, 16)
    one, other = g(z, torch.zeros(4, dtype=torch.long)), g(z, torch.full((4,), 3))
    assert not torch.allclose(one, other)


def test_maxout_discriminator_layers_follow_goodfellow():
    """Goodfellow et al. 2014: dropout 0.2 on the input and 0.5 after each maxout layer."""
    d = MaxoutDiscriminator()
    assert _kinds(d.net) == ["Flatten", "Dropout", "Maxout", "Dropout", "Maxout", "Dropout", "Linear"]
    assert [m.p for m in d.net if isinstance(m, torch.nn.Dropout)] == [0.2, 0.5, 0.5]
    assert d.net[2].linear.in_features == 784 and d.net[-1].in_features == 240
    assert d.projection is None and d.pack == 1
    toy = MaxoutDiscriminator(sample_shape=[2], hidden=[4, 4], pieces=5, input_dropout=0, hidden_dropout=0)
    assert _kinds(toy.net) == ["Flatten", "Maxout", "Maxout", "Linear"]
    input_only = MaxoutDiscriminator(sample_shape=[2], hidden=[4], input_dropout=0.3, hidden_dropout=0)
    assert _kinds(input_only.net) == ["Flatten", "Dropout", "Maxout", "Linear"]
    hidden_only = MaxoutDiscriminator(sample_shape=[2], hidden=[4], input_dropout=0, hidden_dropout=0.3)
    assert _kinds(hidden_only.net) == ["Flatten", "Maxout", "Dropout", "Linear"]


@pytest.mark.parametrize("option, value", [("input_dropout", -0.1), ("hidden_dropout", 1.0), ("input_dropout", 1.5)])
def test_dropout_outside_0_1_is_refused(option, value):
    with pytest.raises(ConfigError, match=f"{option} must be a probability in \\[0, 1\\), got {value}"):
        MaxoutDiscriminator(sample_shape=[2], hidden=[4], **{option: value})


def test_maxout_discriminator_dropout_acts_in_training_only():
    torch.manual_seed(0)
    d = MaxoutDiscriminator(sample_shape=[20], hidden=[16], pieces=2, input_dropout=0.5, hidden_dropout=0.5)
    x = torch.randn(8, 20)
    assert not torch.equal(d.train()(x), d(x))
    assert torch.equal(d.eval()(x), d(x))


@pytest.mark.parametrize(
    "build",
    [lambda pack: MaxoutDiscriminator(sample_shape=[2], hidden=[4], pack=pack), lambda pack: DCGANDiscriminator(image_size=32, width=8, pack=pack)],
    ids=["maxout", "dcgan"],
)
def test_pack_below_one_is_refused(build):
    build(1)
    with pytest.raises(ConfigError, match="pack must be >= 1, got 0"):
        build(0)


def test_conditional_maxout_discriminator_adds_the_projection_to_the_last_layer():
    """D(x, y) = w . phi(x) + b + <embed(y), phi(x)>, phi the last maxout layer's output [N, F]."""
    torch.manual_seed(0)
    d = MaxoutDiscriminator(sample_shape=[6], hidden=[5, 4], pieces=3, input_dropout=0, hidden_dropout=0, num_classes=3).eval()
    x, y = torch.randn(7, 6), torch.tensor([0, 1, 2, 0, 1, 2, 2])
    phi = x
    for layer in (d.net[1], d.net[2]):  # the maxout layers, computed here from their linear maps
        phi = (phi @ layer.linear.weight.T + layer.linear.bias).view(7, layer.units, layer.pieces).amax(2)
    expected = phi @ d.net[-1].weight[0] + d.net[-1].bias[0] + torch.einsum("nf,nf->n", d.projection.embed.weight[y], phi)
    assert torch.allclose(d(x, y), expected, atol=1e-6)


def _layer(m: torch.nn.Module):
    """A layer as (kind, channels in, channels out, kernel, stride, padding) or (kind, parameter)."""
    if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
        assert m.bias is None
        kind = "ConvTranspose2d" if isinstance(m, torch.nn.ConvTranspose2d) else "Conv2d"  # MapProjection, WholeMapConv2d
        return (kind, m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0], m.padding[0])
    if isinstance(m, torch.nn.BatchNorm2d):
        return ("BatchNorm2d", m.num_features)
    if isinstance(m, torch.nn.GroupNorm):
        return ("GroupNorm", m.num_groups, m.num_channels)
    if isinstance(m, torch.nn.LeakyReLU):
        return ("LeakyReLU", m.negative_slope)
    return (type(m).__name__,)


def test_dcgan_64px_layers_follow_radford():
    """Radford et al. 2015, figure 1, at a quarter of the width (8 instead of 64)."""
    g = DCGANGenerator(latent_dim=100, image_size=64, channels=3, width=8)
    up = lambda i, o: [("ConvTranspose2d", i, o, 4, 2, 1), ("BatchNorm2d", o), ("ReLU",)]
    assert [_layer(m) for m in g.net] == [
        ("ConvTranspose2d", 100, 64, 4, 1, 0), ("BatchNorm2d", 64), ("ReLU",),
        *up(64, 32), *up(32, 16), *up(16, 8), ("ConvTranspose2d", 8, 3, 4, 2, 1), ("Tanh",),
    ]
    d = DCGANDiscriminator(image_size=64, channels=3, width=8)
    down = lambda i, o: [("Conv2d", i, o, 4, 2, 1), ("BatchNorm2d", o), ("LeakyReLU", 0.2)]
    assert [_layer(m) for m in d.net] == [
        ("Conv2d", 3, 8, 4, 2, 1), ("LeakyReLU", 0.2), *down(8, 16), *down(16, 32), *down(32, 64), ("Conv2d", 64, 1, 4, 1, 0),
    ]
    assert g.condition is None and d.projection is None and d.pack == 1


@pytest.mark.parametrize("size, sizes", [(28, [7, 14, 28]), (32, [4, 8, 16, 32])])
def test_dcgan_generator_doubles_the_map_at_each_stage(size, sizes):
    g = DCGANGenerator(latent_dim=10, image_size=size, channels=1, width=4)
    seen = []
    for m in g.net:
        if isinstance(m, torch.nn.ConvTranspose2d):
            m.register_forward_hook(lambda mod, inp, out: seen.append((out.shape[1], out.shape[2])))
    g(torch.randn(2, 10))
    top = 4 * 2 ** (len(sizes) - 2)  # width * 2^(n-1) channels on the first map
    assert seen == [(top >> i, s) for i, s in enumerate(sizes[:-1])] + [(1, size)]


def test_dcgan_discriminator_norms_and_packing_channels():
    layer = DCGANDiscriminator(image_size=28, channels=1, width=4, norm="layer", pack=3)
    assert [_layer(m) for m in layer.net] == [
        ("Conv2d", 3, 4, 4, 2, 1), ("LeakyReLU", 0.2), ("Conv2d", 4, 8, 4, 2, 1), ("GroupNorm", 1, 8), ("LeakyReLU", 0.2),
        ("Conv2d", 8, 1, 7, 1, 0),
    ]
    none = DCGANDiscriminator(image_size=28, channels=1, width=4, norm="none")
    assert [_layer(m)[0] for m in none.net] == ["Conv2d", "LeakyReLU", "Conv2d", "Identity", "LeakyReLU", "Conv2d"]
    for name in ("average", "group", "spectral"):  # sorting before, between and after the known names
        with pytest.raises(ConfigError, match=f"norm must be 'batch', 'layer' or 'none', got '{name}'"):
            DCGANDiscriminator(image_size=28, norm=name)


def test_conditional_dcgan_generator_takes_the_label_embedding():
    from gan_suite.nets.conditional import CLASS_EMBED_DIM

    g = DCGANGenerator(latent_dim=10, image_size=28, channels=1, width=4, num_classes=10).eval()
    assert g.net[0].in_channels == 10 + CLASS_EMBED_DIM
    z = torch.randn(3, 10)
    assert g(z, torch.tensor([1, 2, 3])).shape == (3, 1, 28, 28)
    assert not torch.allclose(g(z, torch.zeros(3, dtype=torch.long)), g(z, torch.full((3,), 5)))
    assert torch.equal(g(z.view(3, 10, 1, 1), torch.tensor([1, 2, 3])), g(z, torch.tensor([1, 2, 3])))


def test_conditional_dcgan_discriminator_adds_the_projection_to_the_last_convolution():
    """D(x, y) = conv(phi)(x) + <embed(y), flatten(phi(x))>, phi the last feature map [N, c, s0, s0]."""
    torch.manual_seed(0)
    d = DCGANDiscriminator(image_size=28, channels=1, width=4, num_classes=3).eval()
    x, y = torch.randn(5, 1, 28, 28), torch.tensor([0, 1, 2, 2, 0])
    phi = x
    for m in list(d.net)[:-1]:
        phi = m(phi)
    last = d.net[-1].weight  # [1, c, s0, s0]: a dot product with the whole map
    expected = (phi * last).sum((1, 2, 3)) + (d.projection.embed.weight[y] * phi.flatten(1)).sum(1)
    assert torch.allclose(d(x, y), expected, atol=1e-5)


def test_dcgan_defaults_are_radfords_64px_networks():
    """With no arguments: z of 100, 64 x 64 RGB, G's maps 512-256-128-64 and D's 64-128-256-512
    (width 64; Radford et al.'s figure 1 draws G's first map with 1024 channels, width 128)."""
    g, d = DCGANGenerator(), DCGANDiscriminator()
    assert [_layer(m) for m in g.net if isinstance(m, torch.nn.ConvTranspose2d)] == [
        ("ConvTranspose2d", 100, 512, 4, 1, 0), ("ConvTranspose2d", 512, 256, 4, 2, 1), ("ConvTranspose2d", 256, 128, 4, 2, 1),
        ("ConvTranspose2d", 128, 64, 4, 2, 1), ("ConvTranspose2d", 64, 3, 4, 2, 1),
    ]
    assert [_layer(m) for m in d.net if isinstance(m, (torch.nn.Conv2d, torch.nn.BatchNorm2d))] == [
        ("Conv2d", 3, 64, 4, 2, 1), ("Conv2d", 64, 128, 4, 2, 1), ("BatchNorm2d", 128), ("Conv2d", 128, 256, 4, 2, 1),
        ("BatchNorm2d", 256), ("Conv2d", 256, 512, 4, 2, 1), ("BatchNorm2d", 512), ("Conv2d", 512, 1, 4, 1, 0),
    ]
    assert g.num_classes == 0 and d.num_classes == 0 and d.pack == 1 and g.latent_dim == 100


def _torch_twin(layer):
    """The same layer as torch's own module, sharing nothing: a reference for the GEMM forms."""
    cls = torch.nn.ConvTranspose2d if isinstance(layer, torch.nn.ConvTranspose2d) else torch.nn.Conv2d
    twin = cls(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding, bias=layer.bias is not None)
    twin.load_state_dict(layer.state_dict())
    return twin.double()


def _values_and_gradients(layer, x, upstream):
    x = x.clone().requires_grad_(True)
    out = layer(x)
    grads = torch.autograd.grad(out, [x, layer.weight], upstream)
    return out, *grads


@pytest.mark.parametrize("size", [28, 32, 64])
@pytest.mark.parametrize("num_classes", [0, 10])
def test_gemm_layers_equal_torch_convolutions_with_gradients(size, num_classes):
    # G's first layer as one matrix product and D's last as a dot product: the same values and
    # gradients (input and weight) as torch's transposed convolution and convolution, float64
    torch.manual_seed(size + num_classes)
    g = DCGANGenerator(latent_dim=12, image_size=size, channels=3, width=4, num_classes=num_classes).double()
    d = DCGANDiscriminator(image_size=size, channels=3, width=4, num_classes=num_classes).double()
    first, last = g.net[0], d.net[-1]
    assert isinstance(first, MapProjection) and isinstance(last, WholeMapConv2d)
    s0 = first.kernel_size[0]
    z = torch.randn(5, first.in_channels, 1, 1, dtype=torch.float64)
    phi = torch.randn(5, last.in_channels, s0, s0, dtype=torch.float64)
    for layer, x, out_shape in ((first, z, (5, first.out_channels, s0, s0)), (last, phi, (5, 1, 1, 1))):
        upstream = torch.randn(out_shape, dtype=torch.float64)
        ours, reference = _values_and_gradients(layer, x, upstream), _values_and_gradients(_torch_twin(layer), x, upstream)
        assert ours[0].shape == out_shape
        for a, b in zip(ours, reference):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_gemm_layers_fall_back_to_torch_on_other_inputs():
    torch.manual_seed(0)
    first = MapProjection(6, 4, 7, 1, 0, bias=False).double()
    last = WholeMapConv2d(6, 1, 7, 1, 0, bias=False).double()
    wide = MapProjection(6, 4, 7, 1, 0, bias=True).double()
    two_out = WholeMapConv2d(6, 2, 7, 1, 0, bias=False).double()
    cases = [
        (first, torch.randn(3, 6, 2, 2, dtype=torch.float64)),  # a 2 x 2 map: a real transposed convolution
        (last, torch.randn(3, 6, 9, 9, dtype=torch.float64)),  # a map larger than the kernel
        (wide, torch.randn(3, 6, 1, 1, dtype=torch.float64)),  # with a bias
        (two_out, torch.randn(3, 6, 7, 7, dtype=torch.float64)),  # two output channels
    ]
    for layer, x in cases:
        torch.testing.assert_close(layer(x), _torch_twin(layer)(x), rtol=1e-12, atol=1e-12)


def test_gemm_layers_keep_torch_state_dicts_and_hooks():
    g = DCGANGenerator(latent_dim=10, image_size=28, channels=1, width=4)
    d = DCGANDiscriminator(image_size=28, channels=1, width=4)
    assert list(g.state_dict()) == ["net.0.weight"] + [k for k in g.state_dict() if not k.startswith("net.0.")]
    assert "net.5.weight" in d.state_dict() and d.state_dict()["net.5.weight"].shape == (1, 8, 7, 7)
    seen = []
    g.net[0].register_forward_hook(lambda mod, inp, out: seen.append(("G", tuple(out.shape))))
    d.net[-1].register_forward_hook(lambda mod, inp, out: seen.append(("D", tuple(out.shape))))
    d(g(torch.randn(2, 10)))
    assert seen == [("G", (2, 8, 7, 7)), ("D", (2, 1, 1, 1))]
