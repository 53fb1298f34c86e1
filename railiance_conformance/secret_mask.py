"""Desired values that came from an Ansible vault never reach a report: they become ``***``.

A host's vault-derived desired keys (``HostTarget.secret_keys``) are secrets. When a control
reads one, its Finding shows ``***`` in place of the value in expected, in observed at the same
place (an equal observed value would give the secret away), and wherever the value's text
appears in the reason or evidence. An evaluator that transforms the value (``swap_size_gb`` ->
bytes) cannot be masked piecewise: then expected and observed are ``***`` as a whole.
Example: ``evaluate_with_secrets(CHECK_KINDS["host.pam_limits.configured"].evaluate, facts, desired, {"nproc_soft"})``
-> ``Outcome(PASS, expected={"soft": "***", "hard": 1024}, observed={"soft": "***", "hard": 1024})``.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Callable, Iterable, Iterator

from railiance_conformance.finding import Outcome

MASK = "***"
_MISSING = object()


class _RecordingDesired(Mapping):
    """The desired values, recording which keys an evaluator read."""

    def __init__(self, values: Mapping[str, Any]):
        self._values = dict(values)
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def _pattern(secrets: Iterable[Any]) -> re.Pattern | None:
    texts = sorted({str(s) for s in secrets if str(s)}, key=len, reverse=True)
    if not texts:
        return None
    return re.compile(r"(?<![A-Za-z0-9_])(?:" + "|".join(map(re.escape, texts)) + r")(?![A-Za-z0-9_])")


def mask_text(text: str, secrets: Iterable[Any]) -> str:
    """Every standalone occurrence of a secret's text in ``text`` -> ``***``."""
    pattern = _pattern(secrets)
    return pattern.sub(MASK, text) if pattern else text


def _is_secret(leaf: Any, secrets: list[Any]) -> bool:
    return any(leaf == s or str(leaf) == str(s) for s in secrets)


def _mask_value(value: Any, secrets: list[Any], pattern: re.Pattern | None) -> Any:
    if isinstance(value, Mapping):
        return {k: _mask_value(v, secrets, pattern) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_mask_value(v, secrets, pattern) for v in value)
    if value is None or isinstance(value, bool):
        return value
    if _is_secret(value, secrets):
        return MASK
    if isinstance(value, str) and pattern:
        return pattern.sub(MASK, value)
    return value


def _mask_pair(expected: Any, observed: Any, secrets: list[Any], pattern) -> tuple[Any, Any]:
    """Mask ``expected``; mask ``observed`` where expected was masked, and wherever it holds a secret."""
    if isinstance(expected, Mapping) and isinstance(observed, Mapping):
        exp, obs = {}, {}
        for key in expected:
            exp[key], masked = _mask_pair(expected[key], observed.get(key, _MISSING), secrets, pattern)
            if masked is not _MISSING:
                obs[key] = masked
        for key in observed:
            if key not in expected:
                obs[key] = _mask_value(observed[key], secrets, pattern)
        return exp, obs
    if isinstance(expected, (list, tuple)) and isinstance(observed, (list, tuple)) and len(expected) == len(observed):
        pairs = [_mask_pair(e, o, secrets, pattern) for e, o in zip(expected, observed, strict=True)]
        return type(expected)(p[0] for p in pairs), type(observed)(p[1] for p in pairs)
    if not isinstance(expected, (Mapping, list, tuple)) and expected is not None \
            and not isinstance(expected, bool) and _is_secret(expected, secrets):
        return MASK, (observed if observed is _MISSING or observed is None else MASK)
    masked_observed = observed if observed is _MISSING else _mask_value(observed, secrets, pattern)
    return _mask_value(expected, secrets, pattern), masked_observed


def _mentions(value: Any, secret: Any, pattern: re.Pattern | None) -> bool:
    if isinstance(value, Mapping):
        return any(_mentions(v, secret, pattern) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_mentions(v, secret, pattern) for v in value)
    if value is None or isinstance(value, bool):
        return False
    return _is_secret(value, [secret]) or (isinstance(value, str) and pattern is not None
                                           and bool(pattern.search(value)))


def mask_outcome(outcome: Outcome, secrets: Mapping[str, Any]) -> Outcome:
    """``outcome`` with the values of ``secrets`` (key -> vault-derived value it read) as ``***``."""
    if not secrets:
        return outcome
    values = list(secrets.values())
    pattern = _pattern(values)
    expected, observed = _mask_pair(outcome.expected, outcome.observed, values, pattern)
    if pattern is None or not all(_mentions(outcome.expected, v, _pattern([v])) for v in values if str(v)):
        expected = MASK  # the evaluator transformed a secret (units, sums): mask the whole comparison
        observed = None if outcome.observed is None else MASK
    evidence = tuple((name, _mask_value(value, values, pattern)) for name, value in outcome.evidence)
    reason = pattern.sub(MASK, outcome.reason) if pattern else outcome.reason
    return replace(outcome, expected=expected, observed=observed, evidence=evidence, reason=reason)


def evaluate_with_secrets(evaluator: Callable[[Any, Mapping[str, Any]], Outcome], facts: Any,
                          desired: Mapping[str, Any], secret_keys: Iterable[str]) -> Outcome:
    """Run ``evaluator(facts, desired)``; mask the vault-derived desired values it read."""
    secret_keys = frozenset(secret_keys)
    if not secret_keys & set(desired):
        return evaluator(facts, desired)
    recording = _RecordingDesired(desired)
    outcome = evaluator(facts, recording)
    return mask_outcome(outcome, {k: desired[k] for k in recording.read & secret_keys})
