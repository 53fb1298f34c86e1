"""Read the Ansible inventory in a forked child while pytest is still loading plugins.

Reading an inventory costs a run about 0.3 s on the critical path (importing ansible-core is most of
it: ``python -X importtime``), before any host can be probed. The suite's options are known as soon as
its plugin registers them, while pytest still has the step modules, pytest-bdd and the rest of the
start-up ahead of it. So ``start(parser, pluginmanager)`` (from the plugin's ``pytest_addoption``)
parses the command line as pytest will (ini ``addopts``, ``PYTEST_ADDOPTS``, then the arguments),
and forks a child that reads the inventory exactly as ``inventory_targets`` would in
``pytest_configure``, and sends back the ``HostTarget`` list, pickled, through a pipe.

It is a speculation and never changes a result:

- ``take(option)`` in ``pytest_configure`` uses the child's answer only if the inputs it was
  computed from are the ones the real option parse gave (``INPUTS``), in the same working directory
  and environment; anything else (other inputs, the child failed, was killed, or sent something
  unreadable) and the inventory is read in-process as before, so a bad inventory's error is the
  same ``PolicyError`` either way;
- no fork when the process already has threads (a fork copies held locks, not the threads that
  would release them: pytest run in-process beside a test server), without ``os.fork``, for
  ``--help``/``--version``, or with ``RAILIANCE_EARLY_INVENTORY=0``;
- the child reads nothing from stdin (``/dev/null``), runs in its own process group, dies with this
  process (``PR_SET_PDEATHSIG``) and leaves through ``os._exit`` (no atexit hooks, no flush of the
  parent's buffers). What it prints (a vault or inventory script's stderr) is sent back and written
  out by ``take`` when the inventory would have been read in-process; a bad inventory's
  ``PolicyError`` is sent back and raised, so a script runs once either way;
- an answer never taken (pytest stopped before configure, another run in the same process, options
  that changed) is stopped with its whole process group and reaped: at ``discard()``
  (``pytest_unconfigure``, and at exit), or when the next run ``claim``s.

One difference remains by design: if another input error (a missing ``--workplan``, a bad catalog)
stops the run before the inventory would have been read, the child may already have run a vault or
inventory script; its output is then dropped with the child.

Vault passwords and the values they decrypt pass only through the pipe between the two processes.
The read is bounded: a child that has not answered within ``READ_TIMEOUT_S`` (a vault password or
inventory script waiting for a prompt or a service) is killed with its process group, and the run
stops with a usage error naming the inventory and the bound.
"""
from __future__ import annotations

import atexit
import os
import pickle
import select
import shlex
import signal
import sys
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any

# the longest the inventory read (ansible-core, vault password and inventory scripts) may take in the child
# (RAILIANCE_INVENTORY_READ_TIMEOUT seconds; default 120): past it the child's whole process group is killed
READ_TIMEOUT_S = float(os.environ.get("RAILIANCE_INVENTORY_READ_TIMEOUT") or 120)
# the option dests the inventory's HostTargets are computed from (inventory_targets)
INPUTS = ("ansible_inventory", "hosts", "connection", "limit", "vault_password_file", "vault_id")
# set by railiance_conformance.inventory at import (setdefault), so present in one process and not yet
# in the other: not an input that differs
_OWN_ENV = frozenset({"ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED", "ANSIBLE_INVENTORY_UNPARSED_WARNING",
                      "ANSIBLE_LOCALHOST_WARNING"})


def inventory_targets(option: Any, *, validate: bool = True) -> list:
    """The ``HostTarget`` of every host of the inventory the options name (``--ansible-inventory``, or
    ansible.cfg's when neither it nor ``--hosts`` is given), [] without one. Raises ``PolicyError``.
    ``validate=False``: the desired values are not checked against the policy schema
    (``targets.validate_targets``), as in the child: jsonschema is not imported there."""
    from railiance_conformance.ansible_config import configured_inventory
    from railiance_conformance.ansible_vault import VaultOptions
    from railiance_conformance.inventory import hosts_from_inventory
    from railiance_conformance.yaml_input import check_inventory_yaml

    urls = [u for u in (option.hosts or "").split(",") if u.strip()]
    inventory = option.ansible_inventory or (None if urls else configured_inventory())  # ansible.cfg's
    if not inventory:
        return []
    for source in [inventory] if isinstance(inventory, str) else inventory:  # ansible.cfg: a list
        check_inventory_yaml(source)  # bounded before ansible-core's own loader reads it
    return hosts_from_inventory(inventory, {}, limit=option.limit, policy_source="features/",
                                vault=VaultOptions(tuple(option.vault_password_file or ()),
                                                   tuple(option.vault_id or ())), validate=validate)


def _key(option: Any) -> tuple:
    values = tuple(_frozen(getattr(option, name, None)) for name in INPUTS)
    environment = tuple(sorted((k, v) for k, v in os.environ.items() if k not in _OWN_ENV))
    return values, os.getcwd(), environment


def _frozen(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


@dataclass
class _Pending:
    key: tuple
    pid: int
    fd: int
    owner: Any          # weak reference to the plugin manager of the pytest run that started it (or None)


_pending: _Pending | None = None
_atexit_registered = False


def start(parser: Any, pluginmanager: Any) -> bool:
    """Fork the child that reads the inventory, if the command line names one (or ansible.cfg may).
    ``parser``/``pluginmanager``: pytest_addoption's, after the suite's options are added. Returns
    whether a child was started. Never raises: a speculation that cannot start is simply not made
    (also when the plugin is loaded with ``-p`` before testinfra's options exist)."""
    claim(pluginmanager)  # a read left by an earlier run in this process (it ended before configure)
    if _pending is not None or os.environ.get("RAILIANCE_EARLY_INVENTORY", "1") == "0":
        return False
    try:
        config = pluginmanager.get_plugin("pytestconfig")
        # as Config.parse builds them: the ini file's addopts, then PYTEST_ADDOPTS, then the arguments
        args = [*config.getini("addopts"), *shlex.split(os.environ.get("PYTEST_ADDOPTS", "")),
                *map(str, config.invocation_params.args)]
        option = parser.parse_known_args(args)
    except (Exception, SystemExit):  # noqa: BLE001 - pytest reports a bad command line itself, later
        return False
    # with -p railiance_conformance.plugin the suite's options come before testinfra's (an entry point):
    # --ansible-inventory and --hosts are not known yet, so nothing can be told from the command line
    if getattr(option, "help", False) or getattr(option, "version", False) \
            or not all(hasattr(option, name) for name in INPUTS):
        return False
    try:
        return speculate(option, owner=pluginmanager)
    except Exception:  # noqa: BLE001 - no speculation: pytest_configure reads the inventory itself
        return False


def speculate(option: Any, owner: Any = None) -> bool:
    """Fork the child that computes ``inventory_targets(option)`` (``option``: the parsed command line,
    at least the ``INPUTS``; ``owner``: the pytest run's plugin manager). Returns whether one was
    started: not when one is pending, without ``os.fork``, when this process has other threads, or
    when the options name no inventory.

    The child runs in its own process group (so stopping it stops the vault or inventory scripts
    ansible-core started), dies with this process (``PR_SET_PDEATHSIG``), reads /dev/null, and writes
    its stdout and stderr to files it sends back with its answer: ``take`` writes them out where this
    process's own would have gone, when the inventory would have been read here."""
    global _pending, _atexit_registered
    if _pending is not None or not hasattr(os, "fork") or threading.active_count() != 1:
        return False
    from railiance_conformance.ansible_config import ansible_cfg_may_apply

    if not option.ansible_inventory and (option.hosts or not ansible_cfg_may_apply()):
        return False
    key = _key(option)
    try:
        owner_ref = None if owner is None else weakref.ref(owner)
    except TypeError:  # not weakly referable: held, as it is compared by identity only
        owner_ref = lambda: owner  # noqa: E731
    parent = os.getpid()
    read_fd, write_fd = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_fd)
        os.close(write_fd)
        return False
    if pid == 0:  # the child: never returns into pytest
        status = 0
        try:
            os.setpgid(0, 0)
            _die_with_parent(parent)
            os.close(read_fd)
            _child(option, write_fd)
        except BaseException:  # noqa: BLE001
            status = 1
        finally:
            os._exit(status)
    try:
        os.setpgid(pid, pid)  # also here: whichever runs first, the group exists before a kill
    except OSError:
        pass
    os.close(write_fd)
    _pending = _Pending(key, pid, read_fd, owner_ref)
    if not _atexit_registered:
        atexit.register(discard)  # pytest can exit before configure (a bad option): no child left behind
        _atexit_registered = True
    return True


def _die_with_parent(parent: int) -> None:
    """PR_SET_PDEATHSIG(SIGKILL): the kernel kills the child if the parent dies first (Linux)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - not Linux: discard() at exit still stops it
        pass
    if os.getppid() != parent:  # the parent died before the prctl took effect
        os._exit(1)


def _flush_std() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001
            pass


def _child(option: Any, write_fd: int) -> None:
    import tempfile

    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    os.dup2(out.fileno(), 1)
    os.dup2(err.fileno(), 2)
    try:
        answer: tuple = ("ok", inventory_targets(option, validate=False))
    except Exception as exc:  # noqa: BLE001 - the parent raises it (PolicyError pickles as itself)
        answer = ("error", exc)
    except BaseException:  # noqa: BLE001 - interrupted: the parent reads the inventory itself
        answer = ("unknown", None)
    _flush_std()
    printed = []
    for handle in (out, err):
        handle.seek(0)
        printed.append(handle.read())
    try:
        data = pickle.dumps((*answer, *printed), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - an exception that does not pickle: the parent reads it itself
        data = pickle.dumps(("unknown", None, *printed))
    with os.fdopen(write_fd, "wb") as pipe:
        pipe.write(data)


def claim(owner: Any) -> None:
    """Discard a pending read that another pytest run in this process started (``owner``: this run's
    plugin manager): its answer is for that run's command line and that moment."""
    # compared by identity, held weakly: an id() could be reused by the next run's plugin manager
    if _pending is not None and (_pending.owner is None or _pending.owner() is not owner):
        discard()


def take(option: Any) -> list | None:
    """The child's ``HostTarget`` list if it was computed from these options (see the module's
    docstring), else None: the caller reads the inventory itself. The child is reaped either way.
    What the child printed (vault or inventory scripts' stderr, ansible-core's warnings) is written to
    this process's stdout and stderr now. Raises the child's ``PolicyError`` for a bad inventory, so a
    password or inventory script runs once, as without the child."""
    global _pending
    pending, _pending = _pending, None
    if pending is None:
        return None
    if pending.key != _key(option):
        _stop(pending)
        return None
    chunks = []
    deadline = time.monotonic() + READ_TIMEOUT_S
    try:
        with os.fdopen(pending.fd, "rb", buffering=0) as pipe:
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([pipe], [], [], left)[0]:
                    _kill_group(pending.pid)
                    os.waitpid(pending.pid, 0)
                    pending = None
                    raise _timed_out(option)
                chunk = pipe.read(1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
    finally:
        status = os.waitpid(pending.pid, 0)[1] if pending is not None else 1
    if status != 0:
        return None
    try:
        verdict, value, out, err = pickle.loads(b"".join(chunks))
    except Exception:  # noqa: BLE001 - cut short or unreadable: read it here
        return None
    if verdict == "unknown":
        return None
    _write(1, out)
    _write(2, err)
    if verdict == "error":
        raise value
    from railiance_conformance.targets import validate_targets

    validate_targets(value)  # as inventory_targets does (PolicyError naming the value's file)
    return value


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _timed_out(option: Any):
    from railiance_conformance.policy import PolicyError

    source = getattr(option, "ansible_inventory", None) or "ansible.cfg's inventory"
    return PolicyError(str(source), "", f"reading the inventory did not finish within {READ_TIMEOUT_S:g} s "
                                        f"(a vault password or inventory script that waits for a prompt or a "
                                        f"service?): it and every script it started were killed")


def _write(fd: int, data: bytes) -> None:
    _flush_std()
    while data:
        data = data[os.write(fd, data):]


def discard() -> None:
    """Stop and reap a child whose answer was not taken (a run that never configured the suite)."""
    global _pending
    pending, _pending = _pending, None
    if pending is not None:
        _stop(pending)


def _stop(pending: _Pending) -> None:
    """Kill the child's process group (the child and any script ansible-core started), reap the child."""
    try:
        os.killpg(pending.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pending.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        os.waitpid(pending.pid, 0)
    except ChildProcessError:
        pass
    os.close(pending.fd)
