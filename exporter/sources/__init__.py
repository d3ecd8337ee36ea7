"""The sources: what the clusters run, what registries hold, what releases expect, what kubelets pulled.

One package per source (`kube`, `registry`, `expected`, `events`), and the modules that turn one cluster's
objects into plain rows for the join (`cluster` watches a cluster; `inventory`, `keyrings`, `rollback`, `shards`).
"""
