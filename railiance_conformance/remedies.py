"""The fix for a check that could not run: it addresses *why* it could not verify, never the drift.

Example: ``remedy_for_error("ssh failed: ssh: connect to host 10.0.0.9 port 22: Connection refused")``
-> ``"The host did not accept an SSH connection: check that it is up, ..."``.

A control's catalog remediation ("make converge …") fixes drift; an error finding (status
``error``: unreachable host, refused credentials, a changed host key, an RBAC denial, a timeout,
an unreadable file) carries the remedy for its reason instead, chosen by the first rule below
whose pattern occurs in the reason. The rules follow the messages OpenSSH, the kubernetes client
and the fact script produce (ssh(1) DIAGNOSTICS, Kubernetes API Status reasons).
"""
from __future__ import annotations

import re

_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p, re.IGNORECASE), fix) for p, fix in (
    (r"exec credential plugin",
     "The kubeconfig's exec credential plugin (users[].user.exec.command) did not give a credential in time: "
     "run it by hand with the same environment, fix what it waits for (a login prompt, an unreachable "
     "identity provider), or use a kubeconfig with a token; raise --api-timeout if it is merely slow."),
    (r"helm release secret",
     "A Helm release Secret's payload cannot be decoded (release: base64, gzip, JSON): helm cannot read that "
     "release either; check it with helm -n NAMESPACE history RELEASE and repair or delete the broken revision."),
    (r"interrupted by (?:sig|the run deadline)",
     "The run was stopped before this control finished (a signal, or the run deadline): re-run it; if a CI "
     "job's time limit sent the signal, give the job more time or the suite a shorter --run-timeout."),
    (r"cannot be reached from the host|cannot reach the push url",
     "The git server the operator's ssh config names did not answer from the host: check Gitea's SSH Service and "
     "NodePort (kubectl -n gitea get svc gitea-ssh) and the Host block's HostName/Port (ssh -G gitea-local)."),
    (r"not cgroup v2",
     "Boot the host with the unified cgroup hierarchy (cgroup v2: the default since Debian 11 and systemd 247; "
     "remove systemd.unified_cgroup_hierarchy=0 from the kernel command line) so the kernel's caps can be read."),
    (r"could not start a process for the probe",
     "The host refused to start a process for the probe (fork failed with EAGAIN): the login user is at its "
     "nproc cap (ulimit -u; pam_limits nproc) or the host at kernel.pid_max or its cgroup's pids.max. Find what "
     "holds the processes (ps -u USER | wc -l), or log in as a user with room, and re-run."),
    (r"from the api server or its proxy|too many requests|throttled|etcdserver",
     "The Kubernetes API server itself failed or throttled the request (429: API Priority and Fairness; 5xx: "
     "etcd leader change, overload, no endpoint): this says nothing about the target. Re-run; if it persists, "
     "check the API server's health (kubectl get --raw '/readyz?verbose') and its flow-control limits."),
    (r"api server unreachable|api error|could not reach the api|max retries exceeded|kubeconfig",
     "The Kubernetes API could not be read: check --kubeconfig/--context (or the in-cluster ServiceAccount) "
     "and that the API server is reachable from where the suite runs."),
    (r"remote host identification has changed|host key of .* changed",
     "The host presented a different SSH key than the known_hosts the suite uses: verify the new key's fingerprint "
     "out of band (on the host: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then remove the old line "
     "(ssh-keygen -R HOST -f KNOWN_HOSTS; the reason names the file and line) and add the new key; if the key "
     "should not have changed, treat it as an attack and do not connect."),
    (r"host key verification failed|host key .* changed",
     "The host's SSH key is unknown or changed: verify its fingerprint out of band, then add it to the known_hosts "
     "the suite uses (--known-hosts, or your --ssh-config); --host-key-checking accept-new trusts a first-seen key."),
    (r"permission denied \((?:publickey|password|keyboard)|authentication failed|too many authentication failures|"
     r"no supported authentication",
     "The host refused the suite's SSH credentials: give a key the login user accepts (--ssh-identity-file, "
     "ansible_ssh_private_key_file, IdentityFile in --ssh-config) and the right user (ansible_user, ssh://USER@)."),
    (r"connection refused|no route to host|network is unreachable|could not resolve hostname|"
     r"name or service not known|connect to host .* (?:timed out|operation timed out)|connection closed by|"
     r"closed by remote host|connection reset|exit status 255 without a message",
     "The host did not accept an SSH connection: check that it is up and that sshd listens on the address and "
     "port the inventory gives (ansible_host/ansible_port), and any jump host on the way (ssh -v); if a login "
     "by hand hangs or ends at once too, sshd's log names the PAM session module (pam_limits and its files)."),
    (r"ssh blocks reading its configuration",
     "The user's ssh hangs reading its configuration, so every ssh (and git over ssh) of the user would: look at "
     "the Include lines of ~/.ssh/config and /etc/ssh/ssh_config (an included FIFO or device) and any Match exec "
     "(ssh -G -v ALIAS as the user shows the last file read); make them regular files, then re-run."),
    (r"bytes the probe reads of a config file|grep ran out of its memory bound|answer was larger than",
     "A file the control reads is far larger than a config file (or endless: a symlink into /proc, a file without "
     "line ends): the component would choke on it too. Remove it or replace it with the intended small file, "
     "then re-run."),
    (r"pam session did not open",
     "The host's sshd refuses every login of this user: its PAM session does not open (sshd's log: "
     "pam_open_session). Look at the session modules' files: an entry of /etc/security/limits.d or limits.conf "
     "that is not a regular file (a device, a FIFO, a directory) or cannot be read; remove it or make it a "
     "regular file, then re-run."),
    (r"is (?:a|an) [\w ()]+, not a regular file",
     "A file the control reads is not a regular file (a FIFO, a device, a socket, a directory named like a "
     "config file): the suite never opens one (it could block), and the component itself would block on it "
     "or fail. Remove it or make it a regular file, then re-run."),
    (r"no answer within|timed out|timeout|deadline",
     "The target did not answer in time: find what blocks it (a hung sshd, a slow API server, a stuck mount), "
     "or raise --command-timeout / --api-timeout if it is merely slow."),
    (r"forbidden|rbac|\b403\b",
     "The suite's Kubernetes identity lacks a read permission (RBAC): grant the verb and resource the reason names "
     "(deploy/kubernetes/ has the ClusterRole), then re-run."),
    (r"unauthorized|\b401\b|token .*expired|certificate",
     "The API server did not accept the suite's credentials: refresh the kubeconfig (--kubeconfig, --context) "
     "or the ServiceAccount token."),
    (r"not installed|no such kind|could not find the requested resource|crd",
     "A kind the control reads is not served by the cluster: install the operator whose CRD provides it, "
     "or check that the kubeconfig points at the right cluster."),
    (r"systemd is not running",
     "This control asks systemd: run it against a host booted with systemd (PID 1); containers without "
     "systemd cannot answer it."),
    (r"cannot resolve as|neither .* nor root",
     "Log in as the operator user or as root (ansible_user / ssh://USER@), so the suite can read the user's "
     "own configuration as the user's programs read it."),
    (r"too many levels of symbolic links|symbolic link loop|symlink loop|\beloop\b",
     "A symbolic link on the path the reason names points back into itself (a loop): fix or remove the link "
     "(ls -l, readlink -f); no reader of the file can follow it, so the component does not see it either."),
    (r"permission denied|cannot list|cannot read|not readable|unreadable",
     "The login user may not read what the control needs: run the suite as the operator user or root, "
     "or grant read access to the file or directory the reason names."),
    (r"internal error",
     "This is a bug in railiance-conformance, not a fault of the target: report it with this finding "
     "(reason and evidence); the control stays unverified until the suite is fixed."),
    (r"unexpected output",
     "The target answered in a form the suite cannot read: look at what the reason names on the target "
     "(a hand-edited or truncated file, an unsupported version); if the output is valid there, report it "
     "as a bug of railiance-conformance with this finding."),
))

DEFAULT = ("The control could not be verified: fix what the reason names and re-run; the drift fix "
           "does not apply until the state can be read.")


def remedy_for_error(reason: str) -> str:
    """The remedy for an error finding's ``reason`` (plain text; never the catalog's drift fix)."""
    for pattern, fix in _RULES:
        if pattern.search(reason or ""):
            return fix
    return DEFAULT
