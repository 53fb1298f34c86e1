Feature: T10 — activity-core moves to the cluster, after review (RAIL-HO-WP-0004-T10)
  The workplan marks T10 todo and needs_human: activity-core's runtime, database and data
  migration need review first. Its controls are pending until then: reported, never a pass.

  @cluster
  Scenario: cluster.activity_core.deployed — activity-core runs as an S5 workload
    Given the cluster, read through the Kubernetes API
    Then "cluster.activity_core.deployed" stays pending until a human approves the task

  @hosts
  Scenario: host.activity_core.adhoc_absent — no ad-hoc activity-core is left on the host
    Given the host's facts, gathered in one SSH command
    Then "host.activity_core.adhoc_absent" stays pending on the host until a human approves the task
