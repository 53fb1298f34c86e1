"""Fixture checkouts of the railiance-* repos as real git repos, conformant or drifted.

    repos = build_repos(tmp_path, "drifted")   # {"railiance-infra": Path(...), ...}

Four repos are built, one per layer that has a repo (S4 has none yet; the layer map names only
these four): railiance-infra (S1), railiance-cluster (S2), railiance-platform (S3),
railiance-apps (S5). Each is ``git init``-ed and committed, with a Makefile, helm/ values
(``*.sops.yaml`` with realistic sops metadata: age recipient, lastmodified, mac, version; values
``ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]``, never real ciphertext), docs and workplans.

The drifted variant breaks every repo.* control and boundary.values.location once:
railiance-platform lacks ``valkey-status`` and its valkey values hold one plaintext leaf
(``auth.password`` = ``PLAINTEXT_SENTINEL``), RAIL-PL-WP-0001 is still ``active``,
``deploy-stack`` prints S3 before S2, and gitea-values.sops.yaml was never moved: still in
railiance-cluster/helm, absent from railiance-apps, no MOVED.md tombstone; railiance-infra's goss files
(goss/*.yaml, make verify) still test a 2 GiB /swapfile and only the soft nproc limit.
"""
from __future__ import annotations

import base64
import hashlib
import os
import subprocess
from pathlib import Path
from typing import Any, Literal

import yaml

PLAINTEXT_SENTINEL = "SENTINEL-plaintext-sops-leaf-9c1e"
AGE_RECIPIENT = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
REPO_NAMES = ("railiance-infra", "railiance-cluster", "railiance-platform", "railiance-apps")
Variant = Literal["conformant", "drifted"]


def _b64(seed: str, size: int) -> str:
    out = b""
    while len(out) < size:
        out += hashlib.sha256(f"{seed}/{len(out)}".encode()).digest()
    return base64.b64encode(out[:size]).decode()


def enc(value: Any, seed: str) -> str:
    """``enc("s3cret", "valkey:auth.password")`` -> ``ENC[AES256_GCM,data:…,iv:…,tag:…,type:str]`` (fake ciphertext)."""
    kind = {bool: "bool", int: "int", float: "float"}.get(type(value), "str")
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return (f"ENC[AES256_GCM,data:{_b64('d' + seed + text, len(text.encode())) if text else ''},"
            f"iv:{_b64('i' + seed, 32)},tag:{_b64('t' + seed, 16)},type:{kind}]")


def _encrypt(node: Any, seed: str, rule: str, keys: tuple[str, ...] = ()) -> Any:
    """Encrypt like sops: every leaf, except keys ending in _unencrypted, or (``rule`` = a key set) only
    leaves below one of those keys (encrypted_regex '^(data|stringData)$')."""
    if isinstance(node, dict):
        return {k: _encrypt(v, f"{seed}.{k}", rule, (*keys, k)) for k, v in node.items()}
    if isinstance(node, list):
        return [_encrypt(v, f"{seed}[{i}]", rule, keys) for i, v in enumerate(node)]
    if rule == "suffix" and any(k.endswith("_unencrypted") for k in keys):
        return node
    if rule == "data" and not any(k in ("data", "stringData") for k in keys):
        return node
    return enc(node, seed)


def sops_file(plain: dict, seed: str, *, rule: str = "suffix", leave_plain: dict | None = None) -> str:
    """A ``*.sops.yaml`` text: ``plain`` encrypted (fake) plus ``leave_plain`` merged in unencrypted."""
    body = _encrypt(plain, seed, rule)
    for key, value in (leave_plain or {}).items():  # a leaf someone edited without sops
        body.setdefault(key, {}).update(value) if isinstance(value, dict) else body.__setitem__(key, value)
    rule_line = "    encrypted_regex: ^(data|stringData)$" if rule == "data" else "    unencrypted_suffix: _unencrypted"
    age = "\n".join(f"            {_b64('age' + seed + str(i), 48)}" for i in range(4))
    return (yaml.safe_dump(body, sort_keys=False, width=1000, indent=4)
            + "sops:\n    age:\n"
            + f"        - recipient: {AGE_RECIPIENT}\n          enc: |\n"
            + f"            -----BEGIN AGE ENCRYPTED FILE-----\n{age}\n            -----END AGE ENCRYPTED FILE-----\n"
            + "    lastmodified: \"2026-04-09T18:02:11Z\"\n"
            + f"    mac: {enc('mac-' + seed, 'mac' + seed)}\n{rule_line}\n    version: 3.9.4\n")


def _secret(name: str, namespace: str, data: dict[str, str]) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
            "type": "Opaque", "stringData": data}


def build_repos(root: Path, variant: Variant) -> dict[str, Path]:
    """Create the repos under ``root`` (one directory per repo); returns ``{repo name: path}``."""
    if variant not in ("conformant", "drifted"):
        raise ValueError(f"variant must be 'conformant' or 'drifted', not {variant!r}")
    drifted = variant == "drifted"
    repos: dict[str, Path] = {}
    for name in REPO_NAMES:
        files = CONTENTS[name](drifted)
        path = Path(root) / name
        for relative, text in files.items():
            (path / relative).parent.mkdir(parents=True, exist_ok=True)
            (path / relative).write_text(text)
        _commit(path, f"{name}: {variant} fixture")
        repos[name] = path
    return repos


def _commit(path: Path, message: str) -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(path), "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_AUTHOR_NAME": "Railiance Testbed", "GIT_AUTHOR_EMAIL": "testbed@railiance.invalid",
           "GIT_COMMITTER_NAME": "Railiance Testbed", "GIT_COMMITTER_EMAIL": "testbed@railiance.invalid",
           "GIT_AUTHOR_DATE": "2026-04-10T12:00:00Z", "GIT_COMMITTER_DATE": "2026-04-10T12:00:00Z"}
    for argv in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"],
                 ["git", "-c", "commit.gpgsign=false", "commit", "-q", "-m", message]):
        subprocess.run(argv, cwd=path, env=env, check=True, capture_output=True, timeout=30)


# --- the repos' contents: {relative path: text} per repo; recipes use real tabs ---------------------

def _make(*rules: str) -> str:
    """A Makefile from ``"target: deps ## help\\n<recipe line>\\n..."`` blocks (recipe lines get a tab)."""
    out = [(".DEFAULT_GOAL := help\nSHELL := /bin/bash\n\nhelp: ## list the targets\n"
            "\t@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | sort\n")]
    for rule in rules:
        head, *recipe = rule.strip("\n").split("\n")
        out.append(head + "\n" + "".join(f"\t{line}\n" for line in recipe))
    return "\n".join(out)


def _infra(drifted: bool) -> dict[str, str]:
    order = ["S1", "S3", "S2", "S4", "S5"] if drifted else ["S1", "S2", "S3", "S4", "S5"]
    steps = {"S1": "make tf-apply && make converge && make verify   (railiance-infra)",
             "S2": "make converge && make smoke                     (railiance-cluster)",
             "S3": "make db-deploy && make valkey-deploy            (railiance-platform)",
             "S4": "(Argo CD still at cluster level; no S4 workplan yet)",
             "S5": "make gitea-deploy                               (railiance-apps)"}
    deploy = "\n".join(['@echo "Railiance stack, S1→S5 in dependency order: confirm each layer before the next"']
                       + [f'@echo "{layer}: {steps[layer]}"' for layer in order]
                       + ['@echo "     make state-hub-deploy, make activity-core-deploy (railiance-apps, T09/T10)"'])
    return {
        "Makefile": _make("tf-apply: ## terraform apply (Hetzner/HostEurope)\nterraform -chdir=terraform apply",
                          "converge: ## converge CoulombCore with Ansible\n"
                          "ansible-playbook ansible/playbooks/bootstrap.yaml -c local --become -l CoulombCore",
                          "verify: ## goss verify\ngoss -g goss/coulombcore.yaml validate",
                          "bootstrap: ## converge then verify\n$(MAKE) converge\n+$(MAKE) verify",
                          f"deploy-stack: ## print the S1→S5 deploy sequence (runs nothing)\n{deploy}"),
        "docs/deploy-stack.md": DEPLOY_STACK_DOC,
        **_goss(drifted),
        "ansible/inventory/group_vars/all/secrets.sops.yaml": sops_file(
            {"hetzner_api_token": "hz-token", "hosteurope_password": "he-pass", "backup_s3_secret": "s3"}, "infra"),
        "README.md": "# railiance-infra\n\nS1: hosts (Terraform + Ansible). See docs/deploy-stack.md.\n",
    }


def _goss(drifted: bool) -> dict[str, str]:
    """railiance-infra's goss files (make verify): the entry file includes one file per role. Drifted:
    the swap test still says 2 GiB, and the nproc limit was never given a test (only its soft half)."""
    swap_bytes = (2 if drifted else 4) * 1024 ** 3
    soft = ("command:\n  \"su - tegwick -c 'ulimit -Su'\":\n    exit-status: 0\n    stdout: ['512']\n")
    hard = ("  \"su - tegwick -c 'ulimit -Hu'\":\n    exit-status: 0\n    stdout: ['1024']\n")
    return {
        "goss/coulombcore.yaml": "gossfile:\n  swapfile.yaml: {}\n  limits.yaml: {}\n",
        "goss/swapfile.yaml": (f"file:\n  /swapfile:\n    exists: true\n    mode: \"0600\"\n    owner: root\n"
                               f"    size: {swap_bytes}\nkernel-param:\n  vm.swappiness:\n    value: \"10\"\n"),
        "goss/limits.yaml": soft + ("" if drifted else hard),
    }


def _cluster(drifted: bool) -> dict[str, str]:
    files = {
        "Makefile": _make("converge: ## S2 cluster baseline\nansible-playbook playbooks/cluster.yaml",
                          "smoke: ## smoke tests\nkubectl get nodes && kubectl -n ingress-nginx get pods",
                          "backup: ## backup before touching live data\n./scripts/backup.sh",
                          "cnpg-operator: ## CNPG operator (S3 concern, waived)\n"
                          "helm upgrade --install cnpg cnpg/cloudnative-pg -n cnpg-system --create-namespace"),
        "helm/cert-manager-values.yaml": "crds:\n  enabled: true\nprometheus:\n  enabled: false\n",
        "helm/ingress-nginx-values.yaml": "controller:\n  service:\n    type: LoadBalancer\n",
        "secrets/backup-s3-credentials.sops.yaml": sops_file(
            _secret("backup-s3-credentials", "databases", {"ACCESS_KEY_ID": "AKIA0000", "ACCESS_SECRET_KEY": "x"}),
            "cluster-backup", rule="data"),
        "SCOPE.md": "# railiance-cluster scope (S2)\n\nk3s baseline, cert-manager, ingress-nginx.\n",
    }
    if drifted:
        files["helm/gitea-values.sops.yaml"] = _gitea_values()
    else:
        files["helm/MOVED.md"] = ("# Moved out of this repo\n\n"
                                  "gitea-values.sops.yaml → railiance-apps/helm/ (2026-03-27, RAIL-HO-WP-0004-T06)\n")
    return files


def _platform(drifted: bool) -> dict[str, str]:
    rules = ["db-deploy: ## apply the gitea-db cnpg Cluster\nkubectl apply -n databases -f helm/gitea-db-cluster.yaml",
             "db-status: ## cnpg status of gitea-db\nkubectl cnpg status gitea-db -n databases",
             "db-shell: ## psql on the primary\nkubectl cnpg psql gitea-db -n databases",
             ("valkey-deploy: ## standalone Valkey release\nhelm upgrade --install valkey bitnami/valkey -n platform "
              "--create-namespace -f <(sops -d helm/valkey-values.sops.yaml)"),
             "valkey-status: ## Valkey pods and PVC\nkubectl -n platform get pods,pvc -l app.kubernetes.io/instance=valkey"]
    valkey = {"architecture": "standalone", "auth": {"enabled": True, "password": "valkey-pass"},
              "replica": {"replicaCount": 1}, "persistence": {"enabled": True, "size": "2Gi"},
              "note_unencrypted": "rotate the password with make valkey-deploy"}
    status = "active" if drifted else "superseded"
    return {
        "Makefile": _make(*(rules[:-1] if drifted else rules)),
        "helm/gitea-db-cluster.yaml": GITEA_DB_CLUSTER,
        "helm/valkey-values.sops.yaml": sops_file(
            valkey, "valkey", leave_plain={"auth": {"password": PLAINTEXT_SENTINEL}} if drifted else None),
        "secrets/gitea-db-credentials.sops.yaml": sops_file(
            _secret("gitea-db-credentials", "databases", {"username": "gitea", "password": "db-pass"}),
            "gitea-db", rule="data"),
        "workplans/RAIL-PL-WP-0001-platform-baseline.md": (
            f"---\nid: RAIL-PL-WP-0001\ntype: workplan\ntitle: Platform baseline (Bitnami postgresql-ha)\n"
            f"repo: railiance-platform\nstatus: {status}\nsuperseded_by: RAIL-HO-WP-0004\n---\n\n"
            "# Platform baseline\n\nTargeted Bitnami postgresql-ha; cnpg is the deployed operator now.\n"),
    }


def _gitea_values() -> str:
    return sops_file({"postgresql-ha": {"enabled": False}, "redis-cluster": {"enabled": False},
                      "gitea": {"config": {"database": {"DB_TYPE": "postgres", "PASSWD": "db-pass",
                                                        "HOST": "gitea-db-rw.databases.svc.cluster.local:5432"},
                                           "cache": {"ADAPTER": "redis", "HOST": "redis://:pw@valkey:6379/0"}}}},
                     "gitea")


def _apps(drifted: bool) -> dict[str, str]:
    files = {
        "Makefile": _make("gitea-deploy: ## Deploy / upgrade Gitea (S5 workload)\n"
                          "helm upgrade --install gitea gitea-charts/gitea \\\n"
                          "    -f <(sops -d helm/gitea-values.sops.yaml) --namespace gitea --create-namespace",
                          "gitea-status: ## Check Gitea health\nkubectl get pods -n gitea\n"
                          "kubectl cnpg status gitea-db -n databases"),
        "SCOPE.md": "# railiance-apps scope (S5)\n\nGitea; state-hub and activity-core next (T09, T10).\n",
    }
    if not drifted:
        files["helm/gitea-values.sops.yaml"] = _gitea_values()
    return files


CONTENTS = {"railiance-infra": _infra, "railiance-cluster": _cluster, "railiance-platform": _platform,
            "railiance-apps": _apps}

GITEA_DB_CLUSTER = """apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata:
  name: gitea-db
  namespace: databases
spec:
  instances: 1
  imageName: ghcr.io/cloudnative-pg/postgresql:16.4
  storage:
    size: 10Gi
  bootstrap:
    initdb:
      database: gitea
      owner: gitea
      secret:
        name: gitea-db-credentials
"""

DEPLOY_STACK_DOC = """# Deploying the Railiance stack from scratch

The canonical "I have a clean server, now what?" runbook (RAIL-HO-WP-0004 T08). `make deploy-stack`
in railiance-infra prints the same sequence; confirm each layer before the next.

## Pre-conditions checklist

- [ ] Hetzner / HostEurope API credentials in `ansible/inventory/group_vars/all/secrets.sops.yaml`
- [ ] the operator's age key in `~/.config/sops/age/keys.txt`
- [ ] SOPS can decrypt: `sops -d helm/valkey-values.sops.yaml >/dev/null` in railiance-platform
- [ ] an active backup before any phase that touches live data (`make backup` in railiance-cluster)

## State Hub tunnel bring-up (ops-bridge)

Bring the tunnel up from the workstation before S5: `bridge up state-hub-coulombcore` (ops-bridge),
then check the State Hub answers through the tunnel.

## Sequence

1. S1: `make tf-apply && make converge && make verify` (railiance-infra)
2. S2: `make converge && make smoke` (railiance-cluster)
3. S3: `make db-deploy && make valkey-deploy` (railiance-platform)
4. S4: Argo CD is still at cluster level; no S4 workplan yet
5. S5: `make gitea-deploy` (railiance-apps)

## Recovery

If a node is overloaded or a converge goes wrong, follow the recovery runbook of INC-002
(the-custodian/ops/incidents/2026-03-26-coulombcore-runaway-agent-overload.md).
"""
