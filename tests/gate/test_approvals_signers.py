"""gate.approval: who may sign an approval (allowed_signers, read by the real ``ssh-keygen -Y verify``).

A row signed by a key allowed_signers does not allow is caught naming the key's fingerprint; the gate
refuses to record with such a key, or with a signing key that does not exist.
"""
from __future__ import annotations

import subprocess

import pytest

from railiance_conformance.gate.approval import GENESIS, ApprovalRefused
from railiance_conformance.gate.approval_verify import verify_chain
from railiance_conformance.gate.approvals import ApprovalChain
from tests.gate.approval_history import approve, chain_of_three, forge, gate_run, insert, problems, signed
from tests.gate.conftest import ADA


def test_a_signature_by_a_key_not_in_allowed_signers_is_caught(history, keys):
    rows = chain_of_three(history, keys)
    template = forge(history, 4, gate_run(history), rows[-1].row_hash)
    insert(history, signed(template, keys["eve"]))
    found = problems(history, keys)
    fingerprint = subprocess.run(["ssh-keygen", "-l", "-f", str(keys["eve"]) + ".pub"], capture_output=True,
                                 text=True, check=True).stdout.split()[1]
    assert found == [f"row #4: signed by key {fingerprint}, which {keys['allowed']} does not allow to approve as "
                     f"{ADA!r} at {template.approved_at_utc}"]


def test_recording_with_a_key_not_in_allowed_signers_is_refused(history, keys):
    with pytest.raises(ApprovalRefused, match=f"may not approve as '{ADA}'"):
        approve(history, keys, key="eve")
    assert ApprovalChain(history).list() == []
    assert verify_chain(history, keys["allowed"], expect_head=GENESIS).ok  # "no approval was ever made": true


def test_a_missing_signing_key_is_refused_without_key_material(history, keys, tmp_path):
    with pytest.raises(ApprovalRefused, match="ssh-keygen -Y sign with .*nokey failed"):
        approve(history, {**keys, "ada": tmp_path / "nokey"})
