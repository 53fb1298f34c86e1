@X @repos
Feature: The layer repos are in order (RAIL-HO-WP-0004 T03, T06, T08)
  Static checks of the local checkouts of the railiance-* repos (--repos DIR): make targets from
  make's own database (no recipe is ever run), SOPS files really encrypted (no value is ever
  shown), the superseded platform workplan, the deploy-stack runbook and the Gitea values moved
  to railiance-apps with a tombstone.

  Background:
    Given the railiance-* repo checkouts

  @T08 @high
  Scenario: repo.make.targets — the make targets of the workplan exist
    Then the db, valkey, gitea and deploy-stack targets exist in make's database

  @T06 @critical
  Scenario: repo.sops.encrypted — no secret is committed in plaintext
    Then every *.sops.yaml file is SOPS-encrypted with a mac and no plaintext value

  @T03 @low
  Scenario: repo.workplan.superseded — the old platform workplan is superseded
    Then RAIL-PL-WP-0001 says it is superseded

  @T08 @medium
  Scenario: repo.deploy_stack.doc — the deploy-stack runbook is complete
    Then docs/deploy-stack.md is complete and deploy-stack prints S1 to S5 in order

  @T06 @medium
  Scenario: boundary.values.location — Gitea's values live in railiance-apps
    Then gitea-values.sops.yaml is in railiance-apps with a tombstone in railiance-cluster
