"""ORG-GHA-016: job and service containers pinned by digest."""
from __future__ import annotations

from collections.abc import Iterator

from checker.documents import Document, YamlMap
from checker.policy import Context, Violation, policy

from .._helpers import image_tag, is_pinned_by_digest
from .workflow import MATRIX_REFERENCE, jobs, matrix_values


def _images(job_id: str, job: YamlMap) -> Iterator[tuple[object, int, str]]:
    """(image value, line, resource) of the job's `container:` and of each of its `services:`."""
    scopes: list[tuple[YamlMap, object, str]] = [(job, "container", f"jobs.{job_id}.container")]
    if isinstance(job.get("services"), YamlMap):
        scopes += [(job["services"], name, f"jobs.{job_id}.services.{name}") for name in job["services"]]
    for parent, key, resource in scopes:
        node = parent.get(key)
        if isinstance(node, YamlMap):
            yield node.get("image"), node.line_of("image"), f"{resource}.image"
        elif isinstance(node, str):
            yield node, parent.line_of(key), resource


def _why_unpinned(image: str) -> str:
    """What is wrong with a literal image reference ('' when it is pinned by digest)."""
    if is_pinned_by_digest(image):
        return ""
    tag = image_tag(image)
    if tag is None:
        return "has no tag, so it is whatever latest is at run time"
    if tag == "latest":
        return "uses the floating latest tag"
    return f"is pinned to the tag {tag}, which can be moved, not to a digest"


@policy(
    id="ORG-GHA-016",
    title="Job and service container images are pinned by digest",
    kinds=["github-actions"],
    severity="medium",
    rationale=(
        "The job's steps run inside the container image with the job's token and secrets; a tag (latest "
        "above all) is whatever the registry serves that day, so what ran cannot be reviewed or reproduced."
    ),
    remediation="""
        Pin the image by digest, keeping the tag in a comment for updates:

            container:
              image: node@sha256:3c7a1dc8fc5e2f1c3f0e2ed6b4e3a5c1d7f0e9b8a7c6d5e4f3a2b1c0d9e8f7a6  # 22.11
    """,
    tags=["supply-chain"],
)
def images_pinned(doc: Document, ctx: Context) -> Iterator[Violation]:
    """Every job `container:` and `services:` image (long or short form) names a `@sha256:` digest.

    A `${{ matrix.NAME }}` image is judged for each value the matrix gives it (the axis and `include:`
    entries), each finding naming the value; other expressions are only known at run time and are not
    judged, nor is an empty image (a service switched off). The finding points at the `image:` line.
    """
    for job_id, job, _ in jobs(doc.data):
        for value, line, resource in _images(job_id, job):
            if not isinstance(value, str) or not value.strip():
                continue
            reference = MATRIX_REFERENCE.match(value)
            candidates: list[object] = [value] if "${{" not in value else []
            if reference:
                candidates = matrix_values(job, reference.group(1)) or []
            for image in dict.fromkeys(str(c).strip() for c in candidates if isinstance(c, str) and c.strip()):
                why = _why_unpinned(image)
                if why:
                    yield Violation(f"image {image} {why}", line, resource)
