@cluster
Feature: T04 — Gitea runs on the CloudNativePG database (RAIL-HO-WP-0004-T04)
  Gitea's built-in postgresql-ha subchart is gone; its config points at gitea-db-rw in
  databases, and Gitea is up. Gitea's app.ini is read from the chart's inline-config
  Secret, with every password masked while it is parsed; HOST is compared as lib/pq connects
  (no port means 5432, a short service name is completed with the cluster domain). Gitea's own
  health endpoint is read through the API server's service proxy (one GET; RBAC: get on
  services/proxy for http:gitea-http:3000 in gitea only): its database ping must pass.

  Background:
    Given the cluster, read through the Kubernetes API

  Scenario: cluster.postgresql_ha.absent — no postgresql-ha is left behind
    Then no pod or StatefulSet of postgresql-ha is left in any namespace

  Scenario: cluster.gitea.database — Gitea uses gitea-db
    Then Gitea's app.ini in Secret gitea/gitea-inline-config has [database] DB_TYPE postgres, HOST gitea-db-rw.databases.svc.cluster.local:5432, NAME gitea and USER gitea

  Scenario: cluster.gitea.available — Gitea is up
    Then Deployment gitea/gitea is available with every replica ready

  Scenario: cluster.gitea.db_health — Gitea reaches its database
    Then Service gitea/gitea-http answers GET /api/healthz on port 3000 through the API server's service proxy with the health check database:ping passing
