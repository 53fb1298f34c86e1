"""A run's settings, read and validated before any probe: ``SuiteSettings.from_options(option, rootpath)``.

Raises ``PolicyError`` (file, field, problem) for any bad input: catalog, features, cluster policy,
layer map, workplan, hosts, inventory, waivers, report formats, run id, the paths options name.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from railiance_conformance import derived_cache, early_inventory
from railiance_conformance.controls.boundary import load_layer_map
from railiance_conformance.coverage import load_coverage
from railiance_conformance.policy import Catalog, PolicyError, load_catalog, load_cluster_policy
from railiance_conformance.probes.cluster import ClusterAccess
from railiance_conformance.probes.host_facts import SshOptions
from railiance_conformance.reporting import load_reporters
from railiance_conformance.targets import HostTarget, hosts_from_urls
from railiance_conformance.vocabulary import ControlSpec, load_specs
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
        # Ansible vars override them (CheckPlan.params). Kept between runs while the files are unchanged.
        features_dir = Path(rootpath) / "features"
        catalog, specs, cluster_desired, layer_map = derived_policy(policy_dir, features_dir)
        workplan = load_workplan(option.workplan) if option.workplan else None
        coverage = load_coverage(policy_dir, catalog.controls) if workplan is not None else None
        urls = [u if "://" in u or not option.connection else f"{option.connection}://{u}"
                for u in (option.hosts or "").split(",") if u.strip()]
        hosts = hosts_from_urls(urls, {}, policy_source="features/")
        # read by the subprocess started at plugin load when it could be (early_inventory), else here;
        # either way kept between runs for a static inventory whose inputs did not change (inventory_cache)
        early = early_inventory.take(option)
        hosts += early if early is not None else early_inventory.read(option)
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


def derived_policy(policy_dir: Path, features_dir: Path) -> tuple:
    """(catalog, specs, cluster desired state, layer map) of ``policy_dir`` and ``features_dir``, read and
    validated (``PolicyError``), kept between runs while the files are unchanged (``derived_cache``)."""
    def derive() -> tuple:
        catalog = load_catalog(policy_dir)
        return catalog, load_specs(features_dir, catalog) if features_dir.is_dir() else {}, \
            load_cluster_policy(policy_dir), load_layer_map(policy_dir)
    return derived_cache.cached("policy", [policy_dir, features_dir], derive)


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
