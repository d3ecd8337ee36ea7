"""The node's view: what the kubelet and the container runtime on a node use to pull.

A kubelet pulls with more than pull secrets: credential provider plugins (`providers`, `plugin`), its own
docker config (`docker_config`), and the runtime's registry configuration, which sends pulls to mirrors
with their own TLS settings (`containerd` hosts.toml, CRI-O `registries_conf`). `view.NodeView` joins
them for the checker: `route(ref)` gives the endpoints the node would try for one image, `keyring`
the node's credentials behind a pod's own. Parsing and matching are pure functions over plain data;
file reads and plugin execution sit at the edges (`files`, `plugin`).
"""
