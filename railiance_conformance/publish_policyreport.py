"""``--publish-policyreport``: apply the run's ClusterPolicyReport to the cluster, so Kyverno's Policy
Reporter (its UI and its alerting) shows Railiance drift beside its own.

This is the only write the suite ever sends, and only when asked: one server-side apply
(``PATCH /apis/wgpolicyk8s.io/v1alpha2/clusterpolicyreports/railiance-conformance`` with
``Content-Type: application/apply-patch+yaml``, ``fieldManager=railiance-conformance``, ``force=true``:
the suite owns that one object and takes back any field another manager set on it). The document
is the one ``reporting.policyreport_report`` writes to ``policyreport.yaml``. RBAC: the
``railiance-conformance-policyreport-publisher`` ClusterRole (deploy/kubernetes/publish-policyreport/)
grants ``patch`` and ``create`` (an apply that creates is authorised as create) on that one name, nothing else.

Nothing here raises: ``apply_policyreport`` returns ``""`` on success or why it failed (HTTP status
and the apiserver's message, a missing CRD, an unreachable API), with what to do about it.
Example: ``apply_policyreport(run, ClusterAccess(kubeconfig="~/.kube/config"))`` -> ``""``.
"""
from __future__ import annotations

import json
import sys
from typing import Any

from railiance_conformance.reporting import Run
from railiance_conformance.reporting.policyreport_report import API_VERSION, NAME, to_document

FIELD_MANAGER = "railiance-conformance"
GROUP, VERSION = API_VERSION.split("/")
PLURAL = "clusterpolicyreports"
PUBLISH_FAILED = 6  # the suite's exit status: the run's own output (here: the published report) failed
RBAC_HINT = ("grant create and patch on clusterpolicyreports.wgpolicyk8s.io, resourceNames [railiance-conformance] "
             "(deploy/kubernetes/publish-policyreport/rbac.yaml)")


def _reason(exc: Any) -> str:
    """The apiserver's own message from an ApiException body, else the exception's first line."""
    body = getattr(exc, "body", None)
    try:
        return json.loads(body)["message"]
    except (TypeError, ValueError, KeyError):
        return str(exc).splitlines()[0][:300]


def apply_policyreport(run: Run, access: Any) -> str:
    """Server-side apply of ``run``'s ClusterPolicyReport through ``access`` (``probes.cluster.ClusterAccess``,
    the suite's own cluster settings); ``""`` on success, else the failure and its remedy."""
    try:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        api_client, _ = access.client()
    except Exception as exc:  # noqa: BLE001 - no kubeconfig, no service account: say so
        return f"no usable cluster configuration: {str(exc).splitlines()[0][:300]} (--kubeconfig / --context)"
    try:
        with api_client:
            client.CustomObjectsApi(api_client).patch_cluster_custom_object(
                GROUP, VERSION, PLURAL, NAME, to_document(run), field_manager=FIELD_MANAGER, force=True,
                _content_type="application/apply-patch+yaml", _request_timeout=access.timeout_s)
    except ApiException as exc:
        why = f"HTTP {exc.status}: {_reason(exc)}"
        if exc.status == 403:
            return f"{why}; {RBAC_HINT}"
        if exc.status == 404:
            return f"{why}; the wgpolicyk8s.io CRDs are not installed (Kyverno or Policy Reporter installs them)"
        return why
    except Exception as exc:  # noqa: BLE001 - unreachable, timeout, TLS: the reason, never a traceback
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
    return ""


def publish_at_session_finish(session: Any, run: Run, access: Any) -> None:
    """The plugin's one call at session finish: with ``--publish-policyreport`` apply ``run``'s report
    (after the local reports are written: they never depend on it); a failure is printed and makes
    the exit status ``PUBLISH_FAILED`` (the run's own output failed). Without the option: nothing, no request."""
    if not session.config.getoption("publish_policyreport", False) or not run.findings:
        return
    problem = apply_policyreport(run, access)
    if problem:
        print(f"railiance-conformance: could not publish the ClusterPolicyReport: {problem}", file=sys.stderr)
        session.exitstatus = PUBLISH_FAILED
    else:
        print(f"railiance-conformance: ClusterPolicyReport {NAME} applied (server-side apply, field manager "
              f"{FIELD_MANAGER})", file=sys.stderr)
