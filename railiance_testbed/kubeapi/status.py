"""Kubernetes ``Status`` error bodies, worded like the kube-apiserver's.

    >>> forbidden("list", "secrets", "", "gitea", user="system:serviceaccount:ns:sa")["message"]
    'secrets is forbidden: User "system:serviceaccount:ns:sa" cannot list resource "secrets" \
in API group "" in the namespace "gitea"'
"""

from __future__ import annotations

REASONS = {
    400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
    406: "NotAcceptable", 409: "Conflict", 410: "Expired", 422: "Invalid", 429: "TooManyRequests",
    500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout",
}


def status(code: int, message: str, reason: str | None = None, details: dict | None = None) -> dict:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason or REASONS.get(code, "Unknown"), "code": code}
    if details is not None:
        body["details"] = details
    return body


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, group: str, name: str) -> dict:
    details = {"name": name, "kind": resource}
    if group:
        details["group"] = group
    return status(404, f'{_qualified(resource, group)} "{name}" not found', "NotFound", details)


def no_such_resource() -> dict:
    return status(404, "the server could not find the requested resource", "NotFound",
                  {"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]})


def forbidden(verb: str, resource: str, group: str, namespace: str | None, *, user: str, name: str = "") -> dict:
    subject = f'{_qualified(resource, group)} "{name}"' if name else _qualified(resource, group)
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    message = (f'{subject} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
               f'in API group "{group}" {scope}')
    details = {"kind": resource}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    return status(403, message, "Forbidden", details)


def method_not_allowed(detail: str = "") -> dict:
    message = "the server does not allow this method on the requested resource"
    return status(405, f"{message} ({detail})" if detail else message, "MethodNotAllowed", {})


def bad_request(message: str) -> dict:
    return status(400, message, "BadRequest")


def injected_failure(code: int) -> dict:
    """The body of a deliberately failing answer (``fail_status``): 500 is an InternalError."""
    message = "Internal error occurred: injected failure" if code == 500 else f"injected failure ({code})"
    return status(code, message, REASONS.get(code, "InternalError"),
                  {"causes": [{"message": "injected failure"}]} if code == 500 else {})
