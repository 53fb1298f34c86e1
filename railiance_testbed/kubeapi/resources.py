"""Which resources the stand-in serves, and the discovery documents that announce them.

    >>> registry = ResourceRegistry(objects)
    >>> registry.find("postgresql.cnpg.io", "v1", "clusters").kind
    'Cluster'

Resources come from three places, in this order of precedence:
1. ``CustomResourceDefinition`` objects in the dump (plural, kind, scope, shortNames,
   served versions, additionalPrinterColumns), as the apiextensions server would announce them;
2. the built-in kinds below (always announced, like on a real cluster);
3. any other kind found in the dump (plural guessed from the kind, scope from the object).
Every resource is announced read-only (verbs get, list, watch) except those in ``APPLYABLE``
(the ClusterPolicyReport the suite may publish), which add ``patch``: server-side apply only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

READ_VERBS = ["get", "list", "watch"]
# the one write the stand-in accepts: server-side apply of these (group, plural) (see api.KubeAPI._apply)
APPLYABLE = frozenset({("wgpolicyk8s.io", "clusterpolicyreports")})


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    printer_columns: tuple[dict, ...] = field(default=(), compare=False)

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def discovery_entry(self) -> dict:
        entry = {"name": self.plural, "singularName": self.kind.lower(), "namespaced": self.namespaced,
                 "kind": self.kind, "verbs": READ_VERBS + (["patch", "delete"] if (self.group, self.plural) in APPLYABLE else [])}
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        if self.categories:
            entry["categories"] = list(self.categories)
        return entry


def _builtin(group_version: str, kind: str, plural: str, namespaced=True, short=(), all_category=False):
    group, _, version = group_version.rpartition("/")
    return ResourceType(group, version, kind, plural, namespaced, tuple(short), ("all",) if all_category else ())


BUILTINS = [
    _builtin("v1", "ConfigMap", "configmaps", short=["cm"]),
    _builtin("v1", "Endpoints", "endpoints", short=["ep"]),
    _builtin("v1", "Event", "events", short=["ev"]),
    _builtin("v1", "LimitRange", "limitranges", short=["limits"]),
    _builtin("v1", "Namespace", "namespaces", False, ["ns"]),
    _builtin("v1", "Node", "nodes", False, ["no"]),
    _builtin("v1", "PersistentVolumeClaim", "persistentvolumeclaims", short=["pvc"]),
    _builtin("v1", "PersistentVolume", "persistentvolumes", False, ["pv"]),
    _builtin("v1", "Pod", "pods", short=["po"], all_category=True),
    _builtin("v1", "ReplicationController", "replicationcontrollers", short=["rc"], all_category=True),
    _builtin("v1", "ResourceQuota", "resourcequotas", short=["quota"]),
    _builtin("v1", "Secret", "secrets"),
    _builtin("v1", "ServiceAccount", "serviceaccounts", short=["sa"]),
    _builtin("v1", "Service", "services", short=["svc"], all_category=True),
    _builtin("apps/v1", "ControllerRevision", "controllerrevisions"),
    _builtin("apps/v1", "DaemonSet", "daemonsets", short=["ds"], all_category=True),
    _builtin("apps/v1", "Deployment", "deployments", short=["deploy"], all_category=True),
    _builtin("apps/v1", "ReplicaSet", "replicasets", short=["rs"], all_category=True),
    _builtin("apps/v1", "StatefulSet", "statefulsets", short=["sts"], all_category=True),
    _builtin("batch/v1", "CronJob", "cronjobs", short=["cj"], all_category=True),
    _builtin("batch/v1", "Job", "jobs", all_category=True),
    _builtin("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "clusterrolebindings", False),
    _builtin("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", False),
    _builtin("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings"),
    _builtin("rbac.authorization.k8s.io/v1", "Role", "roles"),
    _builtin("apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions", False,
             ["crd", "crds"]),
    _builtin("networking.k8s.io/v1", "IngressClass", "ingressclasses", False),
    _builtin("networking.k8s.io/v1", "Ingress", "ingresses", short=["ing"]),
    _builtin("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", short=["netpol"]),
    _builtin("storage.k8s.io/v1", "StorageClass", "storageclasses", False, ["sc"]),
    _builtin("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets", short=["pdb"]),
    _builtin("coordination.k8s.io/v1", "Lease", "leases"),
    _builtin("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", short=["hpa"],
             all_category=True),
    _builtin("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration",
             "mutatingwebhookconfigurations", False),
    _builtin("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration",
             "validatingwebhookconfigurations", False),
]


def guess_plural(kind: str) -> str:
    """The plural the code generators would pick: Ingress -> ingresses, Policy -> policies."""
    lower = kind.lower()
    if re.search(r"(s|x|z|ch|sh)$", lower):
        return lower + "es"
    if re.search(r"[^aeiou]y$", lower):
        return lower[:-1] + "ies"
    return lower + "s"


def version_priority(version: str) -> tuple:
    """Sort key of Kubernetes version names: v2 > v1 > v1beta2 > v1beta1 > v1alpha1 > other."""
    match = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not match:
        return (0, 0, 0, 0, version)
    stability = {"alpha": 1, "beta": 2, None: 3}[match[2]]
    return (1, stability, int(match[1]), int(match[3] or 0), "")


def _from_crd(crd: dict) -> list[ResourceType]:
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    types = []
    for version in spec.get("versions") or []:
        if not version.get("served", True):
            continue
        columns = version.get("additionalPrinterColumns") or [
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]
        types.append(ResourceType(
            spec["group"], version["name"], names["kind"], names["plural"], spec.get("scope") != "Cluster",
            tuple(names.get("shortNames") or ()), tuple(names.get("categories") or ()), tuple(columns)))
    return types


class ResourceRegistry:
    """All served resource types, looked up by (group, version, plural) or (group, kind)."""

    def __init__(self, objects: list[dict]):
        types: dict[tuple[str, str, str], ResourceType] = {}
        for crd in objects:
            if crd.get("kind") == "CustomResourceDefinition":
                for rtype in _from_crd(crd):
                    types[(rtype.group, rtype.version, rtype.plural)] = rtype
        for rtype in BUILTINS:
            types.setdefault((rtype.group, rtype.version, rtype.plural), rtype)
        for obj in objects:
            group, _, version = obj["apiVersion"].rpartition("/")
            if self._by_kind(types, group, obj["kind"]) is None:
                plural = guess_plural(obj["kind"])
                namespaced = bool(obj.get("metadata", {}).get("namespace"))
                types[(group, version, plural)] = ResourceType(group, version, obj["kind"], plural, namespaced)
        self.types = types

    @staticmethod
    def _by_kind(types, group: str, kind: str) -> ResourceType | None:
        for rtype in types.values():
            if rtype.group == group and rtype.kind == kind:
                return rtype
        return None

    def find(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self.types.get((group, version, plural))

    def for_object(self, obj: dict) -> ResourceType | None:
        """The resource type an object from the dump is stored under (any version of its group)."""
        return self._by_kind(self.types, obj["apiVersion"].rpartition("/")[0], obj["kind"])

    def groups(self) -> dict[str, list[str]]:
        """{group: [versions, preferred first]} of the named groups (not the core group)."""
        groups: dict[str, set[str]] = {}
        for group, version, _ in self.types:
            if group:
                groups.setdefault(group, set()).add(version)
        return {group: sorted(versions, key=version_priority, reverse=True)
                for group, versions in sorted(groups.items())}

    # --- discovery documents -------------------------------------------------------------
    def api_versions(self) -> dict:
        return {"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]}

    def api_group(self, group: str) -> dict | None:
        versions = self.groups().get(group)
        if not versions:
            return None
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": entries,
                "preferredVersion": entries[0]}

    def api_group_list(self) -> dict:
        groups = [self.api_group(group) for group in self.groups()]
        for group in groups:
            del group["kind"], group["apiVersion"]
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def api_resource_list(self, group: str, version: str) -> dict | None:
        entries = [t.discovery_entry() for (g, v, _), t in sorted(self.types.items()) if (g, v) == (group, version)]
        if not entries:
            return None
        group_version = f"{group}/{version}" if group else version
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": entries}
