"""One run of the suite: the object whose methods are the collection, session-finish and terminal-summary hooks.

Modelled on pytest's own junitxml plugin: ``plugin.pytest_configure`` builds one ``Suite`` from the
run's settings (``settings.SuiteSettings``), keeps it under a StashKey and registers it as a plugin.
Steps never see it: they get what they need through fixtures (``plugin.py``).
"""
from __future__ import annotations

import shutil
import sys
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import pytest

from railiance_conformance.checks import CheckPlan
from railiance_conformance.interrupt import Interrupts, kill_children
from railiance_conformance.probes.cluster import ClusterSnapshot
from railiance_conformance.probes.host_facts import HostFactStore
from railiance_conformance.recorder import FindingRecorder, utc_now
from railiance_conformance.redact import redact
from railiance_conformance.reporting import Run
from railiance_conformance.reporting.output import OUTPUT_FAILED, publish
from railiance_conformance.run_deadline import RunDeadline
from railiance_conformance.settings import SuiteSettings, default_run_timeout
from railiance_conformance.start_up import start_up_done
from railiance_conformance.vocabulary import control_id_of


def scenario_control_id(item: Any) -> str | None:
    """The control id a collected pytest-bdd scenario checks (its title starts with it), or None."""
    from pytest_bdd.scenario import scenario_wrapper_template_registry

    function = getattr(item, "function", None)
    template = scenario_wrapper_template_registry.get(function) if function is not None else None
    return control_id_of(template.name) if template is not None else None


@dataclass
class Suite:
    """One run: settings plus what the run produces (findings, probes, reports). Its methods are hooks."""

    settings: SuiteSettings
    option: Any
    rootpath: Path
    recorder: FindingRecorder = field(init=False)
    workdir: Path = field(init=False)
    started_at: str = field(default_factory=utc_now)
    checks: CheckPlan | None = None
    fact_store: HostFactStore | None = None
    cluster: ClusterSnapshot | None = None
    deadline: RunDeadline | None = None
    interrupts: Interrupts | None = None
    partial: bool = False
    claims: tuple | None = None
    coverage: tuple | None = None      # coverage.TaskCoverage per task (with --workplan)
    diff: Any = None
    output_failures: tuple = ()
    output_dir: Path | None = None
    evaluation: Any = None
    host_selection: dict = field(default_factory=dict)   # control id -> host names its item covers
    finding_failures: set = field(default_factory=set)   # node ids failed by their findings (plugin.check)

    def __post_init__(self) -> None:
        from railiance_conformance.evaluation import Evaluation

        self.recorder = FindingRecorder(self.settings.catalog, list(self.settings.waivers))
        self.workdir = Path(tempfile.mkdtemp(prefix="railiance-conformance-"))
        self.evaluation = Evaluation(self, getattr(self.option, "settle", 0) or 0)
        self._repos: Any = None

    # --- collection ---------------------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)  # before -m/-k deselect: the catalog's task, layer and severity are markers
    def pytest_collection_modifyitems(self, session: pytest.Session, config: pytest.Config, items: list) -> None:
        from railiance_conformance.keyword_match import selected_hosts

        controls = self.settings.catalog.controls
        hosts = [h.name for h in self.settings.hosts]
        keyword = config.option.keyword
        for item in items:
            control_id = scenario_control_id(item)
            if control_id is not None and control_id in controls:
                control = controls[control_id]
                for name in (control.task, control.layer, control.severity):
                    item.add_marker(name)
            # one item per host control covers every host; -k selects hosts as if the item were one per
            # host: the first host -k selects is a keyword, so pytest keeps the item (see selected_hosts)
            if keyword and hosts and item.get_closest_marker("hosts"):
                chosen = selected_hosts(item, hosts, keyword)
                if chosen:
                    item.extra_keyword_matches.add(chosen[0])

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Plan the selected checks (only their facts are gathered); arm the run deadline (feature runs only)."""
        selected = {control_id for item in session.items if (control_id := scenario_control_id(item)) is not None}
        self.checks = CheckPlan(self.settings.catalog, self.settings.specs, selected)
        if selected:  # the run will wait on SSH or the API: import the report writers meanwhile
            from railiance_conformance.reporting import warm_up

            warm_up(self.settings.formats)
        start_up_done(freeze=bool(selected))
        # the hosts each host control's item covers (-k by host name): only those are probed and reported
        for item in session.items:
            control_id = scenario_control_id(item)
            if control_id is not None and item.get_closest_marker("hosts"):
                self.host_selection.setdefault(control_id, set()).update(self.hosts_for(item))
        features = self.settings.features_dir
        if not (self.option.run_timeout or (features is not None and any(
                Path(str(item.path)).is_relative_to(features) for item in session.items))):
            return
        self.interrupts = Interrupts()  # SIGTERM/SIGHUP end the run as Ctrl-C does (see interrupt.py)
        self.interrupts.install()
        self.deadline = RunDeadline(self.option.run_timeout or default_run_timeout(len(self.settings.hosts), self.option)
                                    + (getattr(self.option, "settle", 0) or 0))
        self.deadline.arm()

    # --- what the steps use (through the plugin's fixtures) -----------------------------------------------

    def plan(self) -> CheckPlan:
        if self.checks is None:
            self.checks = CheckPlan(self.settings.catalog, self.settings.specs)
        return self.checks

    def facts(self, on_done=None) -> HostFactStore:
        """The host facts store, started once: every host is probed concurrently, one SSH command each."""
        if self.fact_store is None:
            self.fact_store = HostFactStore(self.settings.ssh, self.workdir, workers=self.settings.probe_workers,
                                            facts_for=self.plan().host_facts)
            wanted = set().union(*self.host_selection.values()) if self.host_selection else None
            self.fact_store.prefetch([h for h in self.settings.hosts if wanted is None or h.name in wanted],
                                     on_done=on_done)
        return self.fact_store

    def hosts_for(self, item: Any) -> list[str]:
        """The host names a host control's item evaluates (``-k`` by host name)."""
        from railiance_conformance.keyword_match import selected_hosts

        return selected_hosts(item, [h.name for h in self.settings.hosts], self.option.keyword)

    def repos(self) -> Mapping[str, Path]:
        """The railiance-* checkouts (``--repos DIR``, named in the layer map), or FactUnavailable raised."""
        from railiance_conformance.finding import FactUnavailable

        if self.settings.repos_dir is None:
            raise FactUnavailable("no repo checkouts given: use --repos DIR (the railiance-* checkouts side by side)")
        return {name: self.settings.repos_dir / name for name in self.settings.layer_map["repos"]["names"]}

    def cluster_env(self) -> Any:
        """What the cluster checks need that is not a sentence: the cluster domain and the layer map."""
        from railiance_conformance.controls.cluster import ClusterEnv

        return ClusterEnv(cluster_domain=(self.settings.cluster_desired or {}).get("cluster_domain", "cluster.local"),
                          layer_map=self.settings.layer_map)

    def service_nodeport(self, service: str) -> int:
        """The NodePort the cluster reports for ``service`` (``NS/NAME``), for a host check whose sentence
        says "Port the NodePort of Service NS/NAME"; FactUnavailable says why there is none."""
        from railiance_conformance.controls.cluster import service_nodeport
        from railiance_conformance.finding import FactUnavailable

        namespace, _, name = service.partition("/")
        try:
            return service_nodeport(self.snapshot(), namespace, name)
        except (FactUnavailable, LookupError) as exc:
            raise FactUnavailable(f"the NodePort of Service {service} from the cluster: {exc}") from None

    def snapshot(self) -> ClusterSnapshot:
        """The cluster, read lazily and once per run (one LIST per resource kind a check reads)."""
        if self.cluster is None:
            self.cluster = ClusterSnapshot(self.settings.cluster_access)
        return self.cluster

    # --- the end of the run -------------------------------------------------------------------------------

    def run(self) -> Run:
        s = self.settings
        return Run(run_id=s.run_id, started_at=self.started_at, finished_at=utc_now(),
                   findings=tuple(self.recorder.findings),
                   targets=tuple(sorted({f.target for f in self.recorder.findings})), partial=self.partial,
                   workplan=s.catalog.workplan,
                   connections={h.name: redact(h.connection_evidence(s.ssh.identity_file)) for h in s.hosts})

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.deadline is not None:
            self.deadline.disarm()  # writing the reports is never interrupted
        if self.interrupts is not None:
            self.interrupts.quiet()  # a second signal is noted, never raised into the writing
        if self.fact_store is not None:
            self.fact_store.close()
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.partial = bool(exitstatus == pytest.ExitCode.INTERRUPTED or session.shouldstop
                            or (self.deadline is not None and self.deadline.expired)
                            or (self.interrupts is not None and self.interrupts.received))
        if self.partial and self.interrupts is not None:
            kill_children()  # every ssh session and helper the run started ends now, not at its own bound
            self._interrupted_findings()
        if not self.recorder.findings and not self.partial:
            return  # nothing of the suite ran (e.g. the project's own tests)
        # an interrupted run writes its (partial, perhaps empty) report: never the previous run's as if current
        run = self.run()
        if self.deadline is not None and self.deadline.expired:
            run = replace(run, deadline=f"run deadline of {self.deadline.seconds:g} s "
                                        f"exceeded: the checks not yet run are errors saying so")
        elif self.interrupts is not None and self.interrupts.received:
            run = replace(run, deadline=f"interrupted by {self.interrupts.received}: the checks not yet run "
                                        f"are errors saying so")
        if self.settings.workplan is not None:
            from railiance_conformance.claims import claims_table
            from railiance_conformance.coverage import coverage_table

            self.coverage = coverage_table(self.settings.workplan, self.settings.coverage, run.findings)
            self.claims = tuple(claims_table(self.settings.workplan, run.findings, self.coverage))
            run = replace(run, claims=self.claims, coverage=self.coverage, workplan=self.settings.workplan.id)
        # history and reports together: both have this run or neither (see reporting/output.py)
        s = self.settings
        published = publish(run, s.report_dir, list(s.formats), s.history, s.history_busy_timeout_s)
        self.diff = published.run.diff
        self.output_failures, self.output_dir = published.failures, published.report_dir
        if published.failures:
            session.exitstatus = OUTPUT_FAILED
            for failure in published.failures:
                print(f"railiance-conformance: could not write {failure}", file=sys.stderr)
        from railiance_conformance.publish_policyreport import publish_at_session_finish
        publish_at_session_finish(session, published.run, s.cluster_access)  # --publish-policyreport (opt-in)

    def interrupted_by(self) -> str:
        """Why the run stopped early: "the run deadline of N s", "SIGTERM", "SIGINT" (Ctrl-C)."""
        if self.deadline is not None and self.deadline.expired:
            return f"the run deadline of {self.deadline.seconds:g} s"
        return (self.interrupts.received if self.interrupts is not None else None) or "SIGINT"

    def _interrupted_findings(self) -> None:
        """An interrupted run: every selected control on each of its targets that has no finding yet
        is an error "interrupted by SIGTERM before this control finished" (never a silent gap)."""
        from railiance_conformance.evaluation import NO_HOSTS, REPOS_TARGET
        from railiance_conformance.finding import FactUnavailable
        from railiance_conformance.vocabulary import CHECK_KINDS

        if self.checks is None:
            return
        why = f"interrupted by {self.interrupted_by()} before this control finished"
        done = {(f.control_id, f.target) for f in self.recorder.findings}
        hosts = [h.name for h in self.settings.hosts]
        cluster = self.cluster.name if self.cluster is not None else (
            self.settings.cluster_access.context or "cluster")

        def interrupted():
            raise FactUnavailable(why)
        for control_id in self.checks.selected:
            target_kind = CHECK_KINDS[self.checks.spec(control_id).kind].target
            if target_kind == "host":
                chosen = self.host_selection.get(control_id)
                targets = [h for h in hosts if chosen is None or h in chosen] or ([] if hosts else [NO_HOSTS])
            else:
                targets = [REPOS_TARGET] if target_kind == "repo" else [cluster]
            for target in targets:
                if (control_id, target) not in done:
                    self.recorder.add(self.recorder.build(control_id, target, interrupted))

    @pytest.hookimpl(wrapper=True, tryfirst=True)  # around pytest's own summary: the verdict comes last
    def pytest_terminal_summary(self, terminalreporter, exitstatus: int, config: pytest.Config):
        from railiance_conformance.reporting.terminal_hooks import hide_finding_failures, write_summary

        hidden = hide_finding_failures(terminalreporter, config, self.finding_failures)
        try:
            result = yield
        finally:
            terminalreporter.stats.setdefault("failed", []).extend(hidden)  # pytest's final counts keep them
        write_summary(self, terminalreporter)
        return result
