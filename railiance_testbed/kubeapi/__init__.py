"""A read-only Kubernetes API stand-in serving a cluster dump, for the suite's own tests.

    from railiance_testbed.kubeapi import CONFORMANT_DUMP, KubeAPIStandIn, load_dump

    with KubeAPIStandIn(load_dump(CONFORMANT_DUMP)) as api:
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")

The unmodified ``kubernetes`` client (typed APIs and ``DynamicClient``) and ``kubectl
--kubeconfig`` work against it. Modules: ``dump`` (loading and layering dumps; the overlay
format is described there), ``resources`` (discovery), ``store`` (get/list/paging),
``selectors``, ``tables`` (kubectl's server-side printing), ``status`` (error bodies), ``api``
(request -> answer, no HTTP), ``server`` (the HTTP server), ``helm_release`` (Helm 3 release
Secrets), ``proxy`` (the service proxy: a Service's declared backend answers). ``python -m railiance_testbed.kubeapi --help`` serves a dump from the shell.
"""

from pathlib import Path

from .api import DEFAULT_SERVER_VERSION, DEFAULT_USER, KubeAPI
from .dump import DumpError, load_dump
from .server import KubeAPIStandIn, RequestRecord

DUMPS_DIR = Path(__file__).parent / "dumps"
CONFORMANT_DUMP = DUMPS_DIR / "conformant"
DRIFTED_DIR = DUMPS_DIR / "drifted"
POLICY_REPORTER_DUMP = DUMPS_DIR / "policy-reporter"   # the wgpolicyk8s.io CRDs, to layer over a dump


def drift_overlay(name: str | Path) -> list[Path]:
    """The dump files of one drift scenario (``dumps/drifted/<name>/``), without its expected.yaml."""
    directory = Path(name) if Path(name).is_dir() else DRIFTED_DIR / str(name)
    files = sorted(p for p in directory.glob("*.yaml") if p.name != "expected.yaml")
    if not files:
        raise DumpError(f"{directory}: no drift overlay of that name")
    return files

__all__ = [
    "CONFORMANT_DUMP", "DRIFTED_DIR", "POLICY_REPORTER_DUMP", "drift_overlay", "DEFAULT_SERVER_VERSION", "DEFAULT_USER", "DUMPS_DIR", "DumpError", "KubeAPI",
    "KubeAPIStandIn", "RequestRecord", "load_dump",
]
