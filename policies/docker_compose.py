"""docker-compose policies."""
from __future__ import annotations

from collections.abc import Iterator

from checker.documents import Document, YamlMap
from checker.policy import Context, Violation, policy

from ._helpers import is_approved, is_pinned_by_digest, is_variable


def service_images(compose: object, *, built: bool = False) -> Iterator[tuple[str, str, int]]:
    """(service, image, line) of every service's `image:`; services that also `build:` the image
    (so `image:` is the name the build is tagged with) are skipped unless `built`."""
    services = compose.get("services") if isinstance(compose, YamlMap) else None
    if not isinstance(services, YamlMap):
        return
    for name, service in services.items():
        if not isinstance(service, YamlMap) or not isinstance(service.get("image"), str):
            continue
        if "build" in service and not built:
            continue
        image = service["image"].strip()
        if image and not is_variable(image):
            yield str(name), image, service.line_of("image")


@policy(
    id="ORG-COMPOSE-001",
    title="Compose services use images from an approved registry",
    kinds=["docker-compose"],
    severity="medium",
    rationale=(
        "Compose starts containers on developers' machines and CI runners, which hold source code and "
        "credentials; only images from the organisation's registries are scanned, signed and mirrored."
    ),
    remediation="""
        Use images mirrored into an approved registry (organisation.approved_registries):

            services:
              db:
                image: registry.example.com/mirror/postgres:16.4@sha256:<digest>
    """,
    tags=["supply-chain"],
    requires=["approved_registries"],
)
def compose_images_approved(doc: Document, ctx: Context) -> Iterator[Violation]:
    """Every service's `image:` is pulled from a registry in `organisation.approved_registries`.

    Services that `build:` their image, and images written with variables (`${TAG}`), are not judged.
    The finding points at the `image:` line.
    """
    registries = list(ctx.organisation["approved_registries"])
    for name, image, line in service_images(doc.data):
        if not is_approved(image, registries):
            yield Violation(f"service {name} image {image} is not from an approved registry "
                            f"({', '.join(registries)})", line, f"services.{name}.image")


@policy(
    id="ORG-COMPOSE-002",
    title="Compose service images are pinned by digest",
    kinds=["docker-compose"],
    severity="info",
    rationale=(
        "A tag can be re-pushed; a digest makes what runs the image that was reviewed. A convenience, not a "
        "control: Compose files describe developer and test environments, outside production, and the "
        "registry they pull from (ORG-COMPOSE-001) is the control; what ships is pinned in the Dockerfile "
        "(ORG-DOCKER-002). Where Compose deploys to production, raise it in the ruleset (`checks.severity`)."
    ),
    remediation="""
        Pin the image by digest:

            services:
              db:
                image: registry.example.com/mirror/postgres:16.4@sha256:<64-hex-digest>
    """,
    tags=["supply-chain"],
)
def compose_images_pinned(doc: Document, ctx: Context) -> Iterator[Violation]:
    """Every service's `image:` names its image by `@sha256:` digest.

    Services that `build:` their image, and images written with variables, are not judged. The finding
    points at the `image:` line.
    """
    for name, image, line in service_images(doc.data):
        if not is_pinned_by_digest(image):
            yield Violation(f"service {name} image {image} is not pinned by digest", line, f"services.{name}.image")
