"""ORG-GHA-016: job and service containers pinned by digest."""
from __future__ import annotations

from collections.abc import Iterator

from checker.documents import Document, YamlMap
from checker.policy import Context, Violation, policy

from .._helpers import expression_matches, image_tag, is_pinned_by_digest
from .workflow import jobs, matrix_values, value_flows

# At most this many images are judged for one value: a value naming several matrix keys is each combination
# of their values, and a hostile matrix must not multiply them without end.
_MAX_IMAGES = 64


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


def _text(value: object) -> str | None:
    """A matrix value as it reads inside a string (None for a list, a mapping or null)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value) if isinstance(value, (str, int, float)) else None


def _matrix_texts(job: YamlMap, path: tuple[str, ...]) -> list[str] | None:
    """Every text `matrix.<path>` takes in the job, matrix keys read in any case as GitHub does (`Matrix.Image`,
    `matrix['image']`, `matrix.config.image`); None when the matrix cannot be read from the file."""
    strategy = job.get("strategy")
    matrix = strategy.get("matrix") if isinstance(strategy, YamlMap) else None
    if not isinstance(matrix, YamlMap):
        return None
    include = matrix.get("include")
    spellings = [*matrix, *(key for entry in (include if isinstance(include, list) else [])
                           if isinstance(entry, YamlMap) for key in entry)]
    name = next((str(key) for key in spellings if str(key).lower() == path[0]), path[0])
    found = matrix_values(job, name)
    if found is None:
        return None
    texts = []
    for value in found:
        for key in path[1:]:
            value = next((v for k, v in value.items() if str(k).lower() == key), None) \
                if isinstance(value, YamlMap) else None
        text = _text(value)
        if text is not None:
            texts.append(text)
    return texts


def _candidates(job: YamlMap, value: str) -> list[str]:
    """The images a `container:` or `services:` value can be: the value itself when it is literal, each
    combination of matrix values when every `${{ }}` in it is a matrix value (`node:${{ matrix.node }}`),
    none when an expression is only known at run time (inputs, outputs, `fromJSON`)."""
    images, last = [""], 0
    for match in expression_matches(value):
        flows = value_flows(match.group(1))
        if not flows or len(flows) > 1 or flows[0].text != match.group(1).strip() or flows[0].path[0] != "matrix" \
                or len(flows[0].path) < 2:
            return []
        texts = _matrix_texts(job, flows[0].path[1:])
        if texts is None:
            return []
        prefix = value[last:match.start()]
        images = [image + prefix + text for image in images for text in texts][:_MAX_IMAGES]
        last = match.end()
    return [image + value[last:] for image in images]


def _why_unpinned(image: str) -> str:
    """What is wrong with a literal image reference ('' when it is pinned by digest)."""
    if is_pinned_by_digest(image):
        return ""
    if "@" in image.rsplit("/", 1)[-1]:
        return "has a digest that is not sha256 in 64 lower-case hex digits, which no registry serves"
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

    Matrix values are put in wherever a `${{ }}` names one (`${{ matrix.image }}`, `node:${{ matrix.node }}`,
    `${{ matrix['image'] }}`, `${{ Matrix.Image }}`: GitHub reads the keys in any case), and the image is
    judged for each value the matrix gives it (the axes and `include:` entries; up to 64 combinations when
    it names several), each finding naming the value. Other expressions are only known at run time and are
    not judged, nor is an empty image (a service switched off). The finding points at the `image:` line.
    """
    for job_id, job, _ in jobs(doc.data):
        for value, line, resource in _images(job_id, job):
            if not isinstance(value, str) or not value.strip():
                continue
            for image in dict.fromkeys(c.strip() for c in _candidates(job, value) if c.strip()):
                why = _why_unpinned(image)
                if why:
                    yield Violation(f"image {image} {why}", line, resource)
