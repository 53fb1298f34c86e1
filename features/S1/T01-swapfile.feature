@hosts
Feature: T01 — CoulombCore has its swapfile, codified in Ansible (RAIL-HO-WP-0004-T01)
  After INC-002 a 4 GB swapfile was added by hand. The swapfile role of railiance-infra
  makes it reproducible: a root-owned 0600 /swapfile of 4 GiB, active, enabled in
  /etc/fstab, with vm.swappiness = 10 live and persisted in /etc/sysctl.d/.
  The values below are the desired state; a host's Ansible vars (swap_file, swap_size_gb,
  swap_swappiness) override them, and each finding says where its expected value came from.
  Fix drift with: make converge (railiance-infra).

  Background:
    Given the host's facts, gathered in one SSH command

  Scenario: host.swap.file — the swapfile exists with the right owner, mode and size
    Then /swapfile is a regular file of 4 GiB, owned by root, mode 0600

  Scenario: host.swap.active — the kernel uses the swapfile
    Then the kernel uses /swapfile as swap, within one page of its size

  Scenario: host.swap.fstab — the swapfile is enabled again after a reboot
    Then /etc/fstab enables /swapfile as swap at boot

  Scenario: host.swappiness.live — the kernel runs with swappiness 10
    Then vm.swappiness is 10 now

  Scenario: host.swappiness.persisted — the swappiness survives a reboot
    Then sysctl.d sets vm.swappiness to 10 for the next boot

  Scenario: host.swap.total — free -h shows the stated swap (the workplan's Done when)
    Then the kernel's total swap is 4 GiB, within one page
