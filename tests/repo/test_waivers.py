"""Waivers: loading (schema, unknown control/target, dates), applying (active, expired, UTC)."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from railiance_conformance.finding import Outcome, Status
from railiance_conformance.policy import DEFAULT_POLICY_DIR, PolicyError
from railiance_conformance.waivers import Waiver, apply, apply_outcome, load_waivers

BOUNDARY = {"boundary.namespace.owned", "boundary.component.layer", "boundary.component.manager",
            "boundary.values.location"}
SEEDED = DEFAULT_POLICY_DIR / "waivers.yaml"
GOOD = """kind: Waivers
version: 1
waivers:
  - control: boundary.component.layer
    target: cnpg-system/cnpg
    justification: the operator moves to S3 later
    approved_by: worsch
    expires: 2026-12-31
    link: railiance-platform/workplans/RAIL-PL-WP-0002-cnpg-operator-to-s3.md
"""


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def waivers_from(tmp_path, text: str, known=BOUNDARY, targets=None) -> list[Waiver]:
    path = tmp_path / "waivers.yaml"
    path.write_text(text)
    return load_waivers(path, known, targets)


def test_seeded_waivers(layer_map):
    waivers = load_waivers(SEEDED, BOUNDARY, set(layer_map["components"]))
    assert [(w.control, w.target, w.expires, w.link) for w in waivers] == [
        ("boundary.component.layer", "cnpg-system/cnpg", date(2027, 3, 31),
         "railiance-platform/workplans/RAIL-PL-WP-0002-cnpg-operator-to-s3.md"),
        ("boundary.component.layer", "argocd/argocd", date(2027, 3, 31),
         "railiance-cluster/workplans/RAIL-CL-WP-0007-argocd-to-s4.md"),
        ("boundary.component.manager", "argocd/argocd", date(2027, 3, 31),
         "railiance-cluster/workplans/RAIL-CL-WP-0007-argocd-to-s4.md")]


@pytest.mark.parametrize("now", ["2026-12-31T23:59:59+00:00", "2027-01-01T00:59:59+01:00", "2026-06-01T00:00:00+00:00"])
def test_active_waiver_waives_drift(tmp_path, now):
    status, reason = apply(Status.DRIFT, "boundary.component.layer", "cnpg-system/cnpg", waivers_from(tmp_path, GOOD), at(now))
    assert (status, reason) == (Status.WAIVED, ("waived until 2026-12-31 (end of day UTC), approved by worsch; "
                                "migration: railiance-platform/workplans/RAIL-PL-WP-0002-cnpg-operator-to-s3.md"))


@pytest.mark.parametrize("now", ["2027-01-01T00:00:00+00:00", "2026-12-31T23:00:00-01:00"])
def test_expired_waiver_is_drift_again(tmp_path, now):
    status, reason = apply(Status.DRIFT, "boundary.component.layer", "cnpg-system/cnpg", waivers_from(tmp_path, GOOD), at(now))
    assert status is Status.DRIFT and reason.startswith("waiver expired on 2026-12-31 (approved by worsch; migration: ")


def test_only_drift_is_waived_and_only_its_own_target(tmp_path):
    waivers, now = waivers_from(tmp_path, GOOD), at("2026-06-01T00:00:00+00:00")
    assert apply(Status.PASS, "boundary.component.layer", "cnpg-system/cnpg", waivers, now) == (Status.PASS, "")
    assert apply(Status.ERROR, "boundary.component.layer", "cnpg-system/cnpg", waivers, now) == (Status.ERROR, "")
    assert apply(Status.DRIFT, "boundary.component.layer", "argocd/argocd", waivers, now) == (Status.DRIFT, "")
    assert apply(Status.DRIFT, "boundary.component.manager", "cnpg-system/cnpg", waivers, now) == (Status.DRIFT, "")


def test_naive_now_is_refused(tmp_path):
    with pytest.raises(ValueError, match="timezone-aware"):
        apply(Status.DRIFT, "boundary.component.layer", "cnpg-system/cnpg", waivers_from(tmp_path, GOOD),
              datetime(2026, 6, 1))


def test_outcome_keyed_by_violation(tmp_path):
    outcome = Outcome(Status.DRIFT, {"cnpg-system/cnpg": "railiance-platform (S3)", "argocd/argocd": "no repo"},
                      {"cnpg-system/cnpg": "railiance-cluster (S2)", "argocd/argocd": "railiance-cluster (S2)"})
    waivers, now = waivers_from(tmp_path, GOOD), at("2026-06-01T00:00:00+00:00")
    partly = apply_outcome(outcome, "boundary.component.layer", "coulombcore", waivers, now)
    assert partly.status is Status.DRIFT and partly.observed == outcome.observed
    assert partly.reason.startswith("argocd/argocd: not waived; cnpg-system/cnpg: waived until 2026-12-31")
    whole = apply_outcome(outcome, "boundary.component.layer", "coulombcore",
                          [*waivers, Waiver("boundary.component.layer", "argocd/argocd", "x" * 10, "worsch",
                                            date(2026, 12, 31), "stub.md")], now)
    assert whole.status is Status.WAIVED
    assert apply_outcome(outcome, "boundary.component.layer", "coulombcore", [], now) is outcome


@pytest.mark.parametrize(("change", "field", "problem"), [
    (("    approved_by: worsch\n", ""), "waivers[0]", "'approved_by' is a required property"),
    (("2026-12-31", "31.12.2026"), "waivers[0].expires", "does not match"),
    (("2026-12-31", "2026-02-30"), "waivers[0].expires", "'2026-02-30' is not a calendar date"),
    (("2026-12-31", "2026-12-31 12:00:00"), "waivers[0].expires", "does not match"),
    (("    link:", "    ticket: X\n    link:"), "waivers[0]", "Additional properties are not allowed"),
    (("justification: the operator moves to S3 later", "justification: ok"), "waivers[0].justification", "too short"),
    (("boundary.component.layer", "boundary.no.such"), "waivers[0].control", "unknown control id 'boundary.no.such'"),
    (("kind: Waivers", "kind: Waiver"), "kind", "'Waivers' was expected"),
])
def test_bad_waivers_name_file_and_field(tmp_path, change, field, problem):
    with pytest.raises(PolicyError) as raised:
        waivers_from(tmp_path, GOOD.replace(*change))
    assert (raised.value.source, raised.value.field) == (str(tmp_path / "waivers.yaml"), field)
    assert problem in raised.value.problem


def test_unknown_target_only_when_targets_are_known(tmp_path):
    assert waivers_from(tmp_path, GOOD, targets=None)
    with pytest.raises(PolicyError) as raised:
        waivers_from(tmp_path, GOOD, targets={"argocd/argocd"})
    assert raised.value.field == "waivers[0].target" and "unknown target 'cnpg-system/cnpg'" in raised.value.problem


def test_duplicate_waiver(tmp_path):
    text = GOOD + GOOD.split("waivers:\n", 1)[1]
    with pytest.raises(PolicyError, match=r"waivers\[1\]: a second waiver for boundary.component.layer"):
        waivers_from(tmp_path, text)


def test_expiry_boundary_is_exact(tmp_path):
    waivers = waivers_from(tmp_path, GOOD)
    last = datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert waivers[0].active(last) and not waivers[0].active(last + timedelta(microseconds=1))


@pytest.mark.parametrize("status", [s for s in Status if s is not Status.DRIFT])
@pytest.mark.parametrize("expires", [date(2026, 1, 1), date(2030, 1, 1)])
def test_a_waiver_changes_nothing_but_a_drift(status, expires):
    """The recorder does not ask apply_outcome about any other status (recorder.FindingRecorder.build): it
    returns every other Status as it is, active or expired waiver, keyed by violation or not."""
    waiver = Waiver("boundary.component.layer", "cnpg-system/cnpg", "why", "worsch", expires, "link")
    for observed in (None, {"cnpg-system/cnpg": "S3"}, 4):
        outcome = Outcome(status, "S2", observed, "reason")
        assert apply_outcome(outcome, "boundary.component.layer", "cnpg-system/cnpg", [waiver],
                             at("2026-06-01T00:00:00+00:00")) is outcome
