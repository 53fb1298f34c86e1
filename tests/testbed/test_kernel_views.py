"""A host state's ``kernel`` map is what the host's kernel shows, on both container backends: a
/proc/sys key no control read before and a /sys file, from data alone (the one loop per backend
that binds ``hosts.kernel_views``). The VM writes /proc/sys values with sysctl (tests/vm/)."""
from __future__ import annotations

import subprocess
from dataclasses import replace

import pytest

from railiance_testbed.hosts import CONFORMANT
from railiance_testbed.nshosts import NamespaceTestbed
from railiance_testbed.nspawn import SSH_PORT, Testbed

THP = "/sys/kernel/mm/transparent_hugepage/enabled"
STATE = replace(CONFORMANT, name="kernelviews", git_server=False,
                kernel={**CONFORMANT.kernel, "/proc/sys/vm/overcommit_memory": "2", THP: "always madvise [never]"})


@pytest.mark.parametrize("backend", [NamespaceTestbed, Testbed], ids=["namespace", "nspawn"])
def test_the_kernel_map_is_what_the_host_shows(backend, tmp_path):
    with backend([STATE], tmp_path) as bed:
        host = bed.hosts[0]
        shown = subprocess.run(["ssh", "-F", str(bed.ssh_config), "-p", str(SSH_PORT), f"tegwick@{host.address}",
                                f"cat /proc/sys/vm/overcommit_memory /proc/sys/vm/swappiness {THP}"],
                               capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == ["2", "10", "always madvise [never]"]
