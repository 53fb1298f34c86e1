"""reporting.diff: a drift shows exactly the fields that differ, in every format (nested values, lists, secrets)."""
from __future__ import annotations

import json

import pytest

from railiance_conformance.finding import Status
from railiance_conformance.recorder import sanitize
from railiance_conformance.reporting import load_reporters
from railiance_conformance.reporting.diff import ABSENT, field_diff
from railiance_conformance.reporting.terminal import render_summary
from tests.unit.reporting_samples import finding, sample_run

GITEA_EXPECTED = {"database": {"DB_TYPE": "postgres", "HOST": "gitea-db-rw.databases.svc.cluster.local:5432",
                               "NAME": "gitea", "USER": "gitea"}, "cache": {"ADAPTER": "redis"}}
GITEA_OBSERVED = {"database": {"DB_TYPE": "postgres", "HOST": "gitea-postgresql-ha-pgpool.gitea.svc.cluster.local:5432",
                               "NAME": "gitea", "USER": "gitea"}, "cache": {"ADAPTER": "redis"}}


def test_nested_mappings_show_only_the_differing_field() -> None:
    diff = field_diff(GITEA_EXPECTED, GITEA_OBSERVED)
    assert diff.lines() == ["database.HOST: gitea-db-rw.databases.svc.cluster.local:5432 → "
                            "gitea-postgresql-ha-pgpool.gitea.svc.cluster.local:5432"]
    assert diff.same == 4 and diff.folded() == "4 more fields as expected"


def test_keys_on_one_side_only_are_absent_on_the_other() -> None:
    diff = field_diff({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "d": 3}})
    assert [(c.where, c.expected, c.observed) for c in diff.changes] == [("a.c", 2, ABSENT), ("a.d", ABSENT, 3)]
    assert diff.lines() == ["a.c: 2 → (absent)", "a.d: (absent) → 3"]


def test_lists_of_values_compare_as_collections() -> None:
    assert field_diff({"ns": ["a", "b", "c"]}, {"ns": ["a", "c", "x"]}).lines() == \
        ["ns[]: b → (absent)", "ns[]: (absent) → x"]
    assert field_diff([1, 2], [2, 1]).lines() == ["[1, 2] → [2, 1]"]          # only the order differs
    assert field_diff({"ns": ["a", "b"]}, {"ns": ["a", "b"]}).changes == ()


def test_lists_of_named_items_match_by_name_and_others_by_index() -> None:
    expected = [{"name": "gitea", "image": "gitea:1.22"}, {"name": "init", "image": "busybox"}]
    observed = [{"name": "init", "image": "busybox"}, {"name": "gitea", "image": "gitea:1.21"}]
    assert field_diff(expected, observed).lines() == ["[name=gitea].image: gitea:1.22 → gitea:1.21"]
    assert field_diff([{"a": 1}, {"a": 2}], [{"a": 1}]).lines() == ['[1]: {"a": 2} → (absent)']


def test_an_allowance_the_value_satisfies_is_no_difference() -> None:
    assert field_diff({"instances": {"between": [1, 3]}, "major": 16}, {"instances": 3, "major": 15}).lines() == \
        ["major: 16 → 15"]
    assert field_diff({"instances": {"between": [1, 3]}}, {"instances": 5}).lines() == \
        ["instances: between 1 and 3 → 5"]
    assert field_diff({"v": {"one_of": ["a", "b"]}}, {"v": "c"}).lines() == ["v: one of a, b → c"]


def test_a_whole_value_of_another_shape_is_one_change() -> None:
    assert field_diff(10, 60).lines() == ["10 → 60"]
    assert field_diff({"spec": "/swapfile"}, "no uncommented entry").lines() == \
        ['{"spec": "/swapfile"} → no uncommented entry']


SECRET = "S3cr3t-Value-9"


def test_a_redacted_value_shows_as_mask_never_its_content() -> None:
    # values reach a Finding only through recorder.sanitize: the password is *** before any report
    expected = sanitize({"url": "redis://valkey.platform:6379/0", "password": "***"})
    observed = sanitize({"url": f"redis://:{SECRET}@valkey-old:6379/0", "password": SECRET})
    diff = field_diff(expected, observed)
    assert diff.lines() == ["url: redis://valkey.platform:6379/0 → redis://:***@valkey-old:6379/0"]
    assert SECRET not in json.dumps(observed)


def test_masked_fields_are_shown_only_when_nothing_else_explains_the_drift() -> None:
    both = sanitize({"password": "a", "user": "gitea"}), sanitize({"password": "b", "user": "gitea"})
    diff = field_diff(*both)
    assert diff.lines() == ["password: *** → *** (secret: not shown)"] and diff.changes[0].secret
    assert field_diff({"password": "***", "user": "a"}, {"password": "***", "user": "b"}).lines() == ["user: a → b"]


@pytest.mark.parametrize("name", ["markdown", "html", "junit"])
def test_every_format_shows_the_differing_field_and_not_the_folded_ones_or_the_secret(name) -> None:
    gitea = finding("cluster.gitea.database", "railiance-prod", Status.DRIFT,
                    sanitize({**GITEA_EXPECTED, "password": "***"}),
                    sanitize({**GITEA_OBSERVED, "password": SECRET}), layer="S5", task="T04")
    out = load_reporters()[name].render(sample_run(findings=(gitea,)))
    assert "database.HOST: gitea-db-rw.databases.svc.cluster.local:5432" in out
    assert "gitea-postgresql-ha-pgpool.gitea.svc.cluster.local:5432" in out
    assert "5 more fields as expected" in out  # DB_TYPE, NAME, USER, ADAPTER and the masked password
    assert SECRET not in out
    if name == "junit":
        message = out[out.index('message="'):].split('"', 2)[1]
        assert "DB_TYPE" not in message and message.startswith("drift: database.HOST: ")
    terminal = render_summary(sample_run(findings=(gitea,)), width=200)
    assert "database.HOST: gitea-db-rw.databases.svc.cluster.local:5432 → gitea-postgresql-ha-pgpool" in terminal
    assert "DB_TYPE" not in terminal and SECRET not in terminal
