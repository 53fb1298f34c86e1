"""Vault-derived desired values are *** in a Finding's expected/observed, reason and evidence,
with the real host check kinds (controls/host.py) on real fact text."""
from __future__ import annotations

from railiance_conformance.finding import Outcome, Status
from railiance_conformance.probes.host_facts import HostFacts
from railiance_conformance.probes.host_script import Section
from railiance_conformance.secret_mask import MASK, evaluate_with_secrets, mask_outcome, mask_text
from railiance_conformance.vocabulary import check_kinds

LIVE = check_kinds()["host.sysctl.live"].evaluate


def desired(**overrides):
    return {"key": "vm.swappiness", "value": 10, **overrides}


def swappiness_facts(value: int) -> HostFacts:
    return HostFacts("h", {"sysctl vm.swappiness": Section(0, f"{value}\n")})


def test_an_equal_observed_value_is_masked_with_the_expected_one():
    outcome = evaluate_with_secrets(LIVE, swappiness_facts(10), desired(value=10), {"value"})
    assert (outcome.status, outcome.expected, outcome.observed) == (Status.PASS, MASK, MASK)


def test_a_drifted_observed_value_is_masked_too_and_the_status_kept():
    outcome = evaluate_with_secrets(LIVE, swappiness_facts(60), desired(value=10), {"value"})
    assert (outcome.status, outcome.expected, outcome.observed) == (Status.DRIFT, MASK, MASK)


def test_a_control_that_does_not_read_the_secret_is_untouched():
    outcome = evaluate_with_secrets(LIVE, swappiness_facts(10), desired(value=10, other=987), {"other"})
    assert (outcome.expected, outcome.observed) == (10, 10)


def test_only_the_secret_part_of_a_structured_value_is_masked():
    outcome = mask_outcome(Outcome(Status.PASS, {"soft": 987, "hard": 1024}, {"soft": 987, "hard": 1024},
                                   "soft 987 wins over 9870",
                                   (("lines", ["tegwick soft nproc 987", "tegwick hard nproc 1024"]),)),
                           {"nproc_soft": 987})
    assert outcome.expected == {"soft": MASK, "hard": 1024} and outcome.observed == {"soft": MASK, "hard": 1024}
    assert outcome.reason == "soft *** wins over 9870"
    assert dict(outcome.evidence)["lines"] == ["tegwick soft nproc ***", "tegwick hard nproc 1024"]


def test_a_transformed_secret_masks_the_whole_comparison():
    # swap_size_gb becomes bytes in expected: it cannot be found piecewise, so all of it is masked
    outcome = mask_outcome(Outcome(Status.DRIFT, {"size_bytes": 3 * 1024 ** 3, "mode": "0600"},
                                   {"size_bytes": 2 * 1024 ** 3, "mode": "0600"}), {"swap_size_gb": 3})
    assert (outcome.expected, outcome.observed) == (MASK, MASK)


def test_mask_text_only_replaces_whole_tokens():
    assert mask_text("987 in 19870, a987b, 0.987 and (987)", [987]) == "*** in 19870, a987b, 0.*** and (***)"
