"""Helm chart policies: chart templates are Go templates and are not parsed; values files are."""
from __future__ import annotations

import posixpath
from collections.abc import Iterator
from typing import Any

from checker.documents import Document, YamlMap, YamlSeq
from checker.policy import Context, Violation, policy

from ._helpers import is_approved, is_variable

IMAGE_MAP_KEYS = frozenset({"tag", "registry", "digest", "pullPolicy", "sha"})


def is_values_file(path: str) -> bool:
    name = posixpath.basename(path).lower()
    return name.startswith("values") and name.endswith((".yaml", ".yml"))


def values_images(node: Any, path: str = "", depth: int = 0) -> Iterator[tuple[str, int, str]]:
    """(image reference, line, values path) of every image a values tree names.

    An image is a mapping with `repository` and one of `tag`/`registry`/`digest`/`pullPolicy`
    (the chart convention; the registry is prefixed when given), or a string under a key `image`.
    """
    if depth > 50:
        return
    if isinstance(node, YamlMap):
        repository = node.get("repository")
        if isinstance(repository, str) and repository.strip() and IMAGE_MAP_KEYS & set(node):
            registry = node.get("registry")
            if isinstance(registry, str) and registry.strip():
                image = f"{registry.strip().rstrip('/')}/{repository.strip()}"
                yield image, node.line_of("registry"), f"{path}.registry"
            else:
                yield repository.strip(), node.line_of("repository"), f"{path}.repository"
        for key, value in node.items():
            child = f"{path}.{key}" if path else str(key)
            if key == "image" and isinstance(value, str) and value.strip():
                yield value.strip(), node.line_of(key), child
            elif isinstance(value, (YamlMap, YamlSeq)):
                yield from values_images(value, child, depth + 1)
    elif isinstance(node, YamlSeq):
        for i, item in enumerate(node):
            yield from values_images(item, f"{path}[{i}]", depth + 1)


@policy(
    id="ORG-HELM-001",
    title="Chart values pull images from an approved registry",
    kinds=["helm"],
    severity="medium",
    rationale=(
        "A chart's default values decide what runs when nobody overrides them; images from public "
        "registries bypass the organisation's scanning, signing and mirroring."
    ),
    remediation="""
        Point the chart's image values at an approved registry (organisation.approved_registries):

            image:
              registry: registry.example.com
              repository: mirror/prometheus
              tag: v2.54.1
    """,
    tags=["supply-chain"],
    requires=["approved_registries"],
)
def values_images_approved(doc: Document, ctx: Context) -> Iterator[Violation]:
    """Every image named in a chart's values files (`values*.yaml`): mappings with `repository` (and
    `registry`, `tag` or `digest`) and plain `image:` strings, resolves to a registry in
    `organisation.approved_registries`. Templated values (`{{ }}`, `$VAR`) are not judged, and image
    mappings are exempt when `global.imageRegistry` names an approved registry (it replaces theirs).

    The finding points at the `registry:` (or `repository:` / `image:`) line.
    """
    if not is_values_file(doc.path):
        return
    registries = list(ctx.organisation["approved_registries"])
    global_registry = doc.data.get("global") if isinstance(doc.data, YamlMap) else None
    global_registry = global_registry.get("imageRegistry") if isinstance(global_registry, YamlMap) else None
    overridden = isinstance(global_registry, str) and is_approved(global_registry.rstrip("/") + "/x", registries)
    for image, line, resource in values_images(doc.data):
        if overridden and not resource.endswith(".image") and resource != "image":
            continue  # global.imageRegistry replaces every chart image's registry
        if not is_variable(image) and " " not in image and not is_approved(image, registries):
            yield Violation(f"image {image} is not from an approved registry ({', '.join(registries)})", line, resource)
