"""Shared test helpers."""

import os
import warnings

import pytest
import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_MNIST_TEST = os.path.join(REPO_ROOT, "..", "shared", "data", "mnist-test")

# Two cores: one intra-op thread; tiny networks run slower with more, and DDP tests run 2 processes.
torch.set_num_threads(1)
warnings.filterwarnings("ignore", ".*does not have many workers.*")


@pytest.fixture
def repo_root():
    return REPO_ROOT
