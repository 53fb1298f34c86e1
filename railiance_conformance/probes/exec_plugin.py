"""A client-side bound on a kubeconfig's exec credential plugin (``users[].user.exec``).

The official client runs the plugin (``kubernetes.config.exec_provider.ExecProvider.run``) with
``Popen(...).communicate()`` and no timeout, and ``KubeConfigLoader._load_from_exec_plugin`` only
logs its failure: a plugin that never answers holds the run until its deadline, and one that fails
leaves the client without credentials and the cause nowhere. ``BoundedExecProvider`` is the same
protocol (client.authentication.k8s.io ``ExecCredential`` in ``KUBERNETES_EXEC_INFO``, the status
read from stdout, its apiVersion checked, as ``ExecProvider.run``) with three differences: the
plugin runs in a session of its own, never interactive (no terminal to prompt on in CI); after
``timeout_s`` seconds its whole process group is killed; and every failure is recorded so that
``ClusterAccess.client`` raises it, naming the plugin, instead of going on without credentials.
Example: ``with collect_failures() as failures: config.load_kube_config(...)`` then
``failures`` -> ``["exec credential plugin /usr/local/bin/oidc-login gave no credential within 10 s ..."]``.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import Iterator

from kubernetes.client import ApiClient
from kubernetes.config import kube_config
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.exec_provider import ExecProvider
from requests import RequestException
from requests_oauthlib import OAuth2Session  # type: ignore[import-untyped]  # no stubs installed

from railiance_conformance.redact import redact_text

_local = threading.local()


class BoundedExecProvider(ExecProvider):
    """``ExecProvider`` with a wall-time bound (``timeout_s``, set by ``install``)."""

    timeout_s: float = 10.0

    def run(self, previous_response=None):
        name = self.args[0]
        try:
            return self._run(previous_response)
        except ConfigException as exc:
            message = f"exec credential plugin {name}: {exc}" if "exec credential plugin" not in str(exc) else str(exc)
            failures = getattr(_local, "failures", None)
            if failures is not None:
                failures.append(message)
            raise ConfigException(message) from None

    def _run(self, previous_response=None):
        info = {"apiVersion": self.api_version, "kind": "ExecCredential", "spec": {"interactive": False}}
        if previous_response:
            info["spec"]["response"] = previous_response
        if self.cluster:
            info["spec"]["cluster"] = self.cluster.value
            for extension in self.cluster.value.get("extensions") or []:
                if extension.get("name") == "client.authentication.k8s.io/exec":
                    info["spec"]["cluster"]["config"] = extension.get("extension")
                    break
        self.env["KUBERNETES_EXEC_INFO"] = json.dumps(info)
        try:
            process = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       stdin=subprocess.DEVNULL, cwd=self.cwd, env=self.env, text=True,
                                       start_new_session=True)
        except OSError as exc:
            raise ConfigException(f"exec credential plugin {self.args[0]} could not start: {exc.strerror}") from None
        pipes = _pipe_names(process)
        try:
            stdout, stderr = process.communicate(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            exited = process.poll()
            holders = _kill_holders(pipes)
            _kill_group(process)
            if exited is not None:
                raise ConfigException(
                    f"exec credential plugin {self.args[0]} exited (status {exited}) but a process it started "
                    f"kept its output open past {self.timeout_s:g} s (--api-timeout; "
                    f"{', '.join(holders) or 'gone before it could be named'}): it was killed (client-go runs the "
                    "plugin with cmd.Run and a buffer as its stdout, so kubectl would wait for it too). "
                    "A plugin must close its stdout and stderr in anything it leaves running") from None
            raise ConfigException(f"exec credential plugin {self.args[0]} gave no credential within "
                                  f"{self.timeout_s:g} s (--api-timeout): its process group was killed") from None
        except BaseException:
            _kill_holders(pipes)
            _kill_group(process)
            raise
        finally:
            try:
                os.killpg(process.pid, signal.SIGKILL)  # whatever it left running in its group
            except (ProcessLookupError, PermissionError):
                pass
            _kill_holders(pipes)  # and what left its group (setsid) still holding its output
        if process.returncode != 0:
            last = (stderr or "").strip().splitlines()[-1:] or [""]
            raise ConfigException(f"exec credential plugin {self.args[0]} exited with status "
                                  f"{process.returncode}" + (f": {last[0][:300]}" if last[0] else ""))
        try:
            data = json.loads(stdout)
        except ValueError as exc:
            raise ConfigException(f"exec credential plugin {self.args[0]} printed no ExecCredential JSON: "
                                  f"{exc}") from None
        for key in ("apiVersion", "kind", "status"):
            if not isinstance(data, dict) or key not in data:
                raise ConfigException(f"exec credential plugin {self.args[0]}: malformed response, no {key!r}")
        if data["apiVersion"] != self.api_version:
            raise ConfigException(f"exec credential plugin {self.args[0]}: apiVersion {data['apiVersion']} "
                                  f"does not match {self.api_version}")
        return data["status"]


def _pipe_names(process: subprocess.Popen) -> set[str]:
    """``{"pipe:[INODE]", ...}``: the plugin's stdout and stderr pipes as /proc/PID/fd links name them."""
    names = set()
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            names.add(f"pipe:[{os.fstat(stream.fileno()).st_ino}]")
    return names


def _kill_holders(pipes: set[str]) -> list[str]:
    """SIGKILL every other process holding one of ``pipes`` open (a plugin's child that called setsid()
    is outside its process group, and after the plugin exits its parent is init: only the pipe it
    holds still ties it to the plugin). Returns ``["pid 123 (sleep)", ...]`` (proc(5): /proc/PID/fd)."""
    killed = []
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        pid = int(fd_dir.parent.name)
        if pid == os.getpid():
            continue
        try:
            holds = any(os.readlink(fd) in pipes for fd in fd_dir.iterdir())
        except OSError:  # gone, or not ours to read
            continue
        if holds:
            try:
                name = (fd_dir.parent / "comm").read_text().strip()
                os.kill(pid, signal.SIGKILL)
            except OSError:
                continue
            killed.append(f"pid {pid} ({name})")
    return killed


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        process.communicate(timeout=5)
    except subprocess.TimeoutExpired:  # a grandchild that left the group holds a pipe
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
        process.wait(timeout=5)


class _BoundedOidcDiscovery(ApiClient):
    """The ``ApiClient`` ``KubeConfigLoader._refresh_oidc`` builds to GET the IdP's
    ``/.well-known/openid-configuration``: the same call, with ``timeout_s`` (the client passes none)."""

    timeout_s: float = 10.0

    def __init__(self, configuration=None, *args, **kwargs):
        if configuration is not None and configuration.retries is None:
            configuration.retries = 0  # urllib3's default is 3 retries: four timeouts, not one
        super().__init__(configuration, *args, **kwargs)

    def call_api(self, method, url, header_params=None, body=None, post_params=None, _request_timeout=None):
        if not str(url).endswith("/.well-known/openid-configuration"):  # new_client_from_config's clients
            return super().call_api(method, url, header_params, body, post_params, _request_timeout)
        try:
            return super().call_api(method, url, header_params, body, post_params,
                                    _request_timeout=_request_timeout or self.timeout_s)
        except Exception as exc:  # noqa: BLE001 - urllib3's timeouts and connection errors alike
            raise ConfigException(f"the kubeconfig's oidc auth-provider could not refresh its expired id-token: "
                                  f"GET {redact_text(url)} failed (each request bounded by {self.timeout_s:g} s, "
                                  f"--api-timeout): {redact_text(_short(exc))}") from None


class _BoundedOAuth2Session(OAuth2Session):
    """``requests_oauthlib.OAuth2Session`` whose ``refresh_token`` (the IdP's token endpoint) has a
    timeout: ``_refresh_oidc`` passes none, and requests then waits for ever."""

    timeout_s: float = 10.0

    def refresh_token(self, token_url, *args, **kwargs):
        kwargs["timeout"] = kwargs.get("timeout") or self.timeout_s
        try:
            return super().refresh_token(token_url, *args, **kwargs)
        except RequestException as exc:
            raise ConfigException(f"the kubeconfig's oidc auth-provider could not refresh its expired id-token: "
                                  f"its token endpoint {redact_text(token_url)} failed (each request bounded by "
                                  f"{self.timeout_s:g} s, --api-timeout): {redact_text(_short(exc))}") from None


def _short(exc: BaseException) -> str:
    """``ReadTimeoutError: ... Read timed out.``: the innermost cause urllib3/requests name, one line."""
    reason = getattr(exc, "reason", None) or (exc.args[0] if getattr(exc, "args", None) else None)
    inner = reason if isinstance(reason, BaseException) else exc
    return f"{type(inner).__name__}: {str(inner).splitlines()[0][:200] if str(inner) else ''}"


def install(timeout_s: float) -> None:
    """Make the official client's kubeconfig loader run exec plugins through ``BoundedExecProvider``
    (also when it refreshes an expired credential later), bounded by ``timeout_s`` seconds."""
    BoundedExecProvider.timeout_s = float(timeout_s)
    kube_config.ExecProvider = BoundedExecProvider  # type: ignore[misc]  # replacing the loader's name is the point


@contextlib.contextmanager
def bounded_oidc_refresh(timeout_s: float) -> Iterator[None]:
    """While the block loads a kubeconfig, bound the oidc auth-provider's refresh of an expired id-token
    (``KubeConfigLoader._refresh_oidc``, run by the load: the IdP's discovery GET and its token endpoint,
    each with ``timeout_s`` and no retry; the client sets none). The loader's own names are restored
    afterwards, so no other ApiClient built through ``kube_config`` (``new_client_from_config``) changes."""
    _BoundedOidcDiscovery.timeout_s = _BoundedOAuth2Session.timeout_s = float(timeout_s)
    saved = kube_config.ApiClient, kube_config.OAuth2Session
    kube_config.ApiClient, kube_config.OAuth2Session = (  # type: ignore[misc]  # the loader's names, for the block
        _BoundedOidcDiscovery, _BoundedOAuth2Session)
    try:
        yield
    finally:
        kube_config.ApiClient, kube_config.OAuth2Session = saved  # type: ignore[misc]


@contextlib.contextmanager
def collect_failures() -> Iterator[list[str]]:
    """The plugin failures (messages) of this thread while the block runs."""
    failures: list[str] = []
    previous = getattr(_local, "failures", None)
    _local.failures = failures
    try:
        yield failures
    finally:
        _local.failures = previous
