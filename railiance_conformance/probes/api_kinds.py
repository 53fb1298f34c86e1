"""The Kubernetes API kinds the suite reads, and where the API server serves them.

``API_KINDS["deployments"]`` -> ``Kind("apps", "v1", "deployments", "Deployment")``: core and ``apps``
kinds by plural, other groups by ``plural.group`` (``clusters.postgresql.cnpg.io``); ``BY_KIND`` by the
API Kind. ``Kind.path`` is the REST path (Kubernetes API concepts: ``/api/v1`` for the core group,
``/apis/GROUP/VERSION`` otherwise, ``/namespaces/NS`` for a namespaced object).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Kind:
    group: str
    version: str
    plural: str
    kind: str = ""             # the API Kind: "Deployment", "Cluster"
    namespaced: bool = True

    @property
    def name(self) -> str:
        """``pods``, ``deployments``; CRDs by their full name: ``clusters.postgresql.cnpg.io``."""
        return f"{self.plural}.{self.group}" if "." in self.group else self.plural

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace:
            base += f"/namespaces/{namespace}"
        return f"{base}/{self.plural}" + (f"/{name}" if name else "")


API_KINDS = {k.name: k for k in (
    Kind("", "v1", "namespaces", "Namespace", namespaced=False),
    Kind("", "v1", "pods", "Pod"), Kind("", "v1", "services", "Service"), Kind("", "v1", "secrets", "Secret"),
    Kind("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim"),
    # Helm's configmap storage driver (HELM_DRIVER=configmap): listed only with the selector owner=helm
    Kind("", "v1", "configmaps", "ConfigMap"),
    Kind("apps", "v1", "deployments", "Deployment"), Kind("apps", "v1", "statefulsets", "StatefulSet"),
    Kind("apps", "v1", "daemonsets", "DaemonSet"),
    Kind("postgresql.cnpg.io", "v1", "clusters", "Cluster"), Kind("postgresql.cnpg.io", "v1", "backups", "Backup"),
    # read with GET only when a Cluster names its image through imageCatalogRef
    Kind("postgresql.cnpg.io", "v1", "imagecatalogs", "ImageCatalog"),
    Kind("postgresql.cnpg.io", "v1", "clusterimagecatalogs", "ClusterImageCatalog", namespaced=False),
)}
BY_KIND = {k.kind: k for k in API_KINDS.values()}   # "Deployment" -> Kind(apps, v1, deployments)
SERVICE_PROXY = "services/proxy"   # the name ``reads`` and ``forget`` use for proxied GETs
