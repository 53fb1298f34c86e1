@repos
Feature: Goss tests for the hardening values (RAIL-HO-WP-0004 T01, T02)
  The workplan's Done-when lines promise "Goss verify passes" (T01) and "Goss test for nproc
  limit added" (T02). railiance-infra's goss files (goss.yaml, *.goss.yaml, goss/*.yaml; make
  verify runs them on CoulombCore) must test each value the tasks state, so a later drift fails
  make verify too. Read statically from the checkout (--repos DIR); goss itself is not run here:
  the S1 features verify the same values on the host.

  Background:
    Given the railiance-* repo checkouts

  Scenario: repo.goss.swap — the goss files test the swap file's size and the swappiness
    Then the goss files of railiance-infra test /swapfile is 4 GiB; vm.swappiness is 10

  Scenario: repo.goss.nproc — the goss files test the nproc limits (Done when: Goss test for nproc limit added)
    Then the goss files of railiance-infra test tegwick's nproc is soft 512 and hard 1024
