@cluster
Feature: T03 — Gitea's database is a CloudNativePG cluster (RAIL-HO-WP-0004-T03)
  railiance-platform defines the Cluster gitea-db in namespace databases (make db-deploy):
  PostgreSQL 16, 10Gi of storage, bootstrapped with database and owner gitea from the
  SOPS-managed Secret gitea-db-credentials. The operator that reconciles it must be up.
  T03's manifest says "instances: 1  # single-node to start; bump to 3 when RAM allows", so
  1 to 3 instances are conformant. The PostgreSQL major is the one the operator runs (imageName,
  an image catalog, or its default image). Secrets are checked by key name only; their values
  are never read into a report. "kubectl cnpg status ... healthy" (T03/T04's Done when) is read
  from the Cluster's status and conditions as the plugin shows them: every instance ready, the
  current primary one of its instances (no switchover pending), the WAL archiver working
  (condition ContinuousArchiving), and the newest Backup completed within a day (the daily
  ScheduledBackup runs at 02:00).

  Background:
    Given the cluster, read through the Kubernetes API

  Scenario: cluster.cnpg.operator — the operator is running
    Then the Deployment labelled app.kubernetes.io/name=cloudnative-pg in cnpg-system is available with every replica ready

  Scenario: cluster.gitea_db.spec — gitea-db is defined as the workplan says
    Then Cluster databases/gitea-db has spec.instances 1 to 3, PostgreSQL major 16, spec.storage.size 10Gi, spec.bootstrap.initdb.database gitea, spec.bootstrap.initdb.owner gitea and spec.bootstrap.initdb.secret.name gitea-db-credentials

  Scenario: cluster.gitea_db.healthy — gitea-db is healthy
    Then Cluster databases/gitea-db is in phase "Cluster in healthy state" with every instance ready

  Scenario: cluster.gitea_db.status — gitea-db reports its instances, primary, archiving and backups healthy
    Then Cluster databases/gitea-db reports every instance ready, a current primary, continuous archiving working and a completed backup in the last 24 hours

  Scenario: cluster.gitea_db.credentials — the credentials Secret is there
    Then Secret databases/gitea-db-credentials has the keys username and password
