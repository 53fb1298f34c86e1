@repos
Feature: The layer repos are in order (RAIL-HO-WP-0004 T03, T06, T08)
  Static checks of the local checkouts of the railiance-* repos (--repos DIR): make targets from
  make's own database (no recipe is ever run), SOPS files really encrypted (no value is ever
  shown), the superseded platform workplan, the deploy-stack runbook (a section is a heading
  matching the /regex/, case-insensitive, whose text names every keyword and has the list items)
  and the Gitea values moved to railiance-apps with a tombstone.

  Background:
    Given the railiance-* repo checkouts

  Scenario: repo.make.targets — the make targets of the workplan exist
    Then make knows the targets db-deploy, db-status, db-shell, valkey-deploy and valkey-status in railiance-platform; gitea-deploy and gitea-status in railiance-apps; deploy-stack in railiance-infra

  Scenario: repo.sops.encrypted — no secret is committed in plaintext
    Then every file matching *.sops.yaml or *.sops.yml is SOPS-encrypted with a mac and no plaintext value

  Scenario: repo.workplan.superseded — the old platform workplan is superseded
    Then the front matter of railiance-platform/workplans/RAIL-PL-WP-0001*.md has status superseded

  Scenario: repo.deploy_stack.doc — the deploy-stack runbook is complete
    Then railiance-infra/docs/deploy-stack.md has the sections "pre-conditions checklist" /pre-?conditions?|prerequisites/ naming sops and age with 2 list items, "State Hub tunnel bring-up (ops-bridge)" /state.?hub|tunnel|ops-bridge/ naming ops-bridge and tunnel, and "recovery runbook pointer (INC-002)" /recovery|runbook|incident/ naming INC-002; make deploy-stack prints S1, S2, S3, S4 and S5 in that order

  Scenario: boundary.values.location — Gitea's values live in railiance-apps
    Then gitea-values.sops.yaml lives in railiance-apps/helm, with no copy left in railiance-cluster and a tombstone in railiance-cluster/helm/MOVED.md
