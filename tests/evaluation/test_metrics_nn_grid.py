"""Nearest-neighbour grid: PNG size, layout and content."""

import numpy as np
import torch
from PIL import Image

from gan_suite.evaluation.metrics import nearest_neighbour_grid
from gan_suite.evaluation.metrics.nn_grid import PADDING, SEPARATOR_WIDTH


def test_grid_png_size_and_nearest_neighbour(tmp_path):
    g = torch.Generator().manual_seed(0)
    s, t, h, w, n = 4, 20, 8, 6, 3
    train = torch.rand(t, 1, h, w, generator=g) * 2 - 1
    samples = train[[3, 7, 11, 19]].clone()  # exact copies: their nearest neighbour is themselves
    path = nearest_neighbour_grid(
        samples, train, samples.flatten(1), train.flatten(1), tmp_path / "sub" / "nn.png", n_neighbours=n
    )
    assert path.exists()
    img = np.asarray(Image.open(path).convert("RGB"))
    left, right = w + 2 * PADDING, n * (w + PADDING) + PADDING
    assert img.shape == (s * (h + PADDING) + PADDING, left + SEPARATOR_WIDTH + right, 3)
    sep = img[:, left : left + SEPARATOR_WIDTH]
    assert (sep[..., 0] == 255).all() and (sep[..., 1:] == 0).all()  # red separator column
    for row in range(s):
        y = PADDING + row * (h + PADDING)
        sample_tile = img[y : y + h, PADDING : PADDING + w]
        x = left + SEPARATOR_WIDTH + PADDING
        nearest_tile = img[y : y + h, x : x + w]
        assert np.array_equal(sample_tile, nearest_tile)
        x2 = x + w + PADDING
        assert not np.array_equal(sample_tile, img[y : y + h, x2 : x2 + w])


def test_grid_rgb(tmp_path):
    g = torch.Generator().manual_seed(1)
    train = torch.rand(10, 3, 5, 5, generator=g) * 2 - 1
    samples = torch.rand(2, 3, 5, 5, generator=g) * 2 - 1
    path = nearest_neighbour_grid(samples, train, samples.flatten(1), train.flatten(1), tmp_path / "g.png", n_neighbours=2)
    assert Image.open(path).size == ((5 + 4) + 4 + (2 * 7 + 2), 2 * 7 + 2)
