"""One run of the suite: its settings (read and validated before any probe) and the object whose methods are the hooks.

Modelled on pytest's own junitxml plugin: ``plugin.pytest_configure`` builds one ``Suite`` from
the options, keeps it under a StashKey and registers it as a plugin; its methods are the
collection, session-finish and terminal-summary hooks. Steps never see it: they get what they
need through fixtures (``plugin.py``).

``SuiteSettings.from_options(option, rootpath)`` raises ``PolicyError`` (file, field, problem)
for any bad input: catalog, features, cluster policy, layer map, workplan, hosts, inventory,
waivers, report formats, run id.
"""
from __future__ import annotations

import re
import shutil
import sys
import tempfile
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import pytest

from railiance_conformance import early_inventory
from railiance_conformance.checks import CheckPlan
from railiance_conformance.controls.boundary import load_layer_map
from railiance_conformance.coverage import load_coverage
from railiance_conformance.interrupt import Interrupts, kill_children
from railiance_conformance.policy import Catalog, PolicyError, load_catalog, load_cluster_policy
from railiance_conformance.probes.cluster import ClusterAccess, ClusterSnapshot
from railiance_conformance.probes.host_facts import HostFactStore, SshOptions
from railiance_conformance.recorder import FindingRecorder, utc_now
from railiance_conformance.redact import redact
from railiance_conformance.reporting import Run, load_reporters
from railiance_conformance.reporting.output import OUTPUT_FAILED, publish
from railiance_conformance.run_deadline import RunDeadline
from railiance_conformance.targets import HostTarget, hosts_from_urls
from railiance_conformance.vocabulary import ControlSpec, control_id_of, load_specs
from railiance_conformance.waivers import load_waivers


@dataclass(frozen=True)
class SuiteSettings:
    """Everything a run is configured with: policy, the features' specs, targets, report settings."""

    catalog: Catalog
    specs: Mapping[str, ControlSpec]
    hosts: tuple[HostTarget, ...]
    ssh: SshOptions
    cluster_access: ClusterAccess
    cluster_desired: Mapping[str, Any]
    layer_map: Mapping[str, Any]
    waivers: tuple
    report_dir: Path
    formats: tuple[str, ...]
    history: Path | None
    history_busy_timeout_s: float
    run_id: str
    probe_workers: int
    workplan: Any = None
    repos_dir: Path | None = None
    features_dir: Path | None = None
    coverage: Any = None               # coverage.CoverageMap (policies/coverage.yaml), read with --workplan

    @classmethod
    def from_options(cls, option: Any, rootpath: Path) -> "SuiteSettings":
        check_option_paths(option)
        policy_dir = Path(option.policy_dir)
        # the features state the desired values (read and validated before any probe); a host's
        # Ansible vars override them (CheckPlan.params)
        features_dir = Path(rootpath) / "features"
        catalog = load_catalog(policy_dir)
        specs = load_specs(features_dir, catalog) if features_dir.is_dir() else {}
        cluster_desired, layer_map = load_cluster_policy(policy_dir), load_layer_map(policy_dir)
        workplan = load_workplan(option.workplan) if option.workplan else None
        coverage = load_coverage(policy_dir, catalog.controls) if workplan is not None else None
        urls = [u if "://" in u or not option.connection else f"{option.connection}://{u}"
                for u in (option.hosts or "").split(",") if u.strip()]
        hosts = hosts_from_urls(urls, {}, policy_source="features/")
        # read by a child forked at plugin load when it could be (early_inventory), else here
        early = early_inventory.take(option)
        hosts += early if early is not None else early_inventory.inventory_targets(option)
        report_dir = Path(option.report_dir) if option.report_dir else Path(rootpath) / "reports"
        formats = tuple(f.strip() for f in option.report_formats.split(",") if f.strip())
        unknown = set(formats) - set(load_reporters())
        if unknown:
            raise PolicyError("--report-formats", "", f"unknown format(s) {sorted(unknown)}; expected some of "
                                                      f"{sorted(load_reporters())}")
        waivers = () if option.waivers == "none" else tuple(load_waivers(
            Path(option.waivers) if option.waivers else policy_dir / "waivers.yaml", set(catalog.controls),
            KnownTargets(hosts, layer_map, option.kubeconfig)))
        run_id = option.run_id or uuid.uuid4().hex[:12]
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", run_id) or run_id.startswith("."):
            raise PolicyError("--run-id", "", f"{run_id!r} is not 1-64 letters, digits, _ . -")
        return cls(
            catalog=catalog, specs=specs, hosts=tuple(hosts),
            ssh=SshOptions(known_hosts=option.known_hosts, identity_file=option.ssh_identity_file,
                           user_config=option.ssh_config, host_key_checking=option.host_key_checking,
                           connect_timeout=option.connect_timeout, command_timeout=option.command_timeout,
                           kex=option.ssh_kex),
            cluster_access=ClusterAccess(option.kubeconfig, option.context, option.api_timeout, option.api_page_size,
                                         page_budget=option.api_page_budget),
            cluster_desired=cluster_desired, layer_map=layer_map, waivers=waivers, report_dir=report_dir,
            formats=formats, history=None if option.history == "none" else Path(option.history or report_dir / "history.sqlite"),
            history_busy_timeout_s=option.history_busy_timeout, run_id=run_id, probe_workers=option.probe_workers,
            workplan=workplan, repos_dir=Path(option.repos) if option.repos else None, features_dir=features_dir,
            coverage=coverage)


def check_option_paths(option: Any) -> None:
    """The files and directories options name must be there before any probe: ``--ssh-identity-file``,
    ``--ssh-config`` and ``--kubeconfig`` readable regular files, ``--repos`` a directory, ``--known-hosts``
    a readable regular file when it exists, the identity file not accessible by group or others (ssh
    ignores it then: OpenSSH ``sshkey_perm_ok``). One that is
    missing, of the wrong type or unreadable is a usage error naming the option and the path (ssh
    itself only warns "Identity file … not accessible" and every host then fails "Permission denied
    (publickey)"; a missing kubeconfig made every cluster control an error instead)."""
    import os

    for flag, value, want_dir in (("--ssh-identity-file", getattr(option, "ssh_identity_file", None), False),
                                  ("--ssh-config", getattr(option, "ssh_config", None), False),
                                  ("--kubeconfig", getattr(option, "kubeconfig", None), False),
                                  ("--repos", getattr(option, "repos", None), True)):
        if not value:
            continue
        path = Path(value).expanduser()
        if not path.exists():
            raise PolicyError(flag, str(value), "no such directory" if want_dir else "no such file")
        if want_dir and not path.is_dir():
            raise PolicyError(flag, str(value), "not a directory")
        if not want_dir and not path.is_file():
            raise PolicyError(flag, str(value), "not a regular file")
        if not os.access(path, os.R_OK | (os.X_OK if want_dir else 0)):
            raise PolicyError(flag, str(value), "not readable by this user")
        mode = path.stat().st_mode & 0o777
        if flag == "--ssh-identity-file" and path.stat().st_uid == os.getuid() and mode & 0o077:
            # OpenSSH's sshkey_perm_ok (authfile.c): a private key of the user's own that group or others
            # may access is "UNPROTECTED PRIVATE KEY FILE" and ignored, so every host then refuses the login
            raise PolicyError(flag, str(value), f"mode {mode:04o}: ssh ignores a private key that others can access "
                                                f"(UNPROTECTED PRIVATE KEY FILE) and every host would refuse the "
                                                f"login: chmod 600 {value}")
    known_hosts = getattr(option, "known_hosts", None)
    if known_hosts and Path(known_hosts).expanduser().exists():  # a missing one: ssh creates it (accept-new)
        path = Path(known_hosts).expanduser()
        if not path.is_file():
            raise PolicyError("--known-hosts", str(known_hosts), "not a regular file (ssh would read no key from "
                                                                 "it: every host 'Host key verification failed')")
        if not os.access(path, os.R_OK):
            raise PolicyError("--known-hosts", str(known_hosts), "not readable by this user")


def load_workplan(path: str):
    from railiance_conformance.workplan import parse_workplan

    try:
        return parse_workplan(Path(path))
    except (OSError, ValueError) as exc:
        raise PolicyError(path, "", f"not a readable workplan: {exc}") from None


def default_run_timeout(hosts: int, option) -> float:
    """hosts in waves of --probe-workers, each bounded by --command-timeout (+5 s to kill and reap);
    the cluster's requests (one per kind and named object, 20 at most) by --api-timeout each; 120 s
    to evaluate and report. ``default_run_timeout(1, defaults)`` -> 385.0."""
    waves = -(-hosts // max(1, option.probe_workers)) if hosts else 0
    return waves * (option.command_timeout + 5) + 20 * option.api_timeout + 120


class KnownTargets:
    """What a waiver may name: hosts, the layer map's components and namespaces, repos, and the
    kubeconfig's contexts (read only when a waiver names something else: the kubernetes import
    costs start-up time on every run)."""

    def __init__(self, hosts: list[HostTarget], layer_map: Mapping, kubeconfig: str | None):
        self.cheap = {h.name for h in hosts} | set(layer_map.get("components", {})) \
            | set(layer_map.get("namespaces", {})) | {"repos", "in-cluster"}
        self.kubeconfig = kubeconfig
        self._contexts: set[str] | None = None

    def __contains__(self, target: object) -> bool:
        return target in self.cheap or target in self.contexts()

    def contexts(self) -> set[str]:
        if self._contexts is None:
            try:
                from kubernetes import config as kube_config

                contexts, _ = kube_config.list_kube_config_contexts(config_file=self.kubeconfig)
                self._contexts = {c["name"] for c in contexts}
            except Exception:  # noqa: BLE001 - no kubeconfig: no contexts to name
                self._contexts = set()
        return self._contexts


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
