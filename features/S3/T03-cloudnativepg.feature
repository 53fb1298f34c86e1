@S3 @T03 @cluster
Feature: T03 — Gitea's database is a CloudNativePG cluster (RAIL-HO-WP-0004-T03)
  railiance-platform defines the Cluster gitea-db in namespace databases (make db-deploy):
  PostgreSQL 16, 10Gi of storage, bootstrapped with database and owner gitea from the
  SOPS-managed Secret gitea-db-credentials. The operator that reconciles it must be up.
  Secrets are checked by key name only; their values are never read into a report.

  Background:
    Given the cluster, read through the Kubernetes API

  @critical
  Scenario: cluster.cnpg.operator — the operator is running
    Then the CloudNativePG operator Deployment is available

  @high
  Scenario: cluster.gitea_db.spec — gitea-db is defined as the workplan says
    Then Cluster gitea-db has the policy instances, PostgreSQL major, storage and bootstrap

  @critical
  Scenario: cluster.gitea_db.healthy — gitea-db is healthy
    Then gitea-db is "Cluster in healthy state" with every instance ready

  @high
  Scenario: cluster.gitea_db.credentials — the credentials Secret is there
    Then Secret gitea-db-credentials has the username and password keys
