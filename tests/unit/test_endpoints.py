"""Endpoints as their clients resolve them: default ports, service DNS forms, old forms."""
import pytest

from railiance_conformance.resources.endpoints import (
    Endpoint,
    git_remote,
    postgres_endpoint,
    redis_endpoint,
    service_fqdn,
    to_redis_uri,
)

FQDN = "gitea-db-rw.databases.svc.cluster.local"


@pytest.mark.parametrize("written", [
    "gitea-db-rw.databases.svc.cluster.local", "gitea-db-rw.databases.svc.cluster.local:5432",
    "gitea-db-rw.databases", "gitea-db-rw.databases.svc", "GITEA-DB-RW.databases.svc.cluster.local.:5432",
])
def test_the_same_postgres_endpoint_written_differently(written):
    assert postgres_endpoint(written, client_namespace="gitea") == Endpoint("postgres", FQDN, 5432)


@pytest.mark.parametrize("written", ["gitea-db-rw.databases:5433", "gitea-db-rw:5432", "gitea-db-ro.databases"])
def test_a_different_postgres_endpoint(written):
    assert postgres_endpoint(written, client_namespace="gitea") != Endpoint("postgres", FQDN, 5432)


def test_a_short_name_resolves_in_the_clients_own_namespace():
    assert service_fqdn("valkey", client_namespace="gitea") == "valkey.gitea.svc.cluster.local"
    assert service_fqdn("10.0.0.7") == "10.0.0.7"


VALKEY0 = Endpoint("redis", "valkey.platform.svc.cluster.local", 6379, "0")


@pytest.mark.parametrize("written", [
    "redis://valkey.platform.svc.cluster.local:6379/0",
    "redis://:S3cret@valkey.platform.svc.cluster.local:6379/0",
    "network=tcp,addr=valkey.platform.svc.cluster.local:6379,password=S3cret,db=0,pool_size=100",
    "addrs=valkey.platform:6379 db=0", "redis://valkey.platform:6379", "redis://valkey.platform:6379?db=0",
    "network=tcp,addr=valkey.platform.svc:6379,idle_timeout=180",
])
def test_the_same_redis_endpoint_written_differently(written):
    assert redis_endpoint(written, client_namespace="gitea") == VALKEY0


def test_a_path_database_overrides_the_query_and_a_missing_port_is_none():
    assert redis_endpoint("redis://valkey.platform:6379/2?db=1").database == "2"
    assert redis_endpoint("redis://valkey.platform:6379/?db=1").database == "1"
    assert redis_endpoint("redis://valkey.platform/0").port is None


def test_the_old_form_defaults_as_gitea_does():
    assert to_redis_uri("pool_size=100") == "redis://127.0.0.1:6379/0?pool_size=100"
    assert to_redis_uri("network=tcp,addrs=a:1,b:2").startswith("redis://")  # comma-split first, as Gitea


@pytest.mark.parametrize("url,server", [
    ("ssh://git@gitea-local/coulomb/r.git", ("ssh", "git", "gitea-local", None, "/coulomb/r.git")),
    ("git@gitea-local:coulomb/r.git", ("ssh", "git", "gitea-local", None, "/coulomb/r.git")),
    ("ssh://git@gitea-local:2222/coulomb/r.git", ("ssh", "git", "gitea-local", 2222, "/coulomb/r.git")),
    ("https://gitea.example.invalid/coulomb/r.git", ("https", None, "gitea.example.invalid", None, "/coulomb/r.git")),
    ("/srv/git/r.git", ("file", None, "", None, "/srv/git/r.git")),
])
def test_git_remotes_parse_as_git_reads_them(url, server):
    remote = git_remote(url)
    assert (remote.scheme, remote.user, remote.host, remote.port, remote.path) == server
