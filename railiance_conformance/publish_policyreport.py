"""``--publish-policyreport``: apply the run's ClusterPolicyReports to the cluster (server-side apply,
field manager ``railiance-conformance``), then delete the reports labelled as the suite's that this run
did not write: the only writes the suite sends. The severities are the installed CRD's (read from it;
else the common high/medium/low). RBAC: deploy/kubernetes/publish-policyreport/; what an operator
sees: docs/results.md. Nothing here raises: ``apply_policyreport`` returns ``""`` or why it failed,
with what to do about it.
Example: ``apply_policyreport(run, ClusterAccess(kubeconfig="~/.kube/config"))`` -> ``""``.
"""
from __future__ import annotations

import json
import sys
from typing import Any

from railiance_conformance.reporting import Run
from railiance_conformance.reporting.policyreport_report import (
    API_VERSION,
    COMMON_SEVERITIES,
    MANAGED_BY,
    SOURCE,
    documents,
)

FIELD_MANAGER = "railiance-conformance"
GROUP, VERSION = API_VERSION.split("/")
PLURAL = "clusterpolicyreports"
CRD_NAME = f"{PLURAL}.{GROUP}"
PUBLISH_FAILED = 6  # the suite's exit status: the run's own output (here: the published report) failed
RBAC_HINT = ("grant create, patch, list and delete on clusterpolicyreports.wgpolicyk8s.io "
             "(deploy/kubernetes/publish-policyreport/rbac.yaml)")


def _reason(exc: Any) -> str:
    """The apiserver's own message from an ApiException body, else the exception's first line."""
    body = getattr(exc, "body", None)
    if isinstance(body, (str, bytes, bytearray)):
        try:
            return json.loads(body)["message"]
        except (TypeError, ValueError, KeyError):
            pass
    return str(exc).splitlines()[0][:300]


def crd_severities(api_client: Any, timeout_s: float) -> tuple[str, ...]:
    """The severity enum of the installed ClusterPolicyReport CRD's v1alpha2 schema; the common enum
    when the CRD cannot be read (no permission, an older API) or declares none."""
    from kubernetes import client

    try:
        crd = client.ApiextensionsV1Api(api_client).read_custom_resource_definition(
            CRD_NAME, _request_timeout=timeout_s).to_dict()
        for version in crd["spec"]["versions"]:
            if version["name"] == VERSION:
                schema = version["schema"]["open_apiv3_schema"]
                enum = schema["properties"]["results"]["items"]["properties"]["severity"]["enum"]
                if enum:
                    return tuple(enum)
    except Exception:  # noqa: BLE001 - any failure: the enum every v1alpha2 CRD accepts
        pass
    return COMMON_SEVERITIES


def apply_policyreport(run: Run, access: Any) -> str:
    """Apply ``run``'s ClusterPolicyReports through ``access`` (``probes.cluster.ClusterAccess``, the suite's
    own cluster settings) and delete the stale ones it owns; ``""`` on success, else the failure and its remedy."""
    try:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        api_client, _ = access.client()
    except Exception as exc:  # noqa: BLE001 - no kubeconfig, no service account: say so
        return f"no usable cluster configuration: {str(exc).splitlines()[0][:300]} (--kubeconfig / --context)"
    written: list[str] = []
    try:
        with api_client:
            api = client.CustomObjectsApi(api_client)
            for document in documents(run, crd_severities(api_client, access.timeout_s)):
                name = document["metadata"]["name"]
                api.patch_cluster_custom_object(
                    GROUP, VERSION, PLURAL, name, document, field_manager=FIELD_MANAGER, force=True,
                    _content_type="application/apply-patch+yaml", _request_timeout=access.timeout_s)
                written.append(name)
            owned = api.list_cluster_custom_object(GROUP, VERSION, PLURAL, label_selector=f"{MANAGED_BY}={SOURCE}",
                                                   _request_timeout=access.timeout_s)
            if not isinstance(owned, dict):  # the client decodes the list's JSON object into a dict
                raise TypeError(f"the LIST of {PLURAL} answered a {type(owned).__name__}, not an object")
            for item in owned.get("items", []):
                name = item["metadata"]["name"]
                if name not in written:
                    api.delete_cluster_custom_object(GROUP, VERSION, PLURAL, name, _request_timeout=access.timeout_s)
    except ApiException as exc:
        why = f"HTTP {exc.status}: {_reason(exc)}" + (f" (after {len(written)} reports applied)" if written else "")
        if exc.status == 403:
            return f"{why}; {RBAC_HINT}"
        if exc.status == 404 and not written:
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
        print(f"railiance-conformance: ClusterPolicyReports applied, one per target (server-side apply, field "
              f"manager {FIELD_MANAGER}); stale ones labelled {MANAGED_BY}={SOURCE} deleted", file=sys.stderr)
