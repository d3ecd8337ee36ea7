"""Every metric family the exporter exposes, declared once.

The collector renders from this table, the README's metric table is checked against it by a test, and
dashboards and alert rules depend on these names (DESIGN.md contract): add families, never rename them.
`SELF_FAMILIES` are the exporter's own process and runtime families, rendered by prometheus_client's
collectors (see exporter.views.exposition); they are declared here for the README, and a test checks the
collectors serve exactly these.
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "kube_image_"

REFERENCE_LABELS = (
    "cluster",
    "namespace",
    "workload_kind",
    "workload",
    "container",
    "container_type",
    "image",
    "unit",
)
REFERENCE_LABELS_WITHOUT_UNIT = tuple(label for label in REFERENCE_LABELS if label != "unit")


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    type: str  # gauge | counter | histogram
    help: str
    labels: tuple[str, ...]
    example: str  # a PromQL query a user would start from (rendered into the README)


FAMILIES: tuple[Family, ...] = (
    Family(
        "kube_image_missing",
        "gauge",
        "1 for each container reference whose image is not available in its registry; reason is the registry status, "
        "or platform_missing when the image lacks a platform of the nodes the reference runs or may run on.",
        REFERENCE_LABELS + ("reason",),
        'sum by (cluster, namespace, unit, reason) (kube_image_missing)',
    ),
    Family(
        "kube_image_workload_inactive",
        "gauge",
        "1 for each workload that runs nothing now (scaled to zero, suspended): its images count, less urgently.",
        ("cluster", "namespace", "workload_kind", "workload"),
        'kube_image_missing unless on (cluster, namespace, workload_kind, workload) kube_image_workload_inactive',
    ),
    Family(
        "kube_image_status",
        "gauge",
        "1 per unique image with its current registry status (available, absent, unchecked, ...).",
        ("cluster", "image", "registry", "status"),
        'count by (registry, status) (kube_image_status)',
    ),
    Family(
        "kube_image_unknown_unit",
        "gauge",
        "1 for each container reference whose owning unit could not be resolved.",
        REFERENCE_LABELS_WITHOUT_UNIT,
        'count by (cluster, namespace) (kube_image_unknown_unit)',
    ),
    Family(
        "kube_image_expected_missing",
        "gauge",
        "1 for each image of an expected list that is not available in its registry.",
        ("list", "image", "unit", "reason"),
        'kube_image_expected_missing{list="release-1.4"}',
    ),
    Family(
        "kube_image_expected_not_running",
        "gauge",
        "1 for each image of an expected list that no workload of the cluster uses.",
        ("cluster", "list", "image", "unit"),
        'count by (cluster, list) (kube_image_expected_not_running)',
    ),
    Family(
        "kube_image_unexpected",
        "gauge",
        "1 for each container reference whose image is in no expected list (only when lists are configured).",
        REFERENCE_LABELS,
        'count by (cluster, namespace, workload) (kube_image_unexpected)',
    ),
    Family(
        "kube_image_pull_duration_seconds",
        "gauge",
        "Duration of the last observed pull of the image on the node (kubelet Pulled events); kept while a pod of "
        "the namespace runs the image on the node, and for 10 minutes after the pull.",
        ("cluster", "namespace", "node", "image"),
        'topk(10, kube_image_pull_duration_seconds)',
    ),
    Family(
        "kube_image_pull_size_bytes",
        "gauge",
        "Size of the image in the last observed pull, where the kubelet reports it (kept as the duration is).",
        ("cluster", "namespace", "node", "image"),
        'max by (image) (kube_image_pull_size_bytes)',
    ),
    Family(
        "kube_image_pull_seconds",
        "histogram",
        "All observed image pull durations (kubelet Pulled events).",
        ("cluster", "registry"),
        'histogram_quantile(0.9, sum by (registry, le) (rate(kube_image_pull_seconds_bucket[1h])))',
    ),
    Family(
        "kube_image_pull_failures_total",
        "counter",
        "Image pull failures seen in kubelet events, by reason.",
        ("cluster", "registry", "reason"),
        'sum by (registry, reason) (increase(kube_image_pull_failures_total[1h]))',
    ),
    Family(
        "kube_image_last_check_timestamp_seconds",
        "gauge",
        "When the image was last checked in its registry (Unix time).",
        ("cluster", "image"),
        'time() - min by (cluster) (kube_image_last_check_timestamp_seconds)',
    ),
    Family(
        "kube_image_registry_requests_total",
        "counter",
        "Requests sent to registries, by method and HTTP status code.",
        ("registry", "method", "code"),
        'sum by (registry, code) (rate(kube_image_registry_requests_total[5m]))',
    ),
    Family(
        "kube_image_registry_request_duration_seconds",
        "histogram",
        "Latency of requests sent to registries.",
        ("registry",),
        'histogram_quantile(0.99, sum by (registry, le) (rate(kube_image_registry_request_duration_seconds_bucket[5m])))',
    ),
    Family(
        "kube_image_cycle_duration_seconds",
        "gauge",
        "Duration of the last cycle that computed a snapshot.",
        (),
        'kube_image_cycle_duration_seconds',
    ),
    Family(
        "kube_image_last_cycle_timestamp_seconds",
        "gauge",
        "When the last snapshot was computed (Unix time).",
        (),
        'time() - kube_image_last_cycle_timestamp_seconds > 600',
    ),
    Family(
        "kube_image_cycle_failures_total",
        "counter",
        "Cycles and expected-list loader rounds that ended in an error (the last snapshot stays published; "
        "/readyz fails once none completes).",
        (),
        'increase(kube_image_cycle_failures_total[1h]) > 0',
    ),
    Family(
        "kube_image_inventory_errors_total",
        "counter",
        "Cycles in which the cluster's inventory could not be built (its last inventory is kept; the error is logged).",
        ("cluster",),
        'increase(kube_image_inventory_errors_total[1h]) > 0',
    ),
    Family(
        "kube_image_build_info",
        "gauge",
        "1, labelled with the exporter version.",
        ("version",),
        'kube_image_build_info',
    ),
    Family(
        "kube_image_shared_cache_up",
        "gauge",
        "1 while the shared result cache (--cache-url) answers; absent when none is set.",
        (),
        'kube_image_shared_cache_up == 0',
    ),
    Family(
        "kube_image_shared_cache_errors_total",
        "counter",
        "What went wrong with the shared result cache: calls that failed (unavailable), locks that expired and "
        "were taken by another exporter (lock_lost), failures of the thread extending a round's locks "
        "(lock_keeper); absent when none is set.",
        ("reason",),
        'sum by (reason) (increase(kube_image_shared_cache_errors_total[1h])) > 0',
    ),
    Family(
        "kube_image_node_only",
        "gauge",
        "1 for each node that still holds (in its kubelet's status.images) an image a workload uses and its registry "
        "no longer has: draining or replacing the node loses the last copy.",
        ("cluster", "node", "image"),
        'count by (cluster, node) (kube_image_node_only)',
    ),
    Family(
        "kube_image_platform_missing",
        "gauge",
        "1 for each platform (linux/arm64, linux/arm/v7) that nodes running or able to run a workload of the image "
        "pull and the manifest its tag serves does not offer: the pull fails there ('no matching manifest').",
        ("cluster", "image", "platform"),
        'count by (cluster, platform) (kube_image_platform_missing)',
    ),
    Family(
        "kube_image_retention_at_risk",
        "gauge",
        "1 for each image in use (running, in a template, in an expected list with cluster=\"\", in a kept Helm "
        "revision) that the next run of its registry's cleanup policy deletes; rule says which rule decides it.",
        ("cluster", "image", "policy", "rule"),
        'count by (policy) (kube_image_retention_at_risk)',
    ),
    Family(
        "kube_image_retention_next_run_timestamp_seconds",
        "gauge",
        "When the cleanup policy runs next (Unix time), where its schedule is known.",
        ("policy",),
        'kube_image_retention_next_run_timestamp_seconds - time()',
    ),
    Family(
        "kube_image_retention_up",
        "gauge",
        "1 when the cleanup policy (harbor:PROJECT) was read and evaluated at its last reading; 0 while it cannot be "
        "(no forecast is made for it then).",
        ("policy",),
        'kube_image_retention_up == 0',
    ),
    Family(
        "kube_image_retention_errors_total",
        "counter",
        "Readings of a retention source that failed, by reason (forbidden, unreachable, rate_limited, error: a "
        "surprise in an answer, invalid: an "
        "unknown rule template, a listing that never ends, a timestamp that is none). A host paused by its checks "
        "is not read until the pause ends; its last forecast stands.",
        ("source", "reason"),
        'increase(kube_image_retention_errors_total[6h]) > 0',
    ),
    Family(
        "kube_image_signature_missing",
        "gauge",
        "1 for each reference a verifying admission policy covers (Kyverno verifyImages, a sigstore "
        "ClusterImagePolicy, --require-signature) whose required signature (kind=signature) or attestation "
        "(kind=attestation, predicate_type) is not where the policy's verifier reads it; mode is enforce or audit. "
        "Presence and type only: not verified cryptographically.",
        REFERENCE_LABELS + ("policy", "kind", "predicate_type", "mode"),
        'count by (cluster, namespace, policy, mode) (kube_image_signature_missing)',
    ),
    Family(
        "kube_image_digest_drift",
        "gauge",
        "1 when the tag a container runs now resolves to another digest in the registry.",
        REFERENCE_LABELS + ("running_digest", "registry_digest"),
        'count by (cluster, namespace, workload) (kube_image_digest_drift)',
    ),
    Family(
        "kube_image_rollback_missing",
        "gauge",
        "1 for each image of a kept Helm release revision that is not available (a rollback would fail).",
        ("cluster", "namespace", "release", "revision", "image", "reason"),
        'count by (cluster, namespace, release) (kube_image_rollback_missing)',
    ),
    Family(
        "kube_image_watch_up",
        "gauge",
        "1 while the list and watch of the kind work in the cluster; 0 from an error until they recover.",
        ("cluster", "kind"),
        'kube_image_watch_up == 0',
    ),
    Family(
        "kube_image_watch_errors_total",
        "counter",
        "Failed lists and watches of the kind (API unreachable, forbidden, server errors).",
        ("cluster", "kind"),
        'sum by (cluster, kind) (increase(kube_image_watch_errors_total[1h]))',
    ),
    Family(
        "kube_image_watch_skipped_objects_total",
        "counter",
        "Objects of the kind that could not be read and were left out (each is named in a warning).",
        ("cluster", "kind"),
        'increase(kube_image_watch_skipped_objects_total[1h]) > 0',
    ),
    Family(
        "kube_image_watch_relists_total",
        "counter",
        "Lists made again because the API server could not serve the watch from its version: expired (410, or 504 "
        "too large), version_reset (its version went back: restored or reset) or errors (repeated watch failures).",
        ("cluster", "kind", "reason"),
        'sum by (cluster, reason) (increase(kube_image_watch_relists_total{reason!="expired"}[1h])) > 0',
    ),
    Family(
        "kube_image_watch_objects",
        "gauge",
        "Objects of the kind held from the cluster (trimmed to the fields used).",
        ("cluster", "kind"),
        'kube_image_watch_objects{kind="Pod"}',
    ),
    Family(
        "kube_image_expected_list_up",
        "gauge",
        "1 when the expected list loaded at its last reading; 0 while it fails (its last good content is kept).",
        ("list",),
        'kube_image_expected_list_up == 0',
    ),
    Family(
        "kube_image_expected_list_images",
        "gauge",
        "Images in the expected list's current content.",
        ("list",),
        'kube_image_expected_list_images',
    ),
    Family(
        "kube_image_expected_list_load_errors_total",
        "counter",
        "Failed loads of the expected list (unreadable, unparseable or empty).",
        ("list",),
        'increase(kube_image_expected_list_load_errors_total[1h]) > 0',
    ),
    Family(
        "kube_image_pull_secret_unusable",
        "gauge",
        "1 for each pull secret named by workloads that cannot be used; reason is unreadable, invalid or api_error.",
        ("cluster", "namespace", "secret", "reason"),
        'count by (cluster, namespace, reason) (kube_image_pull_secret_unusable)',
    ),
    Family(
        "kube_image_rollback_release_errors_total",
        "counter",
        "Helm release revisions that could not be decoded (reason too_large or corrupt); they are skipped.",
        ("cluster", "namespace", "reason"),
        'increase(kube_image_rollback_release_errors_total[1h]) > 0',
    ),
)

SELF_FAMILIES: tuple[Family, ...] = (
    Family("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", (),
           'rate(process_cpu_seconds_total{job="kube-image-exporter"}[5m])'),
    Family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", (),
           'process_resident_memory_bytes{job="kube-image-exporter"}'),
    Family("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", (),
           'process_virtual_memory_bytes{job="kube-image-exporter"}'),
    Family("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.", (),
           'changes(process_start_time_seconds{job="kube-image-exporter"}[1h]) > 0'),
    Family("process_open_fds", "gauge", "Number of open file descriptors.", (),
           'process_open_fds / process_max_fds'),
    Family("process_max_fds", "gauge", "Maximum number of open file descriptors.", (),
           'process_max_fds'),
    Family("python_info", "gauge", "Python platform information.",
           ("implementation", "major", "minor", "patchlevel", "version"), 'python_info'),
    Family("python_gc_objects_collected_total", "counter", "Objects collected during gc.", ("generation",),
           'rate(python_gc_objects_collected_total[5m])'),
    Family("python_gc_objects_uncollectable_total", "counter", "Uncollectable objects found during GC.",
           ("generation",), 'increase(python_gc_objects_uncollectable_total[1h]) > 0'),
    Family("python_gc_collections_total", "counter", "Number of times this generation was collected.",
           ("generation",), 'rate(python_gc_collections_total{generation="2"}[5m])'),
)

BY_NAME = {family.name: family for family in (*FAMILIES, *SELF_FAMILIES)}
