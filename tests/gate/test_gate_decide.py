"""GO/NO-GO in-process on real PostgreSQL, with the shipped policies/gate.yaml for T09: every reason named.

The suite's own findings are given (prerequisites T04 and T08 passing), so these tests are fast;
tests/gate/test_gate_cli.py runs the same gate end to end on the testbed.
"""
from __future__ import annotations

import psycopg
import pytest

from railiance_conformance.finding import Finding, Outcome, Status
from railiance_conformance.gate.command import _drill, _parity, load_gate_policy
from railiance_conformance.gate.cutover import GateInputs, decide
from railiance_conformance.policy import DEFAULT_POLICY_DIR, load_catalog
from railiance_conformance.workplan import parse_workplan
from railiance_testbed import SEED_WORKPLAN
from tests.gate.test_drill import mark

WORKPLAN = parse_workplan(SEED_WORKPLAN)
CATALOG = load_catalog(DEFAULT_POLICY_DIR)
T09 = load_gate_policy(DEFAULT_POLICY_DIR)["tasks"]["T09"]


def passing(task: str) -> Finding:
    return Finding(control_id="cluster.gitea.available", title="", task=f"RAIL-HO-WP-0004-{task}", layer="S5",
                   severity="high", target="testbed", status=Status.PASS, expected=1, observed=1, remediation="")


@pytest.fixture
def databases(postgres, seeded, monkeypatch):
    """Source and restored copy of the seed, a fresh drill marker in the copy, DSNs in the policy's env vars."""
    source, restored = (postgres.create_database(template=seeded) for _ in range(2))
    mark(postgres, restored, 1)
    monkeypatch.setenv(T09["parity"]["source_dsn_env"], postgres.dsn(source))
    monkeypatch.setenv(T09["parity"]["restored_dsn_env"], postgres.dsn(restored, url=True))
    return postgres, source, restored


def gate():
    inputs = GateInputs(WORKPLAN.tasks["T09"], WORKPLAN, [passing("T04"), passing("T08")], "S5",
                        backup=lambda: Outcome(Status.PASS), parity=_parity(T09), drill=_drill(T09))
    return decide(inputs, CATALOG)


def run_sql(postgres, dbname: str, statement: str) -> None:
    with psycopg.connect(postgres.dsn(dbname), autocommit=True) as conn:
        conn.execute(statement)


def test_go_carries_the_per_table_counts_of_both_sides(databases):
    result = gate()
    assert (result.go, result.reasons) == (True, [])
    parity = {f.control_id: f for f in result.findings}["gate.restore.parity"]
    evidence = dict(parity.evidence)
    assert evidence["schemas"] == ["audit", "public"]  # every non-system schema; the marker's is excluded
    assert evidence["tables"]["public.customers"] == {"source": 120, "restored": 120}
    assert evidence["tables"]["audit.Events"] == {"source": 37, "restored": 37}
    assert "railiance_drill.restore_drill" not in evidence["tables"]
    assert evidence["sequences_checked"] == 4
    assert parity.observed["public.orders"] == "1000 = 1000"


def test_a_reset_sequence_is_no_go_with_the_reason(databases):
    postgres, _, restored = databases
    run_sql(postgres, restored, "ALTER TABLE events ALTER COLUMN id RESTART WITH 1")
    result = gate()
    assert not result.go
    assert result.reasons == [
        "gate.restore.parity: drift: sequence public.events_id_seq on the restored copy would next give 1, but "
        "public.events.id already holds 50 (max): the next insert fails on a duplicate key "
        "(SELECT setval('public.events_id_seq', (SELECT max(id) FROM public.events)))"]


def test_a_table_in_a_second_schema_is_no_go_with_the_reason(databases):
    postgres, source, _ = databases
    run_sql(postgres, source, "CREATE SCHEMA billing; CREATE TABLE billing.invoices (n int)")
    result = gate()
    assert result.reasons == ["gate.restore.parity: drift: table billing.invoices missing in the restored copy"]


def test_a_drill_older_than_the_window_is_no_go(databases):
    postgres, _, restored = databases
    run_sql(postgres, restored, "UPDATE railiance_drill.restore_drill SET restored_at = now() - interval '49 hours'")
    result = gate()
    assert not result.go
    assert result.reasons == ["gate.restore.fresh: drift: the restore drill is 49.0 h old, older than the 48 h "
                              "window: repeat it before the cutover"]


def test_a_drill_from_the_future_is_no_go_naming_the_clock_skew(databases):
    postgres, _, restored = databases
    run_sql(postgres, restored, "UPDATE railiance_drill.restore_drill SET restored_at = now() + interval '1 year'")
    result = gate()
    assert not result.go and len(result.reasons) == 1
    assert result.reasons[0].startswith("gate.restore.fresh: drift: the drill marker is dated ")
    assert "clock skew" in result.reasons[0]


def test_a_sequence_behind_its_source_is_no_go_with_both_values_in_the_evidence(databases):
    postgres, source, restored = databases
    run_sql(postgres, source, "SELECT setval('public.events_id_seq', 300, false)")
    run_sql(postgres, restored, "SELECT setval('public.events_id_seq', 251, false)")
    result = gate()
    assert result.reasons == [
        "gate.restore.parity: drift: sequence public.events_id_seq on the restored copy would next give 251, behind "
        "the source's 300: after the cutover it hands out 251..299 a second time, values the source already gave "
        "out (SELECT setval('public.events_id_seq', 300, false))"]
    evidence = dict({f.control_id: f for f in result.findings}["gate.restore.parity"].evidence)
    assert evidence["sequences"]["public.events_id_seq"] == {"source": 300, "restored": 251}
