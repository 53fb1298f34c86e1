"""Step definitions for the S1 host features (T01 swap, T02 limits and slice, T07 Gitea SSH).

Steps stay thin: the Given step hands over the host's facts (gathered once per host, in one
SSH command), each Then step evaluates one control through the recorder.
"""
from __future__ import annotations

import pytest
from pytest_bdd import given, parsers, then

import railiance_conformance.controls.host  # noqa: F401  (registers the host evaluators)
from railiance_conformance.controls import EVALUATORS
from railiance_conformance.plugin import enforce
from railiance_conformance.probes.host_facts import HostFacts
from railiance_conformance.secret_mask import evaluate_with_secrets


@given("the host's facts, gathered in one SSH command", target_fixture="host_facts")
def _(target_host, fact_store) -> HostFacts:
    if target_host is None:
        return HostFacts("(no hosts)", failure="no host targets given: use --hosts URL or --inventory PATH")
    return fact_store.get(target_host)


@pytest.fixture
def check_host(target_host, host_facts: HostFacts, recorder):
    """``check_host("host.swap.file")``: evaluate one control on this scenario's host.

    ``overrides`` replace desired values (the cluster's NodePort); an exception in their
    place is the reason the control could not be verified.
    """
    def check(control_id: str, overrides: dict | Exception | None = None) -> None:
        def evaluate():
            if isinstance(overrides, Exception):
                raise overrides
            desired = {**(target_host.desired if target_host is not None else {}), **(overrides or {})}
            # a desired value that came from the Ansible vault is *** in the Finding (secret_mask.py)
            return evaluate_with_secrets(EVALUATORS[control_id], host_facts, desired,
                                         target_host.secret_keys if target_host is not None else ())

        enforce(recorder.evaluate(control_id, host_facts.target, evaluate))
    return check


@then("/swapfile is a regular root-owned file with mode 0600 of exactly swap_size_gb GiB")
def _(check_host):
    check_host("host.swap.file")


@then("the kernel lists /swapfile as active swap, its size within one page of the file")
def _(check_host):
    check_host("host.swap.active")


@then("an uncommented /etc/fstab entry mounts /swapfile as swap")
def _(check_host):
    check_host("host.swap.fstab")


@then("vm.swappiness is swap_swappiness now")
def _(check_host):
    check_host("host.swappiness.live")


@then("the sysctl.d file that wins precedence sets vm.swappiness to swap_swappiness")
def _(check_host):
    check_host("host.swappiness.persisted")


@then("the operator user has the policy uid")
def _(check_host):
    check_host("host.user.uid")


@then("pam_limits resolves the user's nproc limits to nproc_soft and nproc_hard")
def _(check_host):
    check_host("host.nproc.configured")


@then("a login session of the user has those nproc limits")
def _(check_host):
    check_host("host.nproc.effective")


@then("the user slice drop-ins set MemoryMax to user_memory_max and MemorySwapMax to user_memory_swap_max")
def _(check_host):
    check_host("host.slice.configured")


@then("systemd reports those MemoryMax and MemorySwapMax values for the user slice")
def _(check_host):
    check_host("host.slice.effective")


@then("the user's ed25519 key for Gitea exists with mode 0600, owned by the user")
def _(check_host):
    check_host("host.gitea_ssh.key")


@then("the user's ssh config has the gitea-local Host block with Gitea's SSH NodePort")
def _(check_host, gitea_nodeport):
    check_host("host.gitea_ssh.config", gitea_nodeport)


@then(parsers.parse('"{control_id}" stays pending on the host until a human approves the task'))
def _(control_id: str, check_host):
    check_host(control_id)


@then("every listed repo checkout has an ssh://git@gitea-local/ origin")
def _(check_host):
    check_host("host.gitea_ssh.remotes")
