"""Derived values the components compute and allowed ranges."""
from railiance_conformance.expectations import matches
from railiance_conformance.remedies import remedy_for_error
from railiance_conformance.resources.cluster_objects import coalesce_values, image_major, pod_problems, postgres_major

CATALOG = {"kind": "ClusterImageCatalog", "metadata": {"name": "postgresql"},
           "spec": {"images": [{"major": 15, "image": "ghcr.io/cloudnative-pg/postgresql:15.10"},
                               {"major": 16, "image": "ghcr.io/cloudnative-pg/postgresql:16.6"}]}}


def _get(found):
    return lambda kind, namespace, name: found.get((kind, namespace, name))


def test_an_image_catalog_ref_gives_its_major():
    cluster = {"metadata": {"namespace": "databases", "name": "gitea-db"},
               "spec": {"imageCatalogRef": {"apiGroup": "postgresql.cnpg.io", "kind": "ClusterImageCatalog",
                                            "name": "postgresql", "major": 16}}}
    major, evidence = postgres_major(cluster, _get({("clusterimagecatalogs.postgresql.cnpg.io", None, "postgresql"): CATALOG}))
    assert major == 16 and evidence["image"].endswith(":16.6")
    missing, _ = postgres_major(cluster, _get({}))
    assert isinstance(missing, str) and "does not exist" in missing


def test_image_tags_and_the_operators_default():
    assert image_major("ghcr.io/cloudnative-pg/postgresql:16.6-bookworm") == 16
    assert image_major("registry:5000/postgis:17-3.5") == 17
    assert image_major("ghcr.io/cloudnative-pg/postgresql@sha256:abc") is None
    assert postgres_major({"metadata": {}, "spec": {}, "status": {"image": "x/postgresql:16.4"}}, _get({}))[0] == 16


def test_helm_merges_user_values_deeply_and_null_deletes():
    chart = {"auth": {"enabled": True, "password": ""}, "replica": {"count": 3}}
    user = {"auth": {"existingSecret": "valkey"}, "replica": None}
    assert coalesce_values(chart, user) == {"auth": {"enabled": True, "password": "", "existingSecret": "valkey"}}
    assert coalesce_values(chart, {"auth": {"enabled": False}})["auth"]["enabled"] is False


def test_allowed_ranges_and_sets():
    assert matches({"instances": {"between": [1, 3]}}, {"instances": 3})
    assert not matches({"instances": {"between": [1, 3]}}, {"instances": 5})
    assert matches({"one_of": [1, 3]}, 3) and not matches({"one_of": [1, 3]}, 2)
    assert not matches({"between": [1, 3]}, True)


def test_pod_problems_surface_the_kubelets_reason():
    owner = {"spec": {"selector": {"matchLabels": {"app": "gitea"}}}}
    pod = {"metadata": {"namespace": "gitea", "name": "gitea-0", "labels": {"app": "gitea"}},
           "status": {"containerStatuses": [{"name": "gitea", "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                                             "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}]}}
    assert pod_problems([pod], owner) == [
        "pod gitea/gitea-0 container gitea: waiting: CrashLoopBackOff, last terminated: OOMKilled (exit 137)"]


def test_an_errors_remedy_addresses_its_reason_not_the_drift():
    assert "sshd" in remedy_for_error("ssh failed: ssh: connect to host 127.0.0.9 port 2222: Connection refused")
    assert "credentials" in remedy_for_error("ssh failed: tegwick@h: Permission denied (publickey).")
    assert "known_hosts" in remedy_for_error("ssh failed: Host key verification failed.")
    assert "RBAC" in remedy_for_error("forbidden: secrets is forbidden (RBAC: grant verb 'list' ...)")
    assert "read access" in remedy_for_error("cannot list /etc/security/limits.d as tegwick: permission denied")
    assert "converge" not in remedy_for_error("anything else")
