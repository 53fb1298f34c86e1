"""The check kinds, one module per subject. ``KIND_MODULES`` is the one registry of them: importing this
package imports each listed module, whose ``@check_kind`` evaluators fill ``vocabulary.CHECK_KINDS``
(``vocabulary.check_kinds()`` imports it on first use). A new kind module is added to this list;
nothing else imports a kind module for its side effect.
"""
from __future__ import annotations

from railiance_conformance.controls import (
                                            boundary,
                                            cgroup,
                                            cluster,
                                            cnpg,
                                            files,
                                            git,
                                            gitea,
                                            goss,
                                            helm,
                                            host,
                                            objects,
                                            pam_limits,
                                            processes,
                                            repo,
                                            secrets,
                                            services,
                                            ssh,
                                            swap,
                                            sysctl,
                                            systemd,
                                            users,
                                            workloads,
)

KIND_MODULES = (
    # hosts
    files, swap, sysctl, users, pam_limits, systemd, ssh, git, processes, cgroup, host,
    # clusters
    workloads, objects, cnpg, services, secrets, helm, gitea, cluster, boundary,
    # repos
    repo, goss,
)
