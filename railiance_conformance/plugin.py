"""The pytest plugin: options, configuration checks, host fan-out, findings -> reports.

It only wires hooks; the logic lives in plain modules (policy, targets, probes, controls,
recorder, reporting). Host scenarios (tag ``@hosts``) run once per host target: the tag adds
``usefixtures("target_host")`` and ``pytest_generate_tests`` parametrises it, because
testinfra's own ``host`` parametrisation does not reach pytest-bdd's ``scenarios()`` tests.
"""
from __future__ import annotations

import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from railiance_conformance.checks import CheckPlan
from railiance_conformance.finding import Finding, Status
from railiance_conformance.policy import (DEFAULT_POLICY_DIR, Catalog, PolicyError, check_inventory_yaml, load_catalog,
                                          load_cluster_policy)
from railiance_conformance.probes.cluster import ClusterAccess, ClusterSnapshot
from railiance_conformance.probes.host_facts import HostFactStore, SshOptions
from railiance_conformance.recorder import FindingRecorder, describe, utc_now
from railiance_conformance.reporting import Run, load_reporters, printable
from railiance_conformance.reporting.output import OUTPUT_FAILED, publish
from railiance_conformance.reporting.terminal import render_summary
from railiance_conformance.run_deadline import RunDeadline
from railiance_conformance.controls.boundary import load_layer_map
from railiance_conformance.inventory import VaultOptions, configured_inventory
from railiance_conformance.targets import HostTarget, hosts_from_inventory, hosts_from_urls
from railiance_conformance.vocabulary import control_id_of, load_specs
from railiance_conformance.waivers import load_waivers

LAYERS = ("S1", "S2", "S3", "S4", "S5", "X")      # the enum of policies/schemas/control-catalog.schema.json
SEVERITIES = ("critical", "high", "medium", "low", "info")


@dataclass
class SuiteState:
    catalog: Catalog
    hosts: list[HostTarget]
    recorder: FindingRecorder
    report_dir: Path
    workdir: Path
    ssh: SshOptions
    started_at: str
    run_id: str
    cluster_desired: dict | None = None
    cluster_access: ClusterAccess | None = None
    probe_workers: int = 16
    fact_store: HostFactStore | None = None
    cluster: ClusterSnapshot | None = None
    formats: list[str] = field(default_factory=lambda: ["json", "junit"])
    history: Path | None = None
    diff: dict | None = None
    partial: bool = False
    layer_map: dict = field(default_factory=dict)
    workplan: object | None = None
    repos_dir: Path | None = None
    claims: list | None = None
    history_busy_timeout_s: float = 60.0
    output_failures: tuple = ()      # OutputFailure: a report or the history that could not be written
    output_dir: Path | None = None   # where this run's reports were written (the fallback if not report_dir)
    deadline: "RunDeadline | None" = None
    specs: dict = field(default_factory=dict)          # control id -> vocabulary.ControlSpec (from features/)
    checks: "CheckPlan | None" = None                  # the selected controls' specs, resolved per target


STATE = pytest.StashKey[SuiteState]()


def pytest_addoption(parser: pytest.Parser) -> None:
    # --hosts, --connection, --ssh-config, --ssh-identity-file and --ansible-inventory are
    # testinfra's own options (its plugin is loaded too); the suite reads them as they are.
    group = parser.getgroup("railiance", "Railiance conformance suite")
    group.addoption("--limit", metavar="PATTERN",
                    help="Ansible host pattern within --ansible-inventory (default: all)")
    group.addoption("--policy-dir", metavar="DIR", default=str(DEFAULT_POLICY_DIR),
                    help="directory with controls.yaml, hosts.yaml and schemas/ (default: the bundled policies/)")
    group.addoption("--report-dir", metavar="DIR", default=None,
                    help="where findings.json and junit.xml are written (default: reports/ beside the features)")
    group.addoption("--known-hosts", metavar="PATH", help="known_hosts file (default: ssh's own, ~/.ssh/known_hosts)")
    group.addoption("--host-key-checking", choices=("yes", "accept-new"), default="yes",
                    help="yes (default): unknown or changed host keys are refused; accept-new: trust on first use")
    group.addoption("--connect-timeout", type=int, default=10, metavar="S", help="SSH connect timeout (default 10)")
    group.addoption("--command-timeout", type=int, default=60, metavar="S",
                    help="seconds a host's fact gathering may take (default 60)")
    group.addoption("--report-formats", metavar="NAME[,NAME]",
                    default="json,junit,markdown,html,prometheus,policyreport",
                    help="formats written to --report-dir (default: all: json, junit, markdown, html, "
                         "prometheus, policyreport)")
    group.addoption("--history", metavar="PATH", default=None,
                    help="SQLite run history (default: history.sqlite in --report-dir); 'none' to keep none")
    group.addoption("--ssh-kex", choices=("fast", "openssh-default"), default="fast",
                    help="fast (default): prefer curve25519 key exchange (the suite reads no secrets over SSH); "
                         "openssh-default: OpenSSH's own order, post-quantum first (~140 ms more CPU per host)")
    group.addoption("--kubeconfig", metavar="PATH",
                    help="kubeconfig for the cluster controls (default as kubectl: $KUBECONFIG, ~/.kube/config, "
                         "or the in-cluster service account)")
    group.addoption("--context", metavar="NAME", help="kubeconfig context (default: its current-context)")
    group.addoption("--api-timeout", type=float, default=10.0, metavar="S",
                    help="timeout of one Kubernetes API request (default 10)")
    group.addoption("--repos", metavar="DIR",
                    help="directory with the railiance-* repo checkouts side by side, for the repo.* controls")
    group.addoption("--waivers", metavar="PATH", default=None,
                    help="waivers for known violations (default: waivers.yaml in --policy-dir; 'none' for none)")
    group.addoption("--workplan", metavar="PATH",
                    help="the workplan the suite verifies (e.g. railiance-infra/workplans/RAIL-HO-WP-0004-*.md): "
                         "adds the claims table, claimed status vs. what the controls found")
    group.addoption("--api-page-size", type=int, default=500, metavar="N",
                    help="items per LIST page (limit/continue) on the Kubernetes API (default 500)")
    group.addoption("--probe-workers", type=int, default=16, metavar="N",
                    help="hosts probed at once (default 16)")
    group.addoption("--vault-password-file", "--vault-pass-file", action="append", default=[], metavar="FILE",
                    help="vault password file for the inventory's vaulted variables, as ansible-playbook "
                         "takes it (repeatable; also ANSIBLE_VAULT_PASSWORD_FILE)")
    group.addoption("--vault-id", action="append", default=[], metavar="[LABEL@]FILE",
                    help="vault identity with its password file, as ansible-playbook takes it (repeatable)")
    group.addoption("--api-page-budget", type=int, default=200, metavar="N",
                    help="most LIST pages read per resource kind; more, or a repeated continue token, "
                         "is an error finding (default 200)")
    group.addoption("--run-id", metavar="ID", default=None,
                    help="the id this run is recorded and reported under (default: random; nightly passes its own)")
    group.addoption("--history-busy-timeout", type=float, default=60.0, metavar="S",
                    help="seconds to wait for another process's lock on the history (default 60)")
    group.addoption("--run-timeout", type=float, default=None, metavar="S",
                    help="deadline of the whole run; default derived from the other timeouts "
                         "(see docs/faults.md); past it the run stops as partial")


def pytest_configure(config: pytest.Config) -> None:
    option = config.option
    policy_dir = Path(option.policy_dir)
    try:
        tasks = sorted({c.task for c in load_catalog(policy_dir).controls.values()})
    except PolicyError:
        tasks = []  # reported below, with the file and field
    for name, text in [*((l, "layer") for l in LAYERS), *((t, "workplan task") for t in tasks),
                       *((s, "severity") for s in SEVERITIES),
                       ("hosts", "runs once per host target (--hosts / --ansible-inventory)"),
                       ("cluster", "reads the cluster through the Kubernetes API (--kubeconfig / --context)"),
                       ("repos", "reads the local railiance-* repo checkouts (--repos DIR)")]:
        config.addinivalue_line("markers", f"{name}: {text}")
    try:
        catalog = load_catalog(policy_dir)
        # the features state the desired values (read and validated before any probe); a host's
        # Ansible vars override them (CheckPlan.params)
        features_dir = Path(config.rootpath) / "features"
        specs = load_specs(features_dir, catalog) if features_dir.is_dir() else {}
        defaults: dict = {}
        cluster_desired = load_cluster_policy(policy_dir)
        layer_map = load_layer_map(policy_dir)
        workplan = load_workplan(option.workplan) if option.workplan else None
        policy_source = "features/"
        urls = [u if "://" in u or not option.connection else f"{option.connection}://{u}"
                for u in (option.hosts or "").split(",") if u.strip()]
        hosts = hosts_from_urls(urls, defaults, policy_source=policy_source)
        inventory = option.ansible_inventory or (None if urls else configured_inventory())  # ansible.cfg's
        if inventory:
            for source in [inventory] if isinstance(inventory, str) else inventory:  # ansible.cfg: a list
                check_inventory_yaml(source)  # bounded before ansible-core's own loader reads it
            hosts += hosts_from_inventory(inventory, defaults, limit=option.limit, policy_source=policy_source,
                                          vault=VaultOptions(tuple(option.vault_password_file), tuple(option.vault_id)))
    except PolicyError as exc:
        raise pytest.UsageError(f"railiance-conformance: {exc}") from None
    report_dir = Path(option.report_dir) if option.report_dir else Path(config.rootpath) / "reports"
    formats = [f.strip() for f in option.report_formats.split(",") if f.strip()]
    unknown = set(formats) - set(load_reporters())
    if unknown:
        raise pytest.UsageError(f"railiance-conformance: --report-formats: unknown format(s) {sorted(unknown)}; "
                                f"expected some of {sorted(load_reporters())}")
    history = None if option.history == "none" else Path(option.history or report_dir / "history.sqlite")
    ssh = SshOptions(known_hosts=option.known_hosts, identity_file=option.ssh_identity_file,
                     user_config=option.ssh_config, host_key_checking=option.host_key_checking,
                     connect_timeout=option.connect_timeout, command_timeout=option.command_timeout,
                     kex=option.ssh_kex)
    try:
        waivers = [] if option.waivers == "none" else load_waivers(
            Path(option.waivers) if option.waivers else policy_dir / "waivers.yaml", set(catalog.controls),
            KnownTargets(hosts, layer_map, option.kubeconfig))
    except PolicyError as exc:
        raise pytest.UsageError(f"railiance-conformance: {exc}") from None
    run_id = option.run_id or uuid.uuid4().hex[:12]
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", run_id) or run_id.startswith("."):
        raise pytest.UsageError(f"railiance-conformance: --run-id: {run_id!r} is not 1-64 letters, digits, _ . -")
    config.stash[STATE] = SuiteState(catalog, hosts, FindingRecorder(catalog, waivers), report_dir,
                                     Path(tempfile.mkdtemp(prefix="railiance-conformance-")), ssh, utc_now(),
                                     run_id, cluster_desired,
                                     ClusterAccess(option.kubeconfig, option.context, option.api_timeout, option.api_page_size,
                                                   page_budget=option.api_page_budget),
                                     option.probe_workers, formats=formats, history=history,
                                     layer_map=layer_map, workplan=workplan,
                                     repos_dir=Path(option.repos) if option.repos else None,
                                     history_busy_timeout_s=option.history_busy_timeout, specs=specs)


def scenario_control_id(item) -> str | None:
    """The control id a collected pytest-bdd scenario checks (its title starts with it), or None."""
    from pytest_bdd.scenario import scenario_wrapper_template_registry

    function = getattr(item, "function", None)
    template = scenario_wrapper_template_registry.get(function) if function is not None else None
    return control_id_of(template.name) if template is not None else None


@pytest.hookimpl(tryfirst=True)  # before -m deselects: the catalog's task, layer and severity are markers
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    state = config.stash.get(STATE, None)
    if state is None:
        return
    for item in items:
        control_id = scenario_control_id(item)
        if control_id in state.catalog.controls:
            control = state.catalog.controls[control_id]
            for name in (control.task, control.layer, control.severity):
                item.add_marker(name)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Plan the selected checks (only their facts are gathered); arm the run deadline (feature runs only)."""
    state = session.config.stash.get(STATE, None)
    if state is not None:
        selected = {scenario_control_id(item) for item in session.items} - {None}
        state.checks = CheckPlan(state.catalog, state.specs, selected)
    features = Path(session.config.rootpath) / "features"
    if state is None or not (session.config.option.run_timeout or any(
            Path(str(item.path)).is_relative_to(features) for item in session.items)):
        return
    option = session.config.option
    seconds = option.run_timeout or default_run_timeout(len(state.hosts), option)
    state.deadline = RunDeadline(seconds)
    state.deadline.arm()


def default_run_timeout(hosts: int, option) -> float:
    """hosts in waves of --probe-workers, each bounded by --command-timeout (+5 s to kill and reap);
    the cluster's requests (one per kind and named object, 20 at most) by --api-timeout each; 120 s
    to evaluate and report. ``default_run_timeout(1, defaults)`` -> 385.0."""
    waves = -(-hosts // max(1, option.probe_workers)) if hosts else 0
    return waves * (option.command_timeout + 5) + 20 * option.api_timeout + 120


def load_workplan(path: str):
    from railiance_conformance.workplan import parse_workplan

    try:
        return parse_workplan(Path(path))
    except (OSError, ValueError) as exc:
        raise PolicyError(path, "", f"not a readable workplan: {exc}") from None


class KnownTargets:
    """What a waiver may name: hosts, the layer map's components and namespaces, repos, and the
    kubeconfig's contexts (read only when a waiver names something else: the kubernetes import
    costs start-up time on every run)."""

    def __init__(self, hosts: list[HostTarget], layer_map: dict, kubeconfig: str | None):
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


def pytest_bdd_apply_tag(tag: str, function):
    """``@hosts`` scenarios need the ``target_host`` argument so they can be parametrised."""
    if tag == "hosts":
        pytest.mark.hosts(function)
        pytest.mark.usefixtures("target_host")(function)
        return True
    return None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("hosts") and "target_host" in metafunc.fixturenames:
        hosts = metafunc.config.stash[STATE].hosts
        if hosts:
            metafunc.parametrize("target_host", hosts, ids=[h.name for h in hosts])
        else:  # never silently skipped: one error finding says why
            metafunc.parametrize("target_host", [None], ids=["no-hosts"])


@pytest.fixture(scope="session")
def suite_state(pytestconfig: pytest.Config) -> SuiteState:
    return pytestconfig.stash[STATE]


@pytest.fixture(scope="session")
def fact_store(suite_state: SuiteState, pytestconfig: pytest.Config) -> HostFactStore:
    if suite_state.fact_store is None:
        checks = suite_state.checks or CheckPlan(suite_state.catalog, suite_state.specs)
        suite_state.fact_store = HostFactStore(suite_state.ssh, suite_state.workdir,
                                               workers=suite_state.probe_workers, facts_for=checks.host_facts)
        progress = probe_progress(suite_state.hosts, pytestconfig)
        suite_state.fact_store.prefetch(suite_state.hosts, on_done=progress)
    return suite_state.fact_store


def probe_progress(hosts: list[HostTarget], config: pytest.Config):
    """A rich progress bar on stderr while the hosts are probed (only on a terminal)."""
    import sys

    if not hosts or not sys.stderr.isatty() or config.option.verbose < 0:
        return None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn("probing hosts"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                        TimeElapsedColumn(), console=Console(stderr=True), transient=True)
    task = progress.add_task("", total=len(hosts))
    progress.start()

    def done(facts) -> None:
        progress.update(task, advance=1, description=f"{facts.target}: {'unreachable' if facts.failure else 'ok'}")
        if progress.tasks[0].finished:
            progress.stop()
    return done


@pytest.fixture(scope="session")
def cluster_snapshot(suite_state: SuiteState) -> ClusterSnapshot:
    """The cluster, read lazily and once per run (one LIST per resource kind)."""
    if suite_state.cluster is None:
        suite_state.cluster = ClusterSnapshot(suite_state.cluster_access)
    return suite_state.cluster


@pytest.fixture(scope="session")
def recorder(suite_state: SuiteState) -> FindingRecorder:
    return suite_state.recorder


@pytest.fixture(scope="session")
def check_plan(suite_state: SuiteState) -> CheckPlan:
    """The selected controls' specs from the features, resolved per target."""
    if suite_state.checks is None:
        suite_state.checks = CheckPlan(suite_state.catalog, suite_state.specs)
    return suite_state.checks


@pytest.fixture
def scenario_control(request: pytest.FixtureRequest) -> str:
    """The control id of the running scenario (the first word of its title)."""
    control_id = scenario_control_id(request.node)
    if control_id is None:
        raise pytest.UsageError(f"{request.node.nodeid}: the scenario title does not start with a control id")
    return control_id


def enforce(finding: Finding) -> None:
    """Map a finding to the pytest outcome: pass passes, pending skips, the rest fail."""
    if finding.status in (Status.PASS, Status.WAIVED):
        return
    if finding.status is Status.PENDING:
        pytest.skip(f"pending: {finding.reason}")
    pytest.fail(printable(describe(finding)), pytrace=False)  # target text is inert on the terminal


def _run(state: SuiteState, partial: bool = False) -> Run:
    return Run(run_id=state.run_id, started_at=state.started_at, finished_at=utc_now(),
               findings=tuple(state.recorder.findings),
               targets=tuple(sorted({f.target for f in state.recorder.findings})), partial=partial,
               workplan=state.catalog.workplan,
               connections={h.name: h.connection_evidence(state.ssh.identity_file) for h in state.hosts})


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(STATE, None)
    if state is None:
        return
    if state.deadline is not None:
        state.deadline.disarm()  # writing the reports is never interrupted
    if state.fact_store is not None:
        state.fact_store.close()
    shutil.rmtree(state.workdir, ignore_errors=True)
    if state.recorder.findings:
        state.partial = bool(exitstatus == pytest.ExitCode.INTERRUPTED or session.shouldstop
                             or (state.deadline is not None and state.deadline.expired))
        run = _run(state, partial=state.partial)
        if state.deadline is not None and state.deadline.expired:
            run = replace(run, deadline=f"run deadline of {state.deadline.seconds:g} s "
                                        f"exceeded: the checks not yet run have no finding")
        if state.workplan is not None:
            from railiance_conformance.claims import claims_table

            state.claims = tuple(claims_table(state.workplan, run.findings))
            run = replace(run, claims=state.claims, workplan=state.workplan.id)
        # history and reports together: both have this run or neither (see reporting/output.py)
        published = publish(run, state.report_dir, state.formats, state.history, state.history_busy_timeout_s)
        state.diff = published.run.diff
        state.output_failures, state.output_dir = published.failures, published.report_dir
        if published.failures:
            session.exitstatus = OUTPUT_FAILED
            import sys

            for failure in published.failures:
                print(f"railiance-conformance: could not write {failure}", file=sys.stderr)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is None or not state.recorder.findings:
        return
    terminalreporter.section("railiance conformance")
    run = replace(_run(state, partial=state.partial), claims=state.claims, diff=state.diff)
    terminalreporter.write(render_summary(run, width=terminalreporter._tw.fullwidth,
                                          color=terminalreporter.hasmarkup))
    names = ", ".join(load_reporters()[f].filename for f in state.formats)
    terminalreporter.write_line(f"reports in {state.output_dir or state.report_dir}: {names}"
                                + (f"; history: {state.history}" if state.history else ""))
    for failure in state.output_failures:
        terminalreporter.write_line(f"NOT WRITTEN {failure} (exit status {OUTPUT_FAILED})", red=True, bold=True)
    if state.deadline is not None and state.deadline.expired:
        terminalreporter.write_line(f"run deadline of {state.deadline.seconds:g} s exceeded: partial run", red=True)
