@hosts
Feature: T02 — nproc limits and the user slice protect CoulombCore (RAIL-HO-WP-0004-T02)
  INC-002 was a runaway agent of the operator user. pam_limits caps its processes at
  512 (soft) and 1024 (hard), and the user's systemd slice caps its memory at 1500M and its
  swap at 512M. The slice is named after the uid, so the uid is checked too. Configured
  values are resolved the way pam_limits and systemd merge their files; effective values are
  read from a real login session and from systemd itself. A host's Ansible vars
  (operator_user, operator_uid, nproc_soft, nproc_hard, user_memory_max,
  user_memory_swap_max) override the values below.
  Fix drift with: make converge (railiance-infra).

  Background:
    Given the host's facts, gathered in one SSH command

  Scenario: host.user.uid — the operator user has the uid its slice is named after
    Then user tegwick has uid 1000

  Scenario: host.nproc.configured — limits.conf and limits.d give the nproc caps
    Then pam_limits gives tegwick nproc soft 512 and hard 1024

  Scenario: host.nproc.effective — a real login session has the nproc caps
    Then a login session of tegwick runs with nproc soft 512 and hard 1024

  Scenario: host.slice.configured — the slice drop-ins set the memory caps
    Then the drop-ins of user-1000.slice set MemoryMax to 1500M and MemorySwapMax to 512M

  Scenario: host.slice.effective — systemd applies the memory caps
    Then systemd runs user-1000.slice with MemoryMax 1500M and MemorySwapMax 512M

  Scenario: host.nproc.processes — every running process of the user has the nproc caps (Done when: /proc/<tegwick-pid>/limits)
    Then every running process of tegwick runs with nproc soft 512 and hard 1024

  Scenario: host.slice.enforced — the kernel enforces the slice's memory caps (cgroup v2)
    Then the kernel enforces memory.max 1500M and memory.swap.max 512M on user-1000.slice
