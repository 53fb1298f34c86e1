"""The in-cluster nightly run: manifests valid against the Kubernetes API schemas (the official
client's models, generated from the Kubernetes OpenAPI spec), RBAC read-only and exactly what the
suite reads, and the suite picking up a Pod's service account by itself."""
from __future__ import annotations

import os
import subprocess
import sys
import typing

import pytest
import yaml
from kubernetes.client import models
from pydantic import BaseModel

from railiance_conformance.policy import DEFAULT_POLICY_DIR, load_catalog
from railiance_conformance.probes.api_kinds import API_KINDS, SERVICE_PROXY
from railiance_testbed.kubeapi import CONFORMANT_DUMP, KubeAPIStandIn, load_dump
from tests.suite_runner import REPO

DEPLOY = REPO / "deploy" / "kubernetes"
MANIFESTS = sorted(DEPLOY.rglob("*.yaml"))   # the base, and the opt-in serve/ and publish-policyreport/
DOCUMENTS = [(path.relative_to(DEPLOY).as_posix(), doc) for path in MANIFESTS
             for doc in yaml.safe_load_all(path.read_text()) if doc]
READ_VERBS = {"get", "list", "watch"}
PUBLISHER = "railiance-conformance-policyreport-publisher"
# the only write ever granted: server-side apply (patch, and create for the apply that creates it) of the
# one ClusterPolicyReport, by the publisher's own role, in the opt-in publish-policyreport/ directory
APPLY_RULES = [{"apiGroups": ["wgpolicyk8s.io"], "resources": ["clusterpolicyreports"],
                "verbs": ["create", "patch", "list", "delete"]},
               {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"],
                "resourceNames": ["clusterpolicyreports.wgpolicyk8s.io"], "verbs": ["get"]}]


def model_for(doc: dict) -> type[BaseModel]:
    group_version = doc["apiVersion"].split("/")
    version = group_version[-1]
    return getattr(models, f"{version.capitalize()}{doc['kind']}")


def unknown_fields(model: type[BaseModel], data: typing.Any, path: str = "") -> list[str]:
    """Keys the Kubernetes schema does not define (pydantic alone would ignore them)."""
    if not isinstance(data, dict):
        return []
    by_alias = {}
    for name, field in model.model_fields.items():
        by_alias[field.serialization_alias or name] = field
    problems = []
    for key, value in data.items():
        field = by_alias.get(key)
        if field is None:
            problems.append(f"{path}.{key}")
            continue
        for inner in _models(field.annotation):
            items = value if isinstance(value, list) else value.values() if isinstance(value, dict) and \
                typing.get_origin(_strip(field.annotation)) is dict else [value]
            for item in items:
                problems += unknown_fields(inner, item, f"{path}.{key}")
    return problems


def _strip(annotation):
    while typing.get_origin(annotation) in (typing.Union, typing.Annotated) or str(typing.get_origin(annotation)) == "types.UnionType":
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        annotation = args[0]
    return annotation


def _models(annotation) -> list[type[BaseModel]]:
    annotation = _strip(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


@pytest.mark.parametrize("name,doc", DOCUMENTS, ids=[f"{n}:{d['kind']}/{d['metadata']['name']}" for n, d in DOCUMENTS])
def test_every_manifest_is_valid_against_the_kubernetes_schema(name, doc):
    model = model_for(doc)
    model.from_dict(doc)  # types, required fields
    assert unknown_fields(model, doc) == []


def test_the_validation_would_catch_a_typo():
    cronjob = next(d for _, d in DOCUMENTS if d["kind"] == "CronJob")
    broken = yaml.safe_load(yaml.safe_dump(cronjob))
    broken["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    assert unknown_fields(models.V1CronJob, broken) == [".spec.jobTemplate.spec.template.spec.containers.imagePullPolicyy"]


def rules(*, publisher: bool = False) -> list[dict]:
    """Every rule of every Role and ClusterRole; the publisher's own role only with ``publisher``."""
    return [rule for _, doc in DOCUMENTS if doc["kind"] in ("ClusterRole", "Role")
            and (doc["metadata"]["name"] == PUBLISHER) == publisher for rule in doc["rules"]]


def test_the_only_write_is_the_publishers_server_side_apply_of_the_policy_report():
    for rule in rules():
        assert set(rule["verbs"]) <= READ_VERBS, rule
        assert "*" not in rule["resources"] and "*" not in rule.get("apiGroups", [])
    assert rules(publisher=True) == APPLY_RULES
    roles = [(name, doc) for name, doc in DOCUMENTS if doc["metadata"]["name"] == PUBLISHER]
    assert [(name, doc["kind"]) for name, doc in roles] == [
        ("publish-policyreport/rbac.yaml", "ClusterRole"), ("publish-policyreport/rbac.yaml", "ClusterRoleBinding")]
    # opt-in: nothing in the base directory (kubectl apply -f deploy/kubernetes/ does not recurse) binds it,
    # and only the nightly's ServiceAccount is bound to it (not the serve mode's)
    binding = roles[1][1]
    assert binding["roleRef"]["name"] == PUBLISHER and binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "railiance-conformance", "namespace": "conformance"}]
    assert not [n for n, d in DOCUMENTS if d.get("roleRef", {}).get("name") == PUBLISHER and "/" not in n]
    from railiance_conformance.publish_policyreport import FIELD_MANAGER, GROUP, PLURAL
    from railiance_conformance.reporting.policyreport_report import NAME
    assert (GROUP, PLURAL, NAME, FIELD_MANAGER) == ("wgpolicyk8s.io", "clusterpolicyreports", "railiance-conformance",
                                                    "railiance-conformance")


def test_the_serve_deployment_is_scraped_and_reads_only():
    deployment = next(d for _, d in DOCUMENTS if d["kind"] == "Deployment")
    service = next(d for _, d in DOCUMENTS if d["kind"] == "Service")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] == ["python", "-m", "railiance_conformance", "serve"]
    listen = container["args"][container["args"].index("--listen") + 1]
    port = next(p for p in container["ports"] if p["name"] == "http")["containerPort"]
    assert listen.endswith(f":{port}") and container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"]["type"] == "Recreate"
    annotations = service["metadata"]["annotations"]
    assert annotations == {"prometheus.io/scrape": "true", "prometheus.io/port": str(port), "prometheus.io/path": "/metrics"}
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    # its own ServiceAccount, bound only to the read-only roles
    account = pod["serviceAccountName"]
    bound = {d["roleRef"]["name"] for _, d in DOCUMENTS if d["kind"] in ("ClusterRoleBinding", "RoleBinding")
             and any(s["name"] == account for s in d["subjects"])}
    assert account == "railiance-conformance-serve"
    assert bound == {"railiance-conformance-reader", "railiance-conformance-helm-releases",
                     "railiance-conformance-secret-keys", "railiance-conformance-gitea-health"}


def test_the_roles_cover_exactly_what_the_suite_reads():
    granted = {(group, resource) for rule in rules() for group in rule["apiGroups"] for resource in rule["resources"]}
    read = {(kind.group, kind.plural) for kind in API_KINDS.values()} | {("", SERVICE_PROXY)}
    assert granted == read
    secrets = [r for r in rules() if "secrets" in r["resources"]]
    assert all(r["verbs"] == ["get"] and r.get("resourceNames") for r in secrets if "get" in r["verbs"])
    assert [r["verbs"] for r in secrets if "list" in r["verbs"]] == [["list"]]


def test_the_service_proxy_is_granted_for_gitea_health_only():
    """One GET of one Service's port through the proxy: get on services/proxy, that name (as the URL
    writes it: scheme:service:port) only, in its own Role in namespace gitea, bound to the nightly's
    and the serve mode's ServiceAccounts and to nothing else."""
    proxy_rules = [(name, doc["kind"], doc["metadata"]["name"], doc["metadata"].get("namespace"), rule)
                   for name, doc in DOCUMENTS if doc["kind"] in ("ClusterRole", "Role") for rule in doc["rules"]
                   if any("proxy" in r for r in rule["resources"])]
    assert proxy_rules == [("rbac.yaml", "Role", "railiance-conformance-gitea-health", "gitea",
                            {"apiGroups": [""], "resources": ["services/proxy"],
                             "resourceNames": ["http:gitea-http:3000"], "verbs": ["get"]})]
    role = next(d for _, d in DOCUMENTS if d["kind"] == "Role" and d["metadata"]["name"] == "railiance-conformance-gitea-health")
    assert len(role["rules"]) == 1
    bindings = sorted((d["metadata"]["namespace"], s["name"]) for _, d in DOCUMENTS if d["kind"] == "RoleBinding"
                      and d["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                           "name": "railiance-conformance-gitea-health"} for s in d["subjects"])
    assert bindings == [("gitea", "railiance-conformance"), ("gitea", "railiance-conformance-serve")]
    # what the features ask for is what is granted: the Service, its port and the scheme the probe uses
    from railiance_conformance.checks import bundled_plan
    plan = bundled_plan()
    asked = {(p.params["namespace"], f"http:{p.params['name']}:{p.params['port']}") for p in
             (plan.spec(c) for c in plan.specs) if p.kind == "cluster.service.health"}
    assert asked == {("gitea", "http:gitea-http:3000")}


def test_in_a_pod_the_suite_uses_the_service_account(tmp_path):
    """Run the suite as a Pod would: no kubeconfig, KUBERNETES_SERVICE_HOST set, the token and CA
    at /var/run/secrets/kubernetes.io/serviceaccount (a private mount namespace), HTTPS."""
    if os.geteuid() != 0:
        pytest.fail("this test needs root (a private mount namespace)")
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "1", "-subj", "/CN=kubernetes", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text("in-cluster-token")
    (account / "ca.crt").write_text(cert.read_text())
    (account / "namespace").write_text("conformance")
    with KubeAPIStandIn(load_dump([CONFORMANT_DUMP]), tls=(str(cert), str(key))) as api:
        script = (f"mount -t tmpfs tmpfs /run && mkdir -p /run/secrets/kubernetes.io && "
                  f"cp -r {account} /run/secrets/kubernetes.io/serviceaccount && "
                  f"exec {sys.executable} -m pytest features/ -p no:randomly -q -m 'cluster and not X' "
                  f"--report-dir {tmp_path / 'r'}")
        env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        env.update(KUBERNETES_SERVICE_HOST="127.0.0.1", KUBERNETES_SERVICE_PORT=str(api.port),
                   HOME=str(tmp_path))  # no ~/.kube/config either
        done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        requests = api.requests()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert requests and all(r.method == "GET" for r in requests)
    import json
    document = json.loads((tmp_path / "r" / "findings.json").read_text())
    assert {f["target"] for f in document["findings"]} == {"in-cluster"}
    platform_and_apps = {c.id for c in load_catalog(DEFAULT_POLICY_DIR).controls.values()
                         if c.id.startswith("cluster.") and c.layer != "X" and not c.pending}
    assert document["summary"]["pass"] == len(platform_and_apps) >= 10
    assert {f["control_id"] for f in document["findings"] if f["status"] == "pass"} == platform_and_apps
