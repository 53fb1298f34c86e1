"""``wgpolicyk8s.io/v1alpha2`` ClusterPolicyReports: ``policyreport.yaml``, for ``kubectl apply -f``.

One result per control and target: policy = control id, rule = task, category = layer; drift -> fail,
error -> error, waived and pending -> skip; properties hold strings only (the suite's severity in
``properties.severity``). One report per target (``scope``), split into parts under
``MAX_OBJECT_BYTES`` of JSON (etcd's request limit is 1.5 MiB), named ``railiance-conformance-<target>``
(``-part<N>``) and labelled as the suite's. ``severity_for`` maps a severity the CRD does not allow to
the nearest it does (Kyverno's CRD: critical … info; wg-policy-prototypes': high, medium, low).
Example: ``yaml.safe_load_all(render(run))`` -> one ClusterPolicyReport per target.
"""
from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timezone
from typing import Any, Callable

from railiance_conformance.finding import Finding, Status
from railiance_conformance.levels import SEVERITIES  # the suite's, loudest first
from railiance_conformance.reporting import Reporter, Run, register
from railiance_conformance.reporting.encode import yaml_json_text
from railiance_conformance.reporting.groups import clip

API_VERSION = "wgpolicyk8s.io/v1alpha2"
NAME = "railiance-conformance"
SOURCE = "railiance-conformance"
RESULT = {Status.PASS: "pass", Status.DRIFT: "fail", Status.ERROR: "error",
          Status.WAIVED: "skip", Status.PENDING: "skip"}
COMMON_SEVERITIES = ("high", "medium", "low")                 # what every v1alpha2 CRD allows
MANAGED_BY = "app.kubernetes.io/managed-by"
MAX_OBJECT_BYTES = 900_000   # JSON bytes per object: under 1 MiB, well under etcd's 1.5 MiB request limit
MAX_PROPERTY = 8192          # characters per property or message; cut with a marker naming findings.json
# the kind a report's scope (and each result's resource) names, per target kind: a control id's first part
SCOPE_KINDS = {"host": "Host", "cluster": "Cluster"}


def scope_kind(control_id: str) -> str:
    """The PolicyReport scope's kind for a control's target: ``scope_kind("host.swap.file")`` -> ``"Host"``;
    ``"Target"`` for the others (repos, the gate)."""
    return SCOPE_KINDS.get(control_id.split(".", 1)[0], "Target")


# json.dumps(value, sort_keys=True, default=str) builds this same encoder on every call; one is kept instead
_TEXT_ENCODER = json.JSONEncoder(sort_keys=True, default=str)
# what json writes for these exact types, without building its C encoder for a lone scalar
_SCALAR_TEXT = {bool: lambda v: "true" if v else "false", int: int.__repr__, type(None): lambda v: "null"}


def text(value: Any) -> str:
    """A value as a property string: ``text({"a": 1})`` -> ``'{"a": 1}'``; strings unchanged
    (``json.dumps(value, sort_keys=True, default=str)`` for every other value)."""
    if isinstance(value, str):
        return value
    scalar = _SCALAR_TEXT.get(type(value))
    return scalar(value) if scalar is not None else _TEXT_ENCODER.encode(value)


def timestamp(value: str) -> dict[str, int] | None:
    """``timestamp("1970-01-01T00:00:01.5Z")`` -> ``{"seconds": 1, "nanos": 500000000}``; None if unparsable."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return {"seconds": delta.days * 86400 + delta.seconds, "nanos": delta.microseconds * 1000}


def message(finding: Finding) -> str:
    """``"<title>: drift: expected 4; observed 2; fix: ..."`` and the like per status."""
    return _message(finding, lambda: text(finding.expected), lambda: text(finding.observed))


def _message(finding: Finding, expected: Callable[[], str], observed: Callable[[], str]) -> str:
    """``message`` with the expected and observed values' texts from ``expected()``/``observed()``."""
    status = finding.status
    if status is Status.PASS:
        detail = f"holds: observed {observed()}"
    elif status is Status.DRIFT:
        detail = f"drift: expected {expected()}; observed {observed()}" \
                 + (f" ({finding.reason})" if finding.reason else "") + f"; fix: {finding.remediation}"
    elif status is Status.ERROR:
        detail = f"could not verify: {finding.reason}; expected {expected()}"
    elif status is Status.WAIVED:
        detail = f"waived: {finding.reason}"
    elif status is Status.PENDING:
        detail = f"pending: {finding.reason}"
    else:
        raise KeyError(status)
    return f"{finding.title}: {detail}" if finding.title else detail


def result(finding: Finding, run_id: str, severities: tuple[str, ...] = COMMON_SEVERITIES) -> dict[str, Any]:
    properties = {"target": finding.target, "status": finding.status.value, "run_id": run_id,
                  "severity": finding.severity}
    texts: dict[str, str] = {}  # the expected and observed values' texts: the properties and the message share them
    for name, value in (("expected", finding.expected), ("observed", finding.observed),
                        ("remediation", finding.remediation or None), ("reason", finding.reason or None),
                        ("evidence", dict(finding.evidence) or None)):
        if value is not None:
            texts[name] = text(value)
            properties[name] = clip(texts[name], MAX_PROPERTY)
    item: dict[str, Any] = {
        "policy": finding.control_id, "rule": finding.task, "category": finding.layer,
        "severity": severity_for(finding.severity, severities),
        "result": RESULT[finding.status], "scored": finding.status not in (Status.WAIVED, Status.PENDING),
        "source": SOURCE,
        "message": clip(_message(finding, lambda: texts.get("expected") or text(finding.expected),
                                 lambda: texts.get("observed") or text(finding.observed)), MAX_PROPERTY),
        "resources": [{"kind": scope_kind(finding.control_id), "name": finding.target}],
        "properties": properties,
    }
    if (stamp := timestamp(finding.started_at)) is not None:
        item["timestamp"] = stamp
    return item


def severity_for(severity: str, allowed: tuple[str, ...] = COMMON_SEVERITIES) -> str:
    """The suite's severity as one ``allowed`` by the CRD: itself if allowed, else the nearest:
    ``severity_for("critical")`` -> ``"high"``, ``severity_for("info")`` -> ``"low"``."""
    wanted = severity.lower() if severity.lower() in SEVERITIES else "info"
    if wanted in allowed:
        return wanted
    rank = SEVERITIES.index(wanted)
    nearest = sorted((s for s in allowed if s in SEVERITIES), key=lambda s: (abs(SEVERITIES.index(s) - rank),
                                                                              SEVERITIES.index(s)))
    return nearest[0] if nearest else allowed[0]


def object_name(target: str, part: int = 1) -> str:
    """A DNS-1123 subdomain name for ``target``'s report: ``object_name("ns-drifted1")`` ->
    ``"railiance-conformance-ns-drifted1"``; a target changed to fit gets a hash of its own name."""
    slug = re.sub(r"[^a-z0-9.-]+", "-", target.lower()).strip("-.") or "target"
    if slug != target or len(slug) > 180:
        slug = f"{slug[:180].rstrip('-.')}-{hashlib.sha256(target.encode()).hexdigest()[:8]}"
    return f"{NAME}-{slug}" + (f"-part{part}" if part > 1 else "")


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), default=str).encode("utf-8"))


def _size_bound(value: Any) -> int:
    """At least ``_size(value)``, cheaper: orjson's compact UTF-8 (default=str for what it would write
    itself, as json.dumps does) times 3. Per character json.dumps(ensure_ascii) writes an ASCII one as orjson
    does, a non-ASCII one as \\uXXXX (6 bytes for 2-3 UTF-8 bytes) or a surrogate pair (12 for 4); a float's
    repr (``1e-05``, ``Infinity``) is under 3 times orjson's (``1e-5``, ``null``). What orjson cannot write
    (an int past 64 bits, a non-string key) is sized exactly."""
    import orjson

    try:
        return 3 * len(orjson.dumps(value, default=str, option=orjson.OPT_PASSTHROUGH_DATETIME
                                    | orjson.OPT_PASSTHROUGH_DATACLASS))
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return _size(value)


def _summary(results: list[dict]) -> dict[str, int]:
    return {key: sum(1 for r in results if r["result"] == key) for key in ("pass", "fail", "warn", "error", "skip")}


def _annotations(run: Run) -> dict[str, str]:
    changes = {f"railiance.io/since-previous-{name.replace('_', '-')}": str(n)
               for name, n in (run.changes() or {}).items()}
    if run.gate is not None:
        changes |= {"railiance.io/gate-task": run.gate.task, "railiance.io/gate-verdict": run.gate.verdict}
    # annotation keys: a task id is a valid name part ("railiance.io/done-when-RAIL-HO-WP-0004-T01")
    changes |= {f"railiance.io/done-when-{row.task}": row.summary() for row in run.coverage or ()}
    return {"railiance.io/run-id": run.run_id, "railiance.io/verdict": run.verdict(),
            "railiance.io/started-at": run.started_at, "railiance.io/finished-at": run.finished_at,
            "railiance.io/partial": str(run.partial).lower(), **changes}


def documents(run: Run, severities: tuple[str, ...] = COMMON_SEVERITIES,
              max_bytes: int = MAX_OBJECT_BYTES) -> list[dict[str, Any]]:
    """The run's ClusterPolicyReports: one per target (in natural order), split into parts of at most
    ``max_bytes`` of JSON each; severities from ``severities`` (the CRD's enum)."""
    from railiance_conformance.reporting.groups import natural_key

    by_target: dict[str, list[Finding]] = {}
    for finding in run.findings:
        by_target.setdefault(finding.target, []).append(finding)
    annotations = _annotations(run)
    docs = []
    for target in sorted(by_target, key=natural_key):
        kind = scope_kind(by_target[target][0].control_id)
        results = [result(f, run.run_id, severities) for f in by_target[target]]
        parts: list[list[dict]] = [[]]
        used = _size(annotations) + 2048  # the object around the results
        # the JSON of the list is each result's and a comma between two: sum(_size(item) + 1) == _size(results) - 1;
        # when all of them fit, no result starts a new part, and none needs its own size
        if used + _size_bound(results) - 1 <= max_bytes:
            parts[-1].extend(results)
            results = []
        for item in results:
            size = _size(item) + 1
            if parts[-1] and used + size > max_bytes:
                parts.append([])
                used = _size(annotations) + 2048
            parts[-1].append(item)
            used += size
        for number, part in enumerate(parts, 1):
            docs.append({
                "apiVersion": API_VERSION, "kind": "ClusterPolicyReport",
                "metadata": {"name": object_name(target, number), "labels": {MANAGED_BY: SOURCE},
                             "annotations": {**annotations, "railiance.io/target": target,
                                             "railiance.io/part": f"{number}/{len(parts)}"}},
                "scope": {"kind": kind, "name": target},
                "results": part,
                "summary": _summary(part),
            })
    return docs


def render(run: Run) -> str:
    """Every report of the run as one multi-document YAML stream (``kubectl apply -f`` takes it), each
    document in YAML's JSON form (``encode.yaml_json_text``: non-ASCII, bidi and invisible characters
    from a target \\u-escaped, never raw; the data stays exact)."""
    return "".join(f"---\n{yaml_json_text(doc)}\n" for doc in documents(run))


REPORTER = register(Reporter("policyreport", "policyreport.yaml", render))
