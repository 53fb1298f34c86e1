"""check_sops_file: sops' own rules decide which leaves must be ENC[...]; values never reported."""
from __future__ import annotations

import pytest

from railiance_conformance.resources.sops_files import check_sops_file
from railiance_testbed.repos import enc, sops_file

META = f"sops:\n  mac: {enc('m', 'mac')}\n  lastmodified: '2026-04-09T18:02:11Z'\n  version: 3.9.4\n"


def write(tmp_path, body: str):
    path = tmp_path / "x.sops.yaml"
    path.write_text(body)
    return check_sops_file(path)


def test_fixture_generator_output_is_clean(tmp_path):
    text = sops_file({"a": {"b": [1, "two", True]}, "c": None if False else 3.5, "d": ""}, "gen")
    assert write(tmp_path, text).problems == () and write(tmp_path, text).plaintext == ()


@pytest.mark.parametrize(("rule", "body", "plaintext"), [
    ("", "a: plain\nkeep_unencrypted: x\nnested_unencrypted: {deep: x}\n", ("a",)),  # default suffix applies
    ("  unencrypted_suffix: _plain\n", "a_plain: x\nkeep_unencrypted: x\n", ("keep_unencrypted",)),
    ("  encrypted_suffix: _secret\n", "name: x\npw_secret: x\nblock_secret: {inner: x}\n", ("pw_secret", "block_secret.inner")),
    ("  encrypted_regex: ^(data|stringData)$\n", "kind: Secret\nmetadata: {name: x}\nstringData: {k: v}\n",
     ("stringData.k",)),
    ("  unencrypted_regex: ^(kind|metadata)$\n", "kind: Secret\nmetadata: {name: x}\ndata: {k: v}\n", ("data.k",)),
    ("", "list: [a, {k: b}]\n", ("list[0]", "list[1].k")),  # list indexes are not keys in sops
])
def test_sops_rules(tmp_path, rule, body, plaintext):
    assert write(tmp_path, body + META + rule).plaintext == plaintext


@pytest.mark.parametrize(("body", "problem"), [
    ("a: x\n", "no top-level sops metadata: not SOPS-encrypted"),
    ("a: x\nsops: {version: 3.9.4}\n", "sops.mac missing or not ENC[...]"),
    ("a: [unclosed\n", "not valid YAML (line 2)"),
])
def test_file_problems(tmp_path, body, problem):
    assert problem in write(tmp_path, body).problems


def test_two_rules_are_refused_like_sops(tmp_path):
    result = write(tmp_path, META + "  encrypted_regex: ^data$\n  unencrypted_suffix: _u\n")
    assert result.problems == ("sops metadata sets more than one of encrypted_regex, unencrypted_suffix (sops refuses the file)",)


def test_comment_rules_are_could_not_verify(tmp_path):
    assert write(tmp_path, "a: x\n" + META + "  unencrypted_comment_regex: sops:plain\n").unverifiable


def test_no_value_in_any_report(tmp_path):
    secret = "SENTINEL-inline-9c1e"
    for body in (f"password: {secret}\n" + META, f"password: [{secret}\n", f"{secret}: {{unclosed\n"):
        assert secret not in repr(write(tmp_path, body))
