"""Each control's feature text for the reports: the scenario and the Then sentence that state its desired value.

The finding says where its expected value came from (evidence ``expected_from``: param ->
``features/S3/T04-gitea.feature:12`` or an inventory file); the sentence at that feature line is
the one the run used. The bundled features' specs (``checks.bundled_plan().specs``) give it by control
id; a finding whose feature line is not the bundled one (features from another checkout) is read
from that file's line. Example: ``feature_texts(run)["host.swap.file"].source`` ->
``"features/S1/T01-swapfile.feature:14"``. Nothing here raises: a control whose text cannot be
found is simply left out.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping

from railiance_conformance.finding import Finding
from railiance_conformance.reporting import FeatureText

if TYPE_CHECKING:
    from railiance_conformance.vocabulary import ControlSpec

FEATURE_LINE = re.compile(r"^(?P<path>[^:]+\.feature):(?P<line>\d+)$")
MAX_FEATURE_BYTES = 1 << 20


def feature_source(finding: Finding) -> str | None:
    """The ``file.feature:line`` the finding's expected value came from, if any."""
    sources = dict(finding.evidence).get("expected_from")
    if not isinstance(sources, Mapping):
        return None
    return next((s for s in sources.values() if isinstance(s, str) and FEATURE_LINE.match(s)), None)


def _bundled() -> Mapping[str, ControlSpec]:
    try:
        from railiance_conformance.checks import bundled_plan

        return bundled_plan().specs
    except Exception:  # noqa: BLE001 - no features beside the package (an installed wheel): no texts
        return {}


def _read_line(source: str, roots: Iterable[Path]) -> FeatureText | None:
    match = FEATURE_LINE.match(source)
    if match is None:  # not a file.feature:line source
        return None
    for root in roots:
        path = root / match["path"]
        try:
            if not path.is_file() or path.stat().st_size > MAX_FEATURE_BYTES:
                continue
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        number = int(match["line"])
        if not 0 < number <= len(lines):
            return None
        sentence = re.sub(r"^\s*(Then|And|But)\s+", "", lines[number - 1]).strip()
        scenario = next((l.split(":", 1)[1].strip() for l in reversed(lines[:number]) if l.strip().startswith(
            ("Scenario:", "Scenario Outline:"))), "")
        return FeatureText(scenario, sentence, source)
    return None


def feature_texts(findings: Iterable[Finding], roots: Iterable[Path] = ()) -> dict[str, FeatureText]:
    """Control id -> its FeatureText, for every control of ``findings`` whose text is found."""
    from railiance_conformance.policy import REPO_ROOT

    specs = _bundled()
    roots = [*roots, Path.cwd(), REPO_ROOT]
    texts: dict[str, FeatureText] = {}
    for finding in findings:
        if finding.control_id in texts:
            continue
        spec = specs.get(finding.control_id)
        source = feature_source(finding)
        if spec is not None and (source is None or source == spec.source):
            texts[finding.control_id] = FeatureText(spec.scenario, spec.sentence, spec.source)
        elif source is not None and (found := _read_line(source, roots)) is not None:
            texts[finding.control_id] = found
    return texts
