"""The read-only Kubernetes API stand-in, started for a test, and the unmodified kubernetes client built for it.

``_started`` starts a ``KubeAPIStandIn`` whose stop is registered with the test (or module) before it
starts, so it is stopped even when the test fails; ``_api_client`` builds a client from an explicit
kubeconfig file (never $KUBECONFIG, which the client reads at import), closed the same way;
``_status_body`` is the ``Status`` object of an ``ApiException``.
"""
from __future__ import annotations

import json

from kubernetes import client, config
from kubernetes.client.rest import ApiException

from railiance_testbed.kubeapi import KubeAPIStandIn


def _started(request, objects, **kwargs) -> KubeAPIStandIn:
    standin = KubeAPIStandIn(objects, **kwargs)
    request.addfinalizer(standin.stop)  # registered before start: stopped even if a test fails
    return standin.start()


def _api_client(request, kubeconfig_path) -> client.ApiClient:
    api_client = config.new_client_from_config(config_file=str(kubeconfig_path))
    request.addfinalizer(api_client.close)
    return api_client


def _status_body(exc: ApiException) -> dict:
    return json.loads(exc.body)
