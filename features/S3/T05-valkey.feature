@T05 @cluster
Feature: T05 — Valkey is a standalone S3 release that Gitea uses (RAIL-HO-WP-0004-T05)
  railiance-platform deploys Valkey as its own Helm release in platform (make valkey-deploy)
  with auth and 2Gi of persistence; Gitea's redis-cluster subchart is gone and Gitea's
  cache, session and queue use Valkey's databases 0, 1 and 2.

  Background:
    Given the cluster, read through the Kubernetes API

  @S3 @high
  Scenario: cluster.valkey.release — the Valkey release is deployed and healthy
    Then the standalone Valkey release in platform is deployed, ready, with auth and its volume bound

  @S3 @medium
  Scenario: cluster.redis_cluster.absent — no redis-cluster is left behind
    Then no redis-cluster pod or StatefulSet is left in any namespace

  @S5 @high
  Scenario: cluster.gitea.cache — Gitea's cache, session and queue are on Valkey
    Then Gitea's cache, session and queue use Valkey db 0, 1 and 2
