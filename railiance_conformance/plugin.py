"""The pytest plugin, wiring only: the options, ``pytest_configure`` building one ``Suite`` (kept under a
StashKey and registered: its methods are the hooks, as pytest's junitxml plugin does), the ``@hosts``
tag as a marker, and the fixtures through which steps get what they need.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from railiance_conformance import early_inventory, start_up

# The rest is imported when first used, not here: pytest calls pytest_addoption only once this module is
# imported, and from there early_inventory reads the inventory in a subprocess while pytest loads the rest
# (the steps import these same modules meanwhile).
from railiance_conformance.levels import LAYERS, SEVERITIES
from railiance_conformance.paths import DEFAULT_POLICY_DIR

if TYPE_CHECKING:
    from railiance_conformance.finding import Finding
    from railiance_conformance.probes.cluster import ClusterSnapshot
    from railiance_conformance.probes.host_facts import HostFactStore
    from railiance_conformance.recorder import FindingRecorder
    from railiance_conformance.suite import Suite
    from railiance_conformance.targets import HostTarget

SUITE = pytest.StashKey["Suite"]()


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
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
                    help="fast (default): prefer classical key exchange, P-256 ECDH then curve25519 (the suite "
                         "reads no secrets over SSH); "
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
    group.addoption("--publish-policyreport", action="store_true", default=False,
                    help="after the reports are written, apply the run's ClusterPolicyReport to the cluster "
                         "(server-side apply, field manager railiance-conformance): the suite's only write")
    group.addoption("--settle", type=float, default=0.0, metavar="SECONDS",
                    help="re-probe what drifted or could not be verified, with backoff, until it passes or SECONDS "
                         "have passed since the first probe (default 0: probe once); findings record attempts, "
                         "when each first passed and whether it flapped")
    group.addoption("--run-timeout", type=float, default=None, metavar="S",
                    help="deadline of the whole run; default derived from the other timeouts "
                         "(see docs/faults.md); past it the run stops as partial")
    # every option the inventory is read with is known now: read it in a subprocess while pytest loads the rest
    early_inventory.start(parser, pluginmanager)
    start_up.begin()  # no garbage collection while pytest and the suite load (see start_up.py)


def pytest_configure(config: pytest.Config) -> None:
    from railiance_conformance.policy import PolicyError
    from railiance_conformance.settings import SuiteSettings
    from railiance_conformance.suite import Suite

    option = config.option
    early_inventory.claim(config.pluginmanager)  # not a read an earlier run in this process left
    try:
        settings = SuiteSettings.from_options(option, Path(config.rootpath))
    except PolicyError as exc:
        from railiance_conformance.redact import redact_text

        raise pytest.UsageError(f"railiance-conformance: {redact_text(str(exc))}") from None
    tasks = sorted({c.task for c in settings.catalog.controls.values()})
    for name, text in [*((l, "layer") for l in LAYERS), *((t, "workplan task") for t in tasks),
                       *((s, "severity") for s in SEVERITIES),
                       ("hosts", "runs once per host target (--hosts / --ansible-inventory)"),
                       ("cluster", "reads the cluster through the Kubernetes API (--kubeconfig / --context)"),
                       ("repos", "reads the local railiance-* repo checkouts (--repos DIR)")]:
        config.addinivalue_line("markers", f"{name}: {text}")
    suite = Suite(settings, option, Path(config.rootpath))
    config.stash[SUITE] = suite
    config.pluginmanager.register(suite, "railiance-conformance-suite")


def pytest_unconfigure(config: pytest.Config) -> None:
    early_inventory.discard()
    start_up.start_up_done(freeze=False)  # a run that ended before its collection finished
    suite = config.stash.get(SUITE, None)
    if suite is not None and config.pluginmanager.is_registered(suite):
        config.pluginmanager.unregister(suite)


@pytest.hookimpl(tryfirst=True)  # before pytest-bdd's own (firstresult), however the plugin was loaded
def pytest_bdd_apply_tag(tag: str, function):
    """``@hosts`` scenarios are marked ``hosts``: one item per control evaluates every host
    (``evaluation.py``), and ``-k`` selects hosts by name."""
    if tag == "hosts":
        pytest.mark.hosts(function)
        return True
    return None


# --- fixtures: what steps may use -------------------------------------------------------------------

@pytest.fixture(scope="session")
def suite(pytestconfig: pytest.Config) -> Suite:
    return pytestconfig.stash[SUITE]


@pytest.fixture(scope="session")
def recorder(suite: Suite) -> FindingRecorder:
    return suite.recorder


@pytest.fixture(scope="session")
def fact_store(suite: Suite, pytestconfig: pytest.Config) -> HostFactStore:
    return suite.facts(on_done=probe_progress(list(suite.settings.hosts), pytestconfig))


@pytest.fixture(scope="session")
def cluster_snapshot(suite: Suite) -> ClusterSnapshot:
    """The cluster, read lazily and once per run (one LIST per resource kind)."""
    return suite.snapshot()


@pytest.fixture(scope="session")
def repos_dir(suite: Suite) -> Path | None:
    """--repos DIR: the railiance-* checkouts side by side (None when not given)."""
    return suite.settings.repos_dir


@pytest.fixture
def scenario_control(request: pytest.FixtureRequest) -> str:
    """The control id of the running scenario (the first word of its title)."""
    from railiance_conformance.suite import scenario_control_id

    control_id = scenario_control_id(request.node)
    if control_id is None:
        raise pytest.UsageError(f"{request.node.nodeid}: the scenario title does not start with a control id")
    return control_id


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


@pytest.fixture
def check(suite: Suite, scenario_control: str, request: pytest.FixtureRequest):
    """``check()``: the findings of this scenario's control on the targets this item covers -> pass/fail/skip."""
    def run() -> None:
        hosts = suite.hosts_for(request.node) if request.node.get_closest_marker("hosts") else None
        findings = suite.evaluation.findings(scenario_control, hosts)
        if not findings:
            pytest.skip("no target of this control is selected")
        suite.finding_failures.add(request.node.nodeid)  # its failure is the findings: the summary shows them
        enforce_all(findings)
    return run


def enforce_all(findings: list[Finding]) -> None:
    """One item, many targets: it fails listing every target that drifted or could not be verified;
    it is skipped when every target is pending; otherwise it passes."""
    from railiance_conformance.finding import Status
    from railiance_conformance.recorder import describe
    from railiance_conformance.reporting import printable

    problems = [f for f in findings if not f.status.holds and f.status is not Status.PENDING]
    if problems:
        pytest.fail("\n".join(printable(describe(f)) for f in problems), pytrace=False)
    if all(f.status is Status.PENDING for f in findings):
        pytest.skip(f"pending: {findings[0].reason}")
