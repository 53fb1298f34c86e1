@S1 @T02 @hosts
Feature: T02 — nproc limits and the user slice protect CoulombCore (RAIL-HO-WP-0004-T02)
  INC-002 was a runaway agent of the operator user. pam_limits caps its processes at
  nproc_soft/nproc_hard and the user's systemd slice caps its memory at user_memory_max
  and its swap at user_memory_swap_max. The slice is named after the uid, so the uid is
  checked too. Configured values are resolved the way pam_limits and systemd merge their
  files; effective values are read from a real login session and from systemd itself.
  Fix drift with: make converge (railiance-infra).

  Background:
    Given the host's facts, gathered in one SSH command

  @high
  Scenario: host.user.uid — the operator user has the uid its slice is named after
    Then the operator user has the policy uid

  @high
  Scenario: host.nproc.configured — limits.conf and limits.d give the policy nproc limits
    Then pam_limits resolves the user's nproc limits to nproc_soft and nproc_hard

  @high
  Scenario: host.nproc.effective — a real login session has the nproc limits
    Then a login session of the user has those nproc limits

  @high
  Scenario: host.slice.configured — the slice drop-ins set the memory caps
    Then the user slice drop-ins set MemoryMax to user_memory_max and MemorySwapMax to user_memory_swap_max

  @high
  Scenario: host.slice.effective — systemd applies the memory caps
    Then systemd reports those MemoryMax and MemorySwapMax values for the user slice
