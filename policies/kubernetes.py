"""Kubernetes manifest policies."""
from __future__ import annotations

from collections.abc import Iterator

from checker.documents import Document, YamlMap
from checker.policies._helpers import is_approved, is_variable, mappings
from checker.policy import Context, Violation, policy

POD_SPEC_PATHS = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
CONTAINER_KEYS = ("initContainers", "containers", "ephemeralContainers")


def pod_spec(manifest: object) -> tuple[YamlMap, str] | None:
    """The pod spec of a workload manifest and its dotted path."""
    if not isinstance(manifest, YamlMap):
        return None
    node: object = manifest
    path = POD_SPEC_PATHS.get(str(manifest.get("kind")))
    if path is None:
        return None
    for key in path:
        node = node.get(key) if isinstance(node, YamlMap) else None
    return (node, ".".join(path)) if isinstance(node, YamlMap) else None


def containers(manifest: object) -> Iterator[tuple[YamlMap, str]]:
    """Every container of a workload with its resource path (kind/name.spec...containers[i])."""
    found = pod_spec(manifest)
    if found is None:
        return
    spec, path = found
    name = f"{manifest.get('kind')}/{(manifest.get('metadata') or {}).get('name', '?')}"  # type: ignore[union-attr]
    for key in CONTAINER_KEYS:
        for i, container in enumerate(mappings(spec.get(key))):
            yield container, f"{name}.{path}.{key}[{i}]"


@policy(
    id="ORG-K8S-001",
    title="Container images come from an approved registry",
    kinds=["kubernetes"],
    severity="high",
    rationale="Only images from the organisation's registries are scanned, signed and mirrored.",
    remediation="""
        Push the image to an approved registry (organisation.approved_registries) and use it:

            image: registry.example.com/payments/api:1.4.2
    """,
    controls=["PCI-DSS-4.0:6.3.2", "PCI-DSS-4.0:6.3.3"],
    tags=["supply-chain"],
    requires=["approved_registries"],
)
def approved_registries(doc: Document, ctx: Context) -> Iterator[Violation]:
    """Every container, init container and ephemeral container image is pulled from a registry
    listed in `organisation.approved_registries`."""
    registries = ctx.organisation["approved_registries"]
    for container, resource in containers(doc.data):
        image = container.get("image")
        if isinstance(image, str) and not is_variable(image) and not is_approved(image, registries):
            yield Violation(f"image {image} is not from an approved registry ({', '.join(registries)})",
                            container.line_of("image"), f"{resource}.image")
