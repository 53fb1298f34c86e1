"""Errors name their cause: a Helm release Secret whose payload is corrupt names the Secret and the
layer that failed (never "internal error … a bug"); a symlink loop gets the loop's remedy, not the
permission remedy; an interrupted control and a hung exec credential plugin get their own remedies."""
from __future__ import annotations

import base64
import gzip

import pytest

from railiance_conformance.checks import bundled_plan
from railiance_conformance.finding import Status
from railiance_conformance.policy import DEFAULT_POLICY_DIR, load_catalog
from railiance_conformance.probes.cluster import ClusterSnapshot
from railiance_conformance.recorder import FindingRecorder
from railiance_conformance.remedies import remedy_for_error
from railiance_conformance.vocabulary import CHECK_KINDS
from railiance_testbed.kubeapi.helm_release import release_secret


def _secret(payload: bytes | None = None, *, raw_release: str | None = None) -> dict:
    secret = release_secret(name="cert-manager", namespace="cert-manager", revision=1, chart="cert-manager",
                            chart_version="v1.14.4", app_version="v1.14.4", config={},
                            deployed_at="2026-01-01T00:00:00Z")
    if payload is not None:
        secret["data"]["release"] = base64.b64encode(base64.b64encode(payload)).decode()
    if raw_release is not None:
        secret["data"]["release"] = raw_release
    return secret


def _finding(secret: dict):
    plan = bundled_plan()
    control_id = next(c for c in plan.specs if plan.spec(c).kind == "cluster.helm.release"
                      and plan.spec(c).params.get("release") == "cert-manager")
    spec = plan.spec(control_id)
    snap = ClusterSnapshot.from_objects([secret])
    recorder = FindingRecorder(load_catalog(DEFAULT_POLICY_DIR))
    return recorder.build(control_id, "objects", lambda: CHECK_KINDS[spec.kind].evaluate(snap, {**spec.params, "ready": False}))


@pytest.mark.parametrize("payload, problem", [
    (gzip.compress(b'{"name": "cert-manager"}')[:-8], "is not a whole gzip stream"),
    (b"\x1f\x8b\x08" + b"garbage" * 4, "is not a whole gzip stream"),
    (gzip.compress(b"{not json"), "is not a JSON release"),
    (None, "is not base64"),
])
def test_a_corrupt_helm_release_payload_names_the_secret_and_what_is_wrong(payload, problem):
    secret = _secret(payload) if payload is not None else _secret(raw_release="!!not-base64!!")
    finding = _finding(secret)
    assert finding.status is Status.ERROR
    assert "Helm release Secret cert-manager/sh.helm.release.v1.cert-manager.v1: data.release " + problem \
        in finding.reason, finding.reason
    assert "bug" not in finding.remediation and "helm -n NAMESPACE history RELEASE" in finding.remediation


def test_a_good_helm_release_still_decodes():
    assert _finding(_secret()).status is Status.PASS


@pytest.mark.parametrize("reason, fix", [
    ("cannot read /etc/sysctl.d/90-loop.conf: Too many levels of symbolic links", "points back into itself"),
    ("[Errno 40] Too many levels of symbolic links: '/etc/security/limits.d/x.conf'", "points back into itself"),
    ("interrupted by SIGTERM before this control finished", "stopped before this control finished"),
    ("interrupted by the run deadline of 3 s before this control finished", "stopped before this control finished"),
    ("no usable cluster configuration: the kubeconfig's exec credential plugin /bin/hang gave no credential "
     "within 2 s (--api-timeout): its process group was killed", "exec credential plugin"),
])
def test_each_cause_gets_its_own_remedy(reason, fix):
    assert fix in remedy_for_error(reason)
    assert "grant read access" not in remedy_for_error(reason)
