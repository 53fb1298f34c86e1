"""Fixtures for the Kubernetes API stand-in's tests: the conformant dump served over real HTTP, and the
unmodified kubernetes client talking to it.

One stand-in per test module (``standin``), listening on a random 127.0.0.1 port and stopped at the
module's end, also when a test fails; its ``kubeconfig`` file; the ``api_client`` built from that file
with an explicit ``config_file=`` (the kubernetes client reads $KUBECONFIG at import, so it is never
relied on); ``core`` is its CoreV1Api.
"""
from __future__ import annotations

import pytest
from kubernetes import client

from railiance_testbed.kubeapi import CONFORMANT_DUMP, load_dump
from tests.testbed.kubeapi_standin import _api_client, _started


@pytest.fixture(scope="module")
def conformant_objects():
    return load_dump(CONFORMANT_DUMP)


@pytest.fixture(scope="module")
def standin(request, conformant_objects):
    return _started(request, conformant_objects)


@pytest.fixture(scope="module")
def kubeconfig(standin, tmp_path_factory):
    return standin.write_kubeconfig(tmp_path_factory.mktemp("kube") / "kubeconfig")


@pytest.fixture(scope="module")
def api_client(request, kubeconfig):
    return _api_client(request, kubeconfig)


@pytest.fixture
def core(api_client):
    return client.CoreV1Api(api_client)
