@cluster
Feature: T05 — Valkey is a standalone S3 release that Gitea uses (RAIL-HO-WP-0004-T05)
  railiance-platform deploys Valkey as its own Helm release in platform (make valkey-deploy)
  with auth and 2Gi of persistence; Gitea's redis-cluster subchart is gone and Gitea's
  cache, session and queue use Valkey's databases 0, 1 and 2. A release's values are read as
  `helm get values --all` shows them (the chart's defaults deep-merged with the user's); Gitea's
  connection strings are compared where its redis client connects (credentials ignored, never shown).
  That the cache works, not only that it is configured, is Gitea's own health check (cache:ping),
  read through the API server's service proxy with one GET.

  Background:
    Given the cluster, read through the Kubernetes API

  Scenario: cluster.valkey.release — the Valkey release is deployed and healthy
    Then Helm release platform/valkey of chart valkey is deployed and ready, with auth.enabled=true, 2Gi volumes bound and the key valkey-password in Secret valkey

  Scenario: cluster.redis_cluster.absent — no redis-cluster is left behind
    Then no pod or StatefulSet of redis-cluster is left in any namespace

  Scenario: cluster.gitea.cache — Gitea's cache, session and queue are on Valkey
    Then Gitea's app.ini in Secret gitea/gitea-inline-config has [cache] ADAPTER redis and HOST redis://valkey.platform.svc.cluster.local:6379/0; [session] PROVIDER redis and PROVIDER_CONFIG redis://valkey.platform.svc.cluster.local:6379/1; [queue] TYPE redis and CONN_STR redis://valkey.platform.svc.cluster.local:6379/2

  Scenario: cluster.gitea.cache_health — Gitea's cache on Valkey answers
    Then Service gitea/gitea-http answers GET /api/healthz on port 3000 through the API server's service proxy with the health check cache:ping passing
