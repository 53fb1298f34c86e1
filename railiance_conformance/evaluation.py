"""Evaluate every selected control on every target once, then settle what is not yet passing.

``Evaluation(suite, settle_s).findings(control_id, hosts)`` -> one ``Finding`` per target (every host
for a host kind, the cluster, the checkouts), evaluated once per run from the facts gathered once;
``settle_s`` > 0 re-probes what drifted or errored with backoff (1, 2, 4, 8 s) until the budget ends
(Goss's retry-timeout). How and why: docs/architecture.md ("Fan-out without items per host").
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, Sequence

from railiance_conformance.finding import FactUnavailable, Finding, Outcome, Status
from railiance_conformance.secret_mask import evaluate_with_secrets
from railiance_conformance.targets import HostTarget
from railiance_conformance.vocabulary import CHECK_KINDS

if TYPE_CHECKING:
    from railiance_conformance.checks import CheckPlan
    from railiance_conformance.probes.cluster import ClusterAccess, ClusterSnapshot
    from railiance_conformance.probes.host_facts import HostFactStore
    from railiance_conformance.recorder import FindingRecorder


class SuiteSettingsView(Protocol):
    """What an Evaluation reads of the run's settings (``settings.SuiteSettings``)."""

    @property
    def hosts(self) -> Sequence[HostTarget]: ...

    @property
    def cluster_access(self) -> ClusterAccess: ...


class SuiteView(Protocol):
    """What an Evaluation asks of the suite (``suite.Suite`` implements it): the plan, the facts, the
    cluster, the checkouts and the recorder, each read lazily and once per run."""

    @property
    def settings(self) -> SuiteSettingsView: ...

    @property
    def recorder(self) -> FindingRecorder: ...

    @property
    def host_selection(self) -> Mapping[str, list[str]]: ...   # control id -> the hosts its item covers

    def plan(self) -> CheckPlan: ...

    def facts(self) -> HostFactStore: ...

    def snapshot(self) -> ClusterSnapshot: ...

    def repos(self) -> Mapping[str, Path]: ...

    def cluster_env(self) -> Any: ...

    def service_nodeport(self, service: str) -> int: ...

NO_HOSTS = "(no hosts)"
REPOS_TARGET = "repos"
BACKOFF_S = (1.0, 2.0, 4.0, 8.0)


@dataclass
class _History:
    """What settle saw of one (control, target)."""

    statuses: list[str] = field(default_factory=list)
    passed_after_s: float | None = None


class Evaluation:
    """The findings of one run: ``findings(control_id)`` -> one Finding per target of that control."""

    def __init__(self, suite: SuiteView, settle_s: float = 0.0, *, sleep: Callable[[float], None] = time.sleep):
        self.suite = suite
        self.settle_s = max(0.0, float(settle_s or 0.0))
        self.sleep = sleep
        self.results: dict[str, dict[str, Finding]] | None = None
        self.history: dict[tuple[str, str], _History] = {}
        self.attempts = 1
        self.reprobes = {"ssh_commands": 0, "api_kinds": 0}
        self._hosts: dict[str, HostTarget] | None = None

    # --- targets ------------------------------------------------------------------------------------------

    def targets(self, control_id: str) -> list[str]:
        kind = CHECK_KINDS[self.suite.plan().spec(control_id).kind]
        if kind.target == "host":
            hosts = [h.name for h in self.suite.settings.hosts]
            chosen = self.suite.host_selection.get(control_id)
            return [h for h in hosts if chosen is None or h in chosen] or ([] if hosts else [NO_HOSTS])
        if kind.target == "repo":
            return [REPOS_TARGET]
        return [self.suite.snapshot().name]

    # --- one (control, target) -----------------------------------------------------------------------------

    def _outcome(self, control_id: str, target: str) -> Callable[[], Outcome]:
        plan, suite = self.suite.plan(), self.suite
        spec = plan.spec(control_id)
        kind = CHECK_KINDS[spec.kind]

        def evaluate() -> Outcome:
            if kind.target == "host":
                host = self._host(target)
                if host is None:
                    raise FactUnavailable("no host targets given: use --hosts URL or --ansible-inventory PATH")
                params, sources = plan.params(control_id, host)
                if "nodeport_service" in params and suite.settings.cluster_access.configured():
                    # cross-layer: the Port is the NodePort the cluster reports (it wins over the inventory's)
                    service = params["nodeport_service"]
                    params = {**params, "port": suite.service_nodeport(service)}
                    sources = {**sources, "port": f"Service {service} (the cluster)"}
                facts = suite.facts().get(host)
                outcome = evaluate_with_secrets(kind.evaluate, facts, params, plan.secret_params(control_id, host))
            elif kind.target == "repo":
                params, sources = plan.params(control_id, None)
                outcome = kind.evaluate(suite.repos(), params)
            else:
                params, sources = plan.params(control_id, None)
                outcome = kind.evaluate(suite.snapshot(), params, suite.cluster_env())
            # a Finding says where its expected value came from (the feature's line or the inventory's)
            return Outcome(outcome.status, outcome.expected, outcome.observed, outcome.reason,
                           (*outcome.evidence, ("expected_from", dict(sorted(sources.items())))))
        return evaluate

    def _host(self, name: str) -> HostTarget | None:
        if self._hosts is None:  # by name: a scan per (control, host) was quadratic in the hosts
            self._hosts = {h.name: h for h in self.suite.settings.hosts}
        return self._hosts.get(name)

    def _evaluate(self, control_id: str, target: str) -> Finding:
        return self.suite.recorder.build(control_id, target, self._outcome(control_id, target))

    # --- the run ----------------------------------------------------------------------------------------------

    def run(self) -> None:
        """Evaluate every selected control on every target; then settle (if a budget is given); record."""
        if self.results is not None:
            return
        started = time.monotonic()
        plan = self.suite.plan()
        self.results = {}
        for control_id in plan.selected:
            self.results[control_id] = {}
            for target in self.targets(control_id):
                # recorded at once: a run interrupted here still reports what it found (partial)
                finding = self.results[control_id][target] = self._evaluate(control_id, target)
                self.suite.recorder.add(finding)
        self._note_all(0.0)
        if self.settle_s > 0:
            self._settle(started)
            final = {(c, t): self._with_settle(f) for c, by_target in self.results.items() for t, f in by_target.items()}
            for (control_id, target), finding in final.items():
                self.results[control_id][target] = finding
            self.suite.recorder.replace(lambda f: final.get((f.control_id, f.target), f))

    def findings(self, control_id: str, targets: list[str] | None = None) -> list[Finding]:
        self.run()
        by_target = self.results.get(control_id, {}) if self.results is not None else {}
        return [f for t, f in by_target.items() if targets is None or t in targets or t == NO_HOSTS]

    # --- settle --------------------------------------------------------------------------------------------

    def _failing(self) -> list[tuple[str, str]]:
        return [(c, t) for c, by_target in (self.results or {}).items() for t, f in by_target.items()
                if f.status in (Status.DRIFT, Status.ERROR)]

    def _note_all(self, elapsed: float, only: set[tuple[str, str]] | None = None) -> None:
        for control_id, by_target in (self.results or {}).items():
            for target, finding in by_target.items():
                if only is not None and (control_id, target) not in only:
                    continue
                seen = self.history.setdefault((control_id, target), _History())
                seen.statuses.append(finding.status.value)
                if finding.status.holds and seen.passed_after_s is None:
                    seen.passed_after_s = round(elapsed, 3)

    def _settle(self, started: float) -> None:
        results = self.results if self.results is not None else {}  # set by run() before it settles
        deadline = started + self.settle_s
        for step in range(10_000):
            failing = self._failing()
            remaining = deadline - time.monotonic()
            if not failing or remaining <= 0:
                return
            self.sleep(min(BACKOFF_S[min(step, len(BACKOFF_S) - 1)], remaining))
            self.attempts += 1
            refreshed = self._reprobe(failing)
            elapsed = time.monotonic() - started
            for control_id, target in refreshed:
                results[control_id][target] = self._evaluate(control_id, target)
            self._note_all(elapsed, refreshed)

    def _reprobe(self, failing: list[tuple[str, str]]) -> set[tuple[str, str]]:
        """Re-gather what the failing controls need; return every (control, target) whose inputs changed."""
        plan, suite = self.suite.plan(), self.suite
        results = self.results if self.results is not None else {}  # set by run() before it settles

        def reads(control_id: str) -> set[str]:
            """The API kinds a cluster control reads (none for a kind without ``reads``)."""
            kind_reads = CHECK_KINDS[plan.spec(control_id).kind].reads
            return set(kind_reads(plan.params(control_id, None)[0])) if kind_reads is not None else set()
        hosts: dict[str, list[str]] = {}
        kinds: set[str] = set()
        repos = False
        for control_id, target in failing:
            kind = CHECK_KINDS[plan.spec(control_id).kind]
            if kind.target == "host" and target != NO_HOSTS:
                hosts.setdefault(target, []).append(control_id)
            elif kind.target == "cluster":
                kinds.update(reads(control_id))
            elif kind.target == "repo":
                repos = True
        refreshed: set[tuple[str, str]] = set()
        for name, controls in hosts.items():
            host = self._host(name)
            if host is None:  # a failing host control's target is one of the run's hosts
                continue
            facts = []
            for c in controls:  # a host kind always declares its facts
                kind_facts = CHECK_KINDS[plan.spec(c).kind].facts
                facts += kind_facts(plan.params(c, host)[0]) if kind_facts is not None else []
            suite.facts().refresh(host, facts)  # one SSH command for this host's failing controls
            self.reprobes["ssh_commands"] += 1
            refreshed |= {(c, name) for c in results if name in results[c]
                          and CHECK_KINDS[plan.spec(c).kind].target == "host"}
        if kinds:
            suite.snapshot().forget(kinds)  # one LIST per kind, at the next read
            self.reprobes["api_kinds"] += len(kinds)
            cluster = suite.snapshot().name
            refreshed |= {(c, cluster) for c in results if CHECK_KINDS[plan.spec(c).kind].target == "cluster"
                          and reads(c) & kinds}
        if repos:
            refreshed |= {(c, REPOS_TARGET) for c in results if CHECK_KINDS[plan.spec(c).kind].target == "repo"}
        return refreshed | set(failing)

    def _with_settle(self, finding: Finding) -> Finding:
        seen = self.history.get((finding.control_id, finding.target), _History())
        statuses = seen.statuses
        flapping = any(a in ("pass", "waived") and b not in ("pass", "waived") for a, b in zip(statuses, statuses[1:], strict=False))
        settle = {"attempts": len(statuses), "passed_after_s": seen.passed_after_s, "statuses": statuses,
                  "flapping": flapping, "budget_s": self.settle_s}
        reason = finding.reason
        if flapping:
            reason = (reason + "; " if reason else "") + f"flapping while settling: {' → '.join(statuses)}"
        elif finding.status in (Status.DRIFT, Status.ERROR) and len(statuses) > 1:
            reason = (reason + "; " if reason else "") + \
                f"still {finding.status.value} after {len(statuses)} attempts in a {self.settle_s:g} s settle budget"
        return replace(finding, reason=reason, evidence=(*finding.evidence, ("settle", settle)))
