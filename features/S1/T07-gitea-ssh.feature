@S1 @T07 @hosts
Feature: T07 — git over SSH from CoulombCore to Gitea (RAIL-HO-WP-0004-T07)
  CoulombCore cannot push to Gitea over HTTP (NodePort hairpin), so the operator user
  has an ed25519 key for Gitea, a "Host gitea-local" block in ~/.ssh/config whose Port
  is Gitea's SSH NodePort, and every repo checkout pushes to ssh://git@gitea-local/...
  The private key is only ever stat()ed, never read.
  Fix drift with: make converge (railiance-infra, role git-access).

  Background:
    Given the host's facts, gathered in one SSH command

  @medium
  Scenario: host.gitea_ssh.key — the Gitea key is in place and private
    Then the user's ed25519 key for Gitea exists with mode 0600, owned by the user

  @medium
  Scenario: host.gitea_ssh.config — ssh knows how to reach Gitea
    Then the user's ssh config has the gitea-local Host block with Gitea's SSH NodePort

  @medium
  Scenario: host.gitea_ssh.remotes — every checkout pushes to Gitea over SSH
    Then every listed repo checkout has an ssh://git@gitea-local/ origin
