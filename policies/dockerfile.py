"""Dockerfile policies."""
from __future__ import annotations

from collections.abc import Iterator

from checker.documents import Document, Instruction
from checker.policy import Context, Violation, policy

from ._helpers import is_approved, is_pinned_by_digest, is_variable


def base_images(instructions: object) -> Iterator[tuple[str, Instruction]]:
    """(image, FROM instruction) of every FROM that pulls an image: `scratch`, earlier build stages and
    images named by build arguments (`FROM ${BASE}`) are skipped."""
    if not isinstance(instructions, list):
        return
    stages: set[str] = set()
    for instruction in instructions:
        if not isinstance(instruction, Instruction) or instruction.name.upper() != "FROM":
            continue
        words = [w for w in str(instruction.value).split() if not w.startswith("--")]
        if not words:
            continue
        image = words[0]
        earlier = image.lower() in stages
        if len(words) >= 3 and words[1].lower() == "as":
            stages.add(words[2].lower())
        if earlier or image.lower() == "scratch" or is_variable(image):
            continue
        yield image, instruction


@policy(
    id="ORG-DOCKER-001",
    title="Base images come from an approved registry",
    kinds=["dockerfile"],
    severity="high",
    rationale=(
        "The base image is most of what ships; only the organisation's registries hold images that are "
        "scanned for vulnerabilities, signed and kept available."
    ),
    remediation="""
        Build from an image mirrored into an approved registry (organisation.approved_registries):

            FROM registry.example.com/mirror/python:3.12-slim@sha256:<digest>
    """,
    tags=["supply-chain"],
    requires=["approved_registries"],
)
def base_image_approved(doc: Document, ctx: Context) -> Iterator[Violation]:
    """Every `FROM` pulls its image from a registry in `organisation.approved_registries`.

    `FROM scratch`, `FROM <earlier stage>` and images named by build arguments (`FROM ${BASE_IMAGE}`)
    are exempt. The finding points at the `FROM` line.
    """
    registries = list(ctx.organisation["approved_registries"])
    for image, instruction in base_images(doc.data):
        if not is_approved(image, registries):
            yield Violation(f"base image {image} is not from an approved registry ({', '.join(registries)})",
                            instruction.line, f"FROM {image}")


@policy(
    id="ORG-DOCKER-002",
    title="Base images are pinned by digest",
    kinds=["dockerfile"],
    severity="medium",
    rationale=(
        "A tag can be re-pushed: the same Dockerfile then builds a different image. A digest makes the "
        "build reproducible and the reviewed base image the one that ships."
    ),
    remediation="""
        Pin the base image by its digest (keep the tag for readability; Renovate/Dependabot update both):

            FROM registry.example.com/mirror/python:3.12-slim@sha256:<64-hex-digest>
    """,
    tags=["supply-chain"],
    covers=["CKV_DOCKER_7"],  # a base image without a tag, or :latest, has no digest either
)
def base_image_digest(doc: Document, ctx: Context) -> Iterator[Violation]:
    """Every `FROM` that pulls an image names it by `@sha256:` digest.

    `FROM scratch`, `FROM <earlier stage>` and images named by build arguments are exempt. The finding
    points at the `FROM` line.
    """
    for image, instruction in base_images(doc.data):
        if not is_pinned_by_digest(image):
            yield Violation(f"base image {image} is not pinned by digest", instruction.line, f"FROM {image}")


