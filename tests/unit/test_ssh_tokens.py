"""ssh's IdentityFile expansion (ssh_config(5) TOKENS, ENVIRONMENT VARIABLES, misc.c tilde_expand_filename)."""
from __future__ import annotations

import pytest

from railiance_conformance.resources.ssh_tokens import (
    ExpansionFails,
    SshContext,
    UnknownVariable,
    expand_identity_file,
    login_environment,
)

CTX = SshContext(local_user="tegwick", uid=1000, home="/home/tegwick", hostname="localhost", remote_user="git",
                 port=30022, host_arg="gitea-local", local_hostname="coulombcore.example",
                 environment=login_environment("tegwick", "/home/tegwick", "/bin/bash"), homes={"git": "/srv/git"})


@pytest.mark.parametrize("written,loaded", [
    ("%d/.ssh/id_ed25519_gitea", "/home/tegwick/.ssh/id_ed25519_gitea"),
    ("${HOME}/.ssh/id_ed25519_gitea", "/home/tegwick/.ssh/id_ed25519_gitea"),
    ("~/.ssh/id_%u@%h", "/home/tegwick/.ssh/id_tegwick@localhost"),
    ("~//.ssh/k", "/home/tegwick/.ssh/k"),
    ("~", "/home/tegwick/"),
    ("~git/.ssh/k", "/srv/git/.ssh/k"),
    ("/keys/%r_%p_%n_%i_%L_%%", "/keys/git_30022_gitea-local_1000_coulombcore_%"),
    ("/keys/%l-${USER}", "/keys/coulombcore.example-tegwick"),
    ("/keys/$HOME", "/keys/$HOME"),  # only ${VAR} is expanded
])
def test_expansion(written, loaded):
    assert expand_identity_file(written, CTX) == loaded


def test_what_ssh_refuses_and_what_the_suite_cannot_know():
    with pytest.raises(ExpansionFails, match="unknown key %z"):
        expand_identity_file("~/.ssh/%z", CTX)
    with pytest.raises(ExpansionFails, match="no such user"):
        expand_identity_file("~nobody/.ssh/k", CTX)
    with pytest.raises(UnknownVariable, match=r"\$\{KEYS_DIR\}"):
        expand_identity_file("${KEYS_DIR}/id", CTX)
