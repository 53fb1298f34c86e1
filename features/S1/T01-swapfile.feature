@S1 @T01 @hosts
Feature: T01 — CoulombCore has its swapfile, codified in Ansible (RAIL-HO-WP-0004-T01)
  After INC-002 a 4 GB swapfile was added by hand. The swapfile role of railiance-infra
  makes it reproducible: a root-owned 0600 /swapfile of swap_size_gb GiB, active, in
  /etc/fstab, with vm.swappiness = swap_swappiness live and persisted in /etc/sysctl.d/.
  Desired values come from the host's Ansible vars, else from policies/hosts.yaml.
  Fix drift with: make converge (railiance-infra).

  Background:
    Given the host's facts, gathered in one SSH command

  @high
  Scenario: host.swap.file — the swapfile exists with the right owner, mode and size
    Then /swapfile is a regular root-owned file with mode 0600 of exactly swap_size_gb GiB

  @high
  Scenario: host.swap.active — the kernel uses the swapfile
    Then the kernel lists /swapfile as active swap, its size within one page of the file

  @high
  Scenario: host.swap.fstab — the swapfile is enabled again after a reboot
    Then an uncommented /etc/fstab entry mounts /swapfile as swap

  @medium
  Scenario: host.swappiness.live — the kernel runs with the policy swappiness
    Then vm.swappiness is swap_swappiness now

  @medium
  Scenario: host.swappiness.persisted — the swappiness survives a reboot
    Then the sysctl.d file that wins precedence sets vm.swappiness to swap_swappiness
