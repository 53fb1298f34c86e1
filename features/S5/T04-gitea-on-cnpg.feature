@S5 @T04 @cluster
Feature: T04 — Gitea runs on the CloudNativePG database (RAIL-HO-WP-0004-T04)
  Gitea's built-in postgresql-ha subchart is gone; its config points at gitea-db-rw in
  databases, and Gitea is up. Gitea's app.ini is read from the chart's inline-config
  Secret, with every password masked while it is parsed.

  Background:
    Given the cluster, read through the Kubernetes API

  @high
  Scenario: cluster.postgresql_ha.absent — no postgresql-ha is left behind
    Then no postgresql-ha pod or StatefulSet is left in any namespace

  @critical
  Scenario: cluster.gitea.database — Gitea uses gitea-db
    Then Gitea's database config points at gitea-db-rw in databases

  @critical
  Scenario: cluster.gitea.available — Gitea is up
    Then the Gitea Deployment is available with all replicas ready
