"""Fixtures of the data tests."""

import urllib.error
import urllib.request

import pytest


@pytest.fixture
def offline(monkeypatch):
    """No network, whatever the machine: every urlopen fails like a missing DNS."""

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("offline (test)")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
