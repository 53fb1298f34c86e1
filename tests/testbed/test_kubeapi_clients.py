"""The read-only Kubernetes API stand-in serving the conformant dump, read over real HTTP by the unmodified
kubernetes client: typed and dynamic, every kind in the dump, what the dump holds (Gitea's inline config,
Helm release secrets as Helm stores them), and dumps layered with overlays.

The stand-in and its clients are tests/testbed/conftest.py's fixtures (see there: a random 127.0.0.1 port,
stopped also when a test fails; clients built from an explicit kubeconfig file).
"""
from __future__ import annotations

import base64

import pytest
import yaml
from kubernetes import client, dynamic

from railiance_testbed.kubeapi import DumpError, load_dump
from railiance_testbed.kubeapi.helm_release import decode_release


# --- typed client ----------------------------------------------------------------------------
def test_typed_client_lists_namespaces_and_reads_the_gitea_deployment(api_client, core):
    names = [ns.metadata.name for ns in core.list_namespace().items]
    assert names == sorted(["cert-manager", "cnpg-system", "ingress-nginx", "gitea", "argocd", "databases",
                            "platform", "default", "kube-system", "kube-public", "kube-node-lease"])

    gitea = client.AppsV1Api(api_client).read_namespaced_deployment("gitea", "gitea")
    assert gitea.metadata.labels["app.kubernetes.io/managed-by"] == "Helm"
    assert gitea.metadata.labels["helm.sh/chart"].startswith("gitea-12.")
    assert gitea.metadata.annotations["meta.helm.sh/release-name"] == "gitea"
    assert gitea.status.available_replicas == gitea.spec.replicas == 1


def test_typed_client_deserialises_every_kind_in_the_dump(api_client, core):
    apps = client.AppsV1Api(api_client)
    counts = {
        "pods": len(core.list_pod_for_all_namespaces().items),
        "secrets": len(core.list_secret_for_all_namespaces().items),
        "services": len(core.list_service_for_all_namespaces().items),
        "pvcs": len(core.list_persistent_volume_claim_for_all_namespaces().items),
        "pvs": len(core.list_persistent_volume().items),
        "nodes": len(core.list_node().items),
        "statefulsets": len(apps.list_stateful_set_for_all_namespaces().items),
        "daemonsets": len(apps.list_daemon_set_for_all_namespaces().items),
        "replicasets": len(apps.list_replica_set_for_all_namespaces().items),
        "crds": len(client.ApiextensionsV1Api(api_client).list_custom_resource_definition().items),
        "ingresses": len(client.NetworkingV1Api(api_client).list_ingress_for_all_namespaces().items),
        "storageclasses": len(client.StorageV1Api(api_client).list_storage_class().items),
        "pdbs": len(client.PolicyV1Api(api_client).list_pod_disruption_budget_for_all_namespaces().items),
        "leases": len(client.CoordinationV1Api(api_client).list_lease_for_all_namespaces().items),
    }
    assert all(counts.values()), counts
    nodeport = core.read_namespaced_service("gitea-ssh", "gitea").spec.ports[0]
    assert (nodeport.port, nodeport.target_port, nodeport.node_port) == (22, 2222, 30022)


# --- dynamic client --------------------------------------------------------------------------
def test_dynamic_client_reads_the_cnpg_cluster(api_client, tmp_path):
    dyn = dynamic.DynamicClient(api_client, cache_file=str(tmp_path / "discovery.json"))
    clusters = dyn.resources.get(api_version="postgresql.cnpg.io/v1", kind="Cluster")
    assert clusters.namespaced and clusters.name == "clusters"
    assert [c.metadata.name for c in clusters.get(namespace="databases").items] == ["gitea-db"]

    gitea_db = clusters.get(namespace="databases", name="gitea-db")
    assert gitea_db.spec.bootstrap.initdb.secret.name == "gitea-db-credentials"
    assert gitea_db.spec.storage.size == "10Gi"
    assert gitea_db.status.phase == "Cluster in healthy state"
    assert gitea_db.status.readyInstances == gitea_db.spec.instances == 1

    backups = dyn.resources.get(api_version="postgresql.cnpg.io/v1", kind="Backup").get(namespace="databases")
    assert {b.status.phase for b in backups.items} == {"completed"}


# --- what the dump holds ---------------------------------------------------------------------
def _secret_text(core, name, namespace, key) -> str:
    return base64.b64decode(core.read_namespaced_secret(name, namespace).data[key]).decode()


def test_gitea_inline_config_is_laid_out_like_the_chart(core):
    database = _secret_text(core, "gitea-inline-config", "gitea", "database").splitlines()
    assert database[:3] == ["DB_TYPE=postgres", "HOST=gitea-db-rw.databases.svc.cluster.local:5432", "NAME=gitea"]
    assert "USER=gitea" in database
    password = next(line.split("=", 1)[1] for line in database if line.startswith("PASSWD="))
    assert password == _secret_text(core, "gitea-db-credentials", "databases", "password")
    assert "CONFORMANT-SECRET-VALUE" in password
    valkey = "@valkey.platform.svc.cluster.local:6379/"
    assert valkey + "0" in _secret_text(core, "gitea-inline-config", "gitea", "cache")
    assert valkey + "1" in _secret_text(core, "gitea-inline-config", "gitea", "session")
    assert valkey + "2" in _secret_text(core, "gitea-inline-config", "gitea", "queue")


def test_helm_release_secrets_decode_like_helm_stores_them(core):
    releases = core.list_secret_for_all_namespaces(label_selector="owner=helm,status=deployed").items
    decoded = {(s.metadata.namespace, s.metadata.labels["name"]): decode_release(s.data["release"]) for s in releases}
    assert set(decoded) == {("cert-manager", "cert-manager"), ("cnpg-system", "cnpg"), ("gitea", "gitea"),
                            ("ingress-nginx", "ingress-nginx"), ("platform", "valkey")}
    gitea = decoded[("gitea", "gitea")]
    assert gitea["info"]["status"] == "deployed" and gitea["version"] == 4
    assert gitea["chart"]["metadata"]["name"] == "gitea" and gitea["chart"]["metadata"]["version"].startswith("12.")
    valkey = decoded[("platform", "valkey")]
    assert valkey["config"]["auth"]["enabled"] is True
    assert all(s.type == "helm.sh/release.v1" for s in releases)


# --- loading dumps ---------------------------------------------------------------------------
def test_overlays_replace_and_delete_objects(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gitea"}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "gitea", "namespace": "gitea"},
         "spec": {"replicas": 1}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "gitea"}, "data": {}}]}))
    overlay = tmp_path / "drift"
    overlay.mkdir()
    (overlay / "gitea.yaml").write_text(
        "delete:\n  - {kind: Secret, namespace: gitea, name: s}\n---\n"
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: gitea, namespace: gitea}\nspec: {replicas: 0}\n"
        "---\napiVersion: v1\nkind: Secret\nmetadata: {name: t, namespace: gitea}\nstringData: {k: v}\n")
    objects = load_dump([base, overlay])
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        ("Namespace", "gitea"), ("Deployment", "gitea"), ("Secret", "t")]
    assert objects[1]["spec"]["replicas"] == 0
    assert objects[2]["data"] == {"k": base64.b64encode(b"v").decode()}

    (overlay / "typo.yaml").write_text("delete:\n  - {kind: Secret, namespace: gitea, name: nope}\n")
    with pytest.raises(DumpError, match="matches no object"):
        load_dump([base, overlay])
