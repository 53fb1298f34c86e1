"""Fixtures for the repo, boundary and waiver controls: the layer map and fixture checkouts."""
from __future__ import annotations

import pytest

from railiance_conformance.controls.boundary import load_layer_map
from railiance_testbed.repos import build_repos


@pytest.fixture(scope="session")
def layer_map() -> dict:
    return load_layer_map()


@pytest.fixture(scope="session")
def conformant_repos(tmp_path_factory):
    """Read-only use: tests that change a checkout build their own."""
    return build_repos(tmp_path_factory.mktemp("conformant"), "conformant")


@pytest.fixture(scope="session")
def drifted_repos(tmp_path_factory):
    return build_repos(tmp_path_factory.mktemp("drifted"), "drifted")
