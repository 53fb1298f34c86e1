"""Reading the API server's HTTP answers: a bounded body, Retry-After, its own refusals.

``read_body`` reads a whole response body within a total deadline (``BodyTimeout`` past it);
``api_status`` is the message of a Kubernetes ``Status`` failure; ``apiserver_answer`` tells the API
server's (or its service proxy's) own failure from a backend's answer; ``api_reason`` says why a
LIST or GET was refused, naming the RBAC rule to grant (RFC 9110 for Retry-After; kube-apiserver's
``responsewriters`` for its plain-text errors).
"""
from __future__ import annotations

import json
import time
from typing import Any

from railiance_conformance.probes.api_kinds import Kind


class BodyTimeout(TimeoutError):
    """The whole response body did not arrive within the request's timeout."""


def read_body(raw, deadline: float, timeout_s: float) -> bytes:
    """Read a urllib3 response body against a total ``deadline`` (``time.monotonic()``): each
    receive may wait only for the time left, so a body trickled a byte at a time still ends at
    the deadline (urllib3's read timeout is per receive). The connection is dropped on timeout."""
    chunks: list[bytes] = []
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BodyTimeout(f"timed out: the response body was not complete within {timeout_s:g} s "
                                  f"({sum(len(chunk) for chunk in chunks)} bytes arrived)")
            if sock is not None:
                sock.settimeout(left)
            chunk = raw.read1(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    except BaseException:
        raw.drop_connection() if hasattr(raw, "drop_connection") else raw.close()
        raise
    finally:
        raw.release_conn()


def retry_after(value: str | None) -> float:
    """Seconds of a Retry-After header (RFC 9110 10.2.3: delay-seconds or an HTTP-date); 1 when absent."""
    if not value:
        return 1.0
    try:
        return max(0.0, float(int(value.strip())))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return 1.0


# kube-apiserver's own plain-text answers (http.Error): responsewriters.InternalError "Internal Server
# Error: PATH: ERR", the proxy's "Error trying to reach service", and etcd/endpoint failures
APISERVER_TEXT = ("internal server error:", "error trying to reach service", "etcdserver:", "no endpoints available",
                   "too many requests", "the server is currently unable to handle the request",
                   "service unavailable")


def apiserver_answer(status: int, text: str, content_type: str) -> str | None:
    """The API server's (or its proxy's) own failure on a service-proxy GET, as text; None when the
    answer may be the backend's. A Status failure in any content type, a 429, and a 5xx whose body
    is not a JSON document (Gitea's health answer is JSON) are the API server's."""
    status_message = api_status(text, "json")
    if status_message is not None and (status >= 500 or status == 429):
        return status_message
    if status == 429:
        return (text.strip().splitlines() or ["Too Many Requests"])[0][:200]
    if status >= 500:
        lowered = text.lower()
        try:
            json.loads(text)
            is_json = "json" in content_type
        except ValueError:
            is_json = False
        if not is_json or any(marker in lowered for marker in APISERVER_TEXT):
            return " ".join(text.split())[:200] or f"HTTP {status} with an empty body"
    return None


def api_status(text: str, content_type: str) -> str | None:
    """The message of a Kubernetes ``Status`` failure (the API server's own refusal), else None (the
    backend's answer, whatever its code)."""
    if "json" not in content_type:
        return None
    try:
        body = json.loads(text)
    except ValueError:
        return None
    if isinstance(body, dict) and body.get("kind") == "Status" and body.get("apiVersion") == "v1" \
            and body.get("status") == "Failure":
        return body.get("message") or body.get("reason") or "refused"
    return None


def api_reason(exc: Any, verb: str, kind: Kind, namespace: str | None) -> str:
    try:
        message = json.loads(exc.body).get("message", "")
    except (TypeError, ValueError):
        message = exc.reason or ""
    scope = f"in namespace {namespace!r}" if namespace else "cluster-wide"
    if exc.status == 403:
        return (f"forbidden: {message} (RBAC: grant verb {verb!r} on resource {kind.plural!r} in API group "
                f"{kind.group!r} {scope})")
    if exc.status == 404:
        return f"the API server does not serve {kind.name} ({kind.group or 'core'}/{kind.version}): " \
               f"is the CRD installed? ({message})"
    return f"API error {exc.status} for {verb} {kind.name}: {message or exc.reason}"


def short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    detail = text[-1] if text else ""
    if "timed out" in str(exc).lower():
        return f"timed out ({detail[:200]})"
    return f"{type(exc).__name__}: {detail[:300]}"
