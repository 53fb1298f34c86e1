"""--publish-policyreport end to end: the suite run against the API stand-in sends only server-side applies
of its ClusterPolicyReports (one per target; a cluster-only run: one) and nothing else; without the
option, no write at all. The sets at 1, 10 and 100 hosts: tests/testbed/test_policyreport_sets.py."""
from __future__ import annotations

import pytest
import yaml
from kubernetes import config as kube_config
from kubernetes.dynamic import DynamicClient

from railiance_testbed.kubeapi import CONFORMANT_DUMP, POLICY_REPORTER_DUMP, KubeAPIStandIn, load_dump
from tests.suite_runner import run_suite

COLLECTION = "/apis/wgpolicyk8s.io/v1alpha2/clusterpolicyreports"
READS = ("GET", "HEAD")


@pytest.fixture
def cluster(tmp_path):
    with KubeAPIStandIn(load_dump([CONFORMANT_DUMP, POLICY_REPORTER_DUMP])) as api:
        yield api, api.write_kubeconfig(tmp_path / "kubeconfig")


def test_the_writes_are_applies_of_the_runs_cluster_policy_reports(cluster, tmp_path):
    api, kubeconfig = cluster
    done = run_suite("-m", "cluster", "--kubeconfig", str(kubeconfig), "--publish-policyreport",
                     report_dir=tmp_path / "r")
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-2000:]
    written = list(yaml.safe_load_all((tmp_path / "r" / "policyreport.yaml").read_text()))
    names = [doc["metadata"]["name"] for doc in written]
    assert names == ["railiance-conformance-railiance-testbed"]
    writes = [r for r in api.requests() if r.method not in READS]
    assert [(r.method, r.path, r.query.get("fieldManager"), r.content_type, r.status) for r in writes] == \
        [("PATCH", f"{COLLECTION}/{names[0]}", "railiance-conformance", "application/apply-patch+yaml", 201)]
    assert "ClusterPolicyReports applied" in done.stderr
    # what the cluster now holds is the run's report, as policyreport.yaml has it
    client = DynamicClient(kube_config.new_client_from_config(config_file=str(kubeconfig)))
    resource = client.resources.get(api_version="wgpolicyk8s.io/v1alpha2", kind="ClusterPolicyReport")
    served = resource.get(name=names[0]).to_dict()
    assert served["results"] == written[0]["results"] and served["summary"] == written[0]["summary"]
    assert served["metadata"]["annotations"]["railiance.io/run-id"] == done.document["run"]["id"]
    assert served["metadata"]["managedFields"][0]["manager"] == "railiance-conformance"


def test_without_the_option_the_suite_sends_no_write(cluster, tmp_path):
    api, kubeconfig = cluster
    done = run_suite("-m", "cluster", "--kubeconfig", str(kubeconfig), report_dir=tmp_path / "r")
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-2000:]
    requests = api.requests()
    assert requests and all(r.method in READS for r in requests)
    assert not any("clusterpolicyreports" in r.path for r in requests)


def test_a_refused_apply_is_named_with_its_rbac_remedy_and_fails_the_run(tmp_path):
    forbidden = {("patch", "clusterpolicyreports", "")}
    with KubeAPIStandIn(load_dump([CONFORMANT_DUMP, POLICY_REPORTER_DUMP]), forbidden=forbidden) as api:
        done = run_suite("-m", "cluster", "--kubeconfig", str(api.write_kubeconfig(tmp_path / "kc")),
                         "--publish-policyreport", report_dir=tmp_path / "r")
        writes = [r for r in api.requests() if r.method not in READS]
    assert done.returncode == 6, done.stdout[-2000:] + done.stderr[-2000:]
    assert [(r.method, r.status) for r in writes] == [("PATCH", 403)]
    assert "HTTP 403" in done.stderr and "deploy/kubernetes/publish-policyreport/rbac.yaml" in done.stderr
    assert (tmp_path / "r" / "findings.json").exists()   # the local reports never depend on the publish
