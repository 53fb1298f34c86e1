"""Read the Ansible inventory in a subprocess started while pytest still loads (``RAILIANCE_EARLY_INVENTORY=0``: off).

``start(parser, pluginmanager)`` (pytest_addoption) parses the command line as pytest will and starts
``python -m railiance_conformance.early_inventory`` (a new interpreter, its own session, stdin
/dev/null), which reads the inventory as ``inventory_targets`` and writes the ``HostTarget`` list or the
``PolicyError``, pickled, to its stdout; what it and its scripts print goes to its stderr.
``take(option)`` (pytest_configure) returns that answer only if it was computed from the run's own
``INPUTS``, working directory and environment; otherwise None and the caller reads the inventory
itself. A bad inventory's error is the child's, raised once; vault passwords and decrypted values
pass only through the pipe. Bounded: past ``READ_TIMEOUT_S`` the child's process group is killed
and the run stops with a usage error; a child not taken is killed and reaped at ``discard()``
(pytest_unconfigure, exit); the child kills its group when this process is gone (a pipe it watches
closes). A static inventory whose inputs did not change since a run that read it starts no child: its
hosts come from ``inventory_cache``. Why and what it saves: docs/architecture.md.
"""
from __future__ import annotations

import atexit
import json
import os
import pickle
import shlex
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from railiance_conformance import inventory_cache

# the longest the inventory read (ansible-core, vault password and inventory scripts) may take in the child
# (RAILIANCE_INVENTORY_READ_TIMEOUT seconds; default 120): past it the child's whole process group is killed
READ_TIMEOUT_S = float(os.environ.get("RAILIANCE_INVENTORY_READ_TIMEOUT") or 120)
# the option dests the inventory's HostTargets are computed from (inventory_targets)
INPUTS = inventory_cache.OPTIONS
# set by railiance_conformance.ansible_config at import (setdefault): not an input that differs
_OWN_ENV = inventory_cache.OWN_ENV
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)  # the child imports this same code


def inventory_targets(option: Any, *, validate: bool = True) -> list:
    """The ``HostTarget`` of every host of the inventory the options name (``--ansible-inventory``, or
    ansible.cfg's when neither it nor ``--hosts`` is given), [] without one. Raises ``PolicyError``.
    ``validate=False``: the desired values are not checked against the policy schema
    (``targets.validate_targets``), as in the child: the parent validates what it takes."""
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
class _Reader:
    key: tuple
    process: subprocess.Popen[bytes] | None  # None: the answer came from inventory_cache, no child
    alive_fd: int       # the write end of the pipe the child watches: closed when this process ends (-1: none)
    owner: Any          # the plugin manager of the pytest run that started it (compared by identity)
    cache_key: str | None = None    # inventory_cache.input_key at the start: the child's answer is kept under it
    cached: list | None = None      # the hosts inventory_cache kept for these inputs

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid


_pending: _Reader | None = None
_atexit_registered = False


def start(parser: Any, pluginmanager: Any) -> bool:
    """Start the child that reads the inventory, if the command line names one (or ansible.cfg may).
    ``parser``/``pluginmanager``: pytest_addoption's, after the suite's options are added. Returns
    whether a child was started. Never raises: a read that cannot start is simply not made (also when
    the plugin is loaded with ``-p`` before testinfra's options exist, and for ``--help``/``--version``)."""
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
    if getattr(option, "help", False) or getattr(option, "version", False) \
            or not all(hasattr(option, name) for name in INPUTS):
        return False
    try:
        return speculate(option, owner=pluginmanager)
    except Exception:  # noqa: BLE001 - no early read: pytest_configure reads the inventory itself
        return False


def speculate(option: Any, owner: Any = None) -> bool:
    """Start the child that computes ``inventory_targets(option)`` (``option``: the parsed command line,
    at least the ``INPUTS``; ``owner``: the pytest run's plugin manager). Returns whether one was
    started: not when one is pending or when the options name no inventory."""
    global _pending, _atexit_registered
    from railiance_conformance.ansible_config import ansible_cfg_may_apply

    if _pending is not None or not option.ansible_inventory and (option.hosts or not ansible_cfg_may_apply()):
        return False
    cache_key = inventory_cache.input_key(option)
    kept = inventory_cache.load(option, cache_key)
    if kept is not None:  # the same static inventory as a run before: no child, no ansible-core
        _pending = _Reader(_key(option), None, -1, owner, cache_key, kept)
        return True
    inputs = json.dumps({name: getattr(option, name) for name in INPUTS})
    watched, alive_fd = os.pipe()
    try:
        process = subprocess.Popen(
            [sys.executable, "-P", "-c", f"import sys; sys.path.insert(0, {_PACKAGE_ROOT!r}); "
                                   f"from railiance_conformance.early_inventory import main; main()",
             inputs, str(watched)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(watched,),
            start_new_session=True)  # its own process group: killing it stops the scripts it started
        # (-P: the run's working directory, where the inventory may be, shadows no module of the child)
    except OSError:
        os.close(alive_fd)
        return False
    finally:
        os.close(watched)
    _pending = _Reader(_key(option), process, alive_fd, owner, cache_key)
    if not _atexit_registered:
        atexit.register(discard)  # pytest can exit before configure (a bad option): no child left behind
        _atexit_registered = True
    return True


def claim(owner: Any) -> None:
    """Discard a pending read that another pytest run in this process started (``owner``: this run's
    plugin manager): its answer is for that run's command line and that moment."""
    if _pending is not None and _pending.owner is not owner:
        discard()


def take(option: Any) -> list | None:
    """The child's ``HostTarget`` list if it was computed from these options, else None: the caller
    reads the inventory itself. The child is reaped either way. What the child printed (vault or
    inventory scripts' stderr, ansible-core's warnings) is written to this process's stderr now.
    Raises the child's ``PolicyError`` for a bad inventory (a script runs once, as without the child),
    and a ``PolicyError`` naming the bound when the child has not answered within ``READ_TIMEOUT_S``."""
    global _pending
    reader, _pending = _pending, None
    if reader is None:
        return None
    if reader.key != _key(option):
        _stop(reader)
        return None
    if reader.process is None:
        return reader.cached
    try:
        out, err = reader.process.communicate(timeout=READ_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        _stop(reader)
        raise _timed_out(option) from None
    finally:
        os.close(reader.alive_fd)
    if reader.process.returncode != 0:
        return None
    try:
        verdict, value = pickle.loads(out)
    except Exception:  # noqa: BLE001 - cut short or unreadable: read it here
        return None
    if verdict == "unknown":
        return None
    _write_stderr(err)
    if verdict == "error":
        raise value
    targets, reusable = value
    targets = _validated(targets)  # only valid hosts are kept
    if reusable and not err:  # what the read printed is printed by every run that reads it
        inventory_cache.store(option, reader.cache_key, targets)
    return targets


def read(option: Any) -> list:
    """``inventory_targets(option)`` in this process, or the hosts inventory_cache kept for these inputs."""
    kept = inventory_cache.load(option, inventory_cache.input_key(option))
    return kept if kept is not None else inventory_targets(option)


def _validated(targets: list) -> list:
    from railiance_conformance.targets import validate_targets

    validate_targets(targets)  # as inventory_targets does (PolicyError naming the value's file)
    return targets


def discard() -> None:
    """Stop and reap a child whose answer was not taken (a run that never configured the suite)."""
    global _pending
    reader, _pending = _pending, None
    if reader is not None and reader.process is not None:
        _stop(reader)
        os.close(reader.alive_fd)


def _stop(reader: _Reader) -> None:
    """Kill the child's process group (the child and any script ansible-core started), reap the child."""
    if reader.process is None:
        return
    try:
        os.killpg(reader.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        reader.process.kill()
    reader.process.wait()
    for stream in (reader.process.stdout, reader.process.stderr):
        if stream is not None:
            stream.close()


def _timed_out(option: Any) -> Exception:
    from railiance_conformance.policy import PolicyError

    source = getattr(option, "ansible_inventory", None) or "ansible.cfg's inventory"
    return PolicyError(str(source), "", f"reading the inventory did not finish within {READ_TIMEOUT_S:g} s "
                                        f"(a vault password or inventory script that waits for a prompt or a "
                                        f"service?): it and every script it started were killed")


def _write_stderr(data: bytes) -> None:
    """``data`` written where this process's own stderr goes (pytest's capture, a file, the terminal)."""
    if not data:
        return
    sys.stderr.flush()
    buffer = getattr(sys.stderr, "buffer", None)
    if buffer is not None:
        buffer.write(data)
    else:
        sys.stderr.write(data.decode(errors="replace"))
    sys.stderr.flush()


# --- the child --------------------------------------------------------------------------------------------

def main() -> None:
    """The child: ``argv`` = the INPUTS as JSON, the fd of the pipe whose end the parent holds. Writes
    ``pickle((verdict, value))`` to stdout: ("ok", targets), ("error", PolicyError) or ("unknown", None)."""
    inputs, watched = json.loads(sys.argv[1]), int(sys.argv[2])
    os.set_inheritable(watched, False)  # ansible-core's scripts do not hold it
    threading.Thread(target=_die_with_parent, args=(watched,), daemon=True).start()
    answer_fd = os.dup(1)
    os.dup2(2, 1)  # whatever else is printed goes to stderr: stdout carries the answer only
    try:
        targets = inventory_targets(SimpleNamespace(**inputs), validate=False)
        answer: tuple = ("ok", (targets, inventory_cache.reusable(targets)))
    except Exception as exc:  # noqa: BLE001 - the parent raises it (PolicyError pickles as itself)
        answer = ("error", exc)
    try:
        data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - an exception that does not pickle: the parent reads the inventory itself
        data = pickle.dumps(("unknown", None))
    sys.stdout.flush()
    sys.stderr.flush()
    with os.fdopen(answer_fd, "wb") as pipe:
        pipe.write(data)


def _die_with_parent(watched: int) -> None:
    """Block until the parent's end of the pipe closes (the parent discarded the read, or died), then
    kill this process group: nothing of the read outlives the run. Ends with the child otherwise."""
    os.read(watched, 1)
    os.killpg(0, signal.SIGKILL)
