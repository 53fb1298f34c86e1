@cluster
Feature: T09 — State Hub moves to the cluster, after a human approves (RAIL-HO-WP-0004-T09)
  The workplan marks T09 todo and needs_human: decisions on hostname, registry and exposure,
  and an approval before workstation writes are frozen. Until then its control is pending:
  reported, never a pass. The cutover gate (gate RAIL-HO-WP-0004-T09) is what a human approves against.

  Background:
    Given the cluster, read through the Kubernetes API

  Scenario: cluster.state_hub.deployed — State Hub runs in the cluster as primary
    Then "cluster.state_hub.deployed" stays pending until a human approves the task
