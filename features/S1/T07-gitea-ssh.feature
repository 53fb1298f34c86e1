@hosts
Feature: T07 — git over SSH from CoulombCore to Gitea (RAIL-HO-WP-0004-T07)
  CoulombCore cannot push to Gitea over HTTP (NodePort hairpin), so the operator user
  has an ed25519 key for Gitea, a "Host gitea-local" block in ~/.ssh/config whose Port
  is Gitea's SSH NodePort, and every repo checkout fetches and pushes to
  ssh://git@gitea-local/... The private key is only ever stat()ed, never read.
  With a cluster given, the Port is compared with the NodePort the cluster reports; without
  one, with the host's gitea_ssh_nodeport var.
  Fix drift with: make converge (railiance-infra, role git-access).

  Background:
    Given the host's facts, gathered in one SSH command

  Scenario: host.gitea_ssh.key — the Gitea key is in place and private
    Then tegwick's ~/.ssh/id_ed25519_gitea is a private ed25519 key, owned by tegwick, mode 0600

  Scenario: host.gitea_ssh.config — ssh knows how to reach Gitea
    Then tegwick's ssh resolves gitea-local to HostName localhost, User git, IdentityFile ~/.ssh/id_ed25519_gitea and Port the NodePort of Service gitea/gitea-ssh

  Scenario: host.gitea_ssh.remotes — every checkout fetches and pushes to Gitea over SSH
    Then every checkout of tegwick in ~/railiance-infra, ~/railiance-cluster, ~/railiance-platform and ~/railiance-apps fetches and pushes to ssh://git@gitea-local/

  Scenario: host.gitea_ssh.login — ssh to Gitea authenticates without a prompt (Done when: push over SSH without prompts)
    Then tegwick's ssh logs in to gitea-local in batch mode, without a prompt

  Scenario: host.gitea_ssh.ls_remote — every checkout's push URL answers over SSH
    Then git ls-remote answers as tegwick for the push URL of every checkout in ~/railiance-infra, ~/railiance-cluster, ~/railiance-platform and ~/railiance-apps
