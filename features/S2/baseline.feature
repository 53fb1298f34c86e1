@cluster
Feature: S2 — the cluster baseline as the workplan found it deployed (RAIL-HO-WP-0004, "Current deployed state")
  The workplan's "Current deployed state" table (reference snapshot 2026-03-26) lists the S2 cluster
  baseline that railiance-cluster deploys: cert-manager and nginx ingress, each a Helm release in
  its own namespace; Argo CD in argocd, applied with kubectl (its S2 placement is a documented
  boundary violation, waived until its migration stub is done). Each S2 namespace is owned by S2
  in the layer map (policies/layers.yaml). A release is judged by its newest revision; "ready"
  means every Deployment, StatefulSet and DaemonSet of the release is available with every
  replica ready (the kubelet's reason is shown when not).

  Background:
    Given the cluster, read through the Kubernetes API

  Scenario: cluster.cert_manager.release — cert-manager is deployed by Helm and available
    Then Helm release cert-manager/cert-manager of chart cert-manager is deployed and ready

  Scenario: cluster.ingress_nginx.release — ingress-nginx is deployed by Helm and its controller available
    Then Helm release ingress-nginx/ingress-nginx of chart ingress-nginx is deployed and ready

  Scenario: cluster.argocd.available — Argo CD is up
    Then every Deployment and StatefulSet in argocd is available with every replica ready

  Scenario: cluster.baseline.namespaces — the S2 namespaces exist and S2 owns them
    Then the namespaces default, kube-system, kube-public, kube-node-lease, cert-manager and ingress-nginx exist and belong to layer S2 in policies/layers.yaml
