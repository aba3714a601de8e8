"""GitLab CI pipeline policies."""
from __future__ import annotations

from collections.abc import Iterator

from checker.documents import Document, YamlMap
from checker.policies._helpers import image_tag, is_variable
from checker.policy import Context, Violation, policy

KEYWORDS = frozenset({"default", "include", "stages", "variables", "workflow", "image", "services", "cache",
                      "before_script", "after_script", "spec"})


def job_images(pipeline: object) -> Iterator[tuple[str, str, int]]:
    """(image, resource path, line) of the pipeline's default image and every job's image."""
    if not isinstance(pipeline, YamlMap):
        return
    scopes = [("", pipeline)]
    if isinstance(pipeline.get("default"), YamlMap):
        scopes.append(("default.", pipeline["default"]))
    scopes += [(f"{name}.", job) for name, job in pipeline.items()
               if name not in KEYWORDS and isinstance(job, YamlMap) and not str(name).startswith(".")]
    for prefix, scope in scopes:
        image = scope.get("image")
        if isinstance(image, YamlMap):
            line, image = image.line_of("name"), image.get("name")
        else:
            line = scope.line_of("image")
        if isinstance(image, str):
            yield image, f"{prefix}image", line


@policy(
    id="ORG-GITLAB-001",
    title="Job images name a fixed version, not latest",
    kinds=["gitlab-ci"],
    severity="medium",
    rationale="`latest` (or no tag) changes under the pipeline without review, so builds are not reproducible.",
    remediation="""
        Name the exact version, or better the digest, of the image:

            image: registry.example.com/ci/python:3.12.7@sha256:<digest>
    """,
    controls=["PCI-DSS-4.0:6.3.2"],
    tags=["supply-chain"],
)
def images_not_latest(doc: Document, ctx: Context) -> Iterator[Violation]:
    """The pipeline's and each job's `image:` has an explicit tag other than `latest`, or a digest.

    Images written with CI variables (`$CI_REGISTRY_IMAGE:$TAG`) are resolved only at run time and
    are not judged.
    """
    for image, resource, line in job_images(doc.data):
        if is_variable(image):
            continue
        tag = image_tag(image)
        if tag in (None, "latest"):
            yield Violation(f"image {image} {'has no tag' if tag is None else 'uses latest'}", line, resource)
