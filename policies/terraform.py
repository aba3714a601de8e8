"""Terraform policies."""
from __future__ import annotations

import functools
import posixpath
import re
from collections.abc import Iterator
from typing import Any

from checker.documents import Document
from checker.policy import Context, Violation, policy

# Resource types that take `tags`, by provider prefix: the large majority of AWS and Azure
# resources do; association, attachment, policy and rule resources do not.
TAGGABLE_PREFIXES = ("aws_", "azurerm_")
UNTAGGABLE = re.compile(
    r"_(association|attachment|policy|policy_attachment|rule|route|record|member|membership|"
    r"permission|notification|version|object|block|configuration|settings|assignment|lifecycle_configuration|"
    r"public_access_block|acl|ownership_controls|server_side_encryption_configuration|versioning|logging|"
    r"website_configuration|cors_configuration|replication_configuration|accelerate_configuration|"
    r"request_payment_configuration|analytics_configuration|intelligent_tiering_configuration|"
    r"inventory|metric|key_pair|account_.*|main_route_table_association|ingress|egress)$"
)


@functools.cache
def _taggable_types() -> frozenset[str]:
    """The AWS and Azure resource types that take `tags`, from the list Checkov ships (its
    `aws_taggable`/`azure_taggable` resource groups); empty when Checkov's layout changes.
    Read when a check first asks, not at import: a scan with no Terraform need not load it."""
    try:
        from checkov.common.checks_infra.resources_types import resources_types
    except ImportError:  # pragma: no cover - Checkov is a dependency; the regex below still applies
        return frozenset()
    return frozenset(resources_types.get("aws_taggable", [])) | frozenset(resources_types.get("azure_taggable", []))


def is_taggable(rtype: str) -> bool:
    """Whether a resource type takes tags: Checkov's list when available, else the prefix/suffix rule."""
    if _taggable_types():
        return rtype in _taggable_types()
    return rtype.startswith(TAGGABLE_PREFIXES) and not UNTAGGABLE.search(rtype)


def resources(tree: Any) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(type, name, body) of every resource block in a python-hcl2 tree."""
    blocks = tree.get("resource") if isinstance(tree, dict) else None
    for block in blocks if isinstance(blocks, list) else []:
        for rtype, named in block.items() if isinstance(block, dict) else ():
            for name, body in named.items() if isinstance(named, dict) else ():
                if isinstance(body, dict):
                    yield str(rtype), str(name), body


def block_lines(body: dict[str, Any]) -> tuple[int, int]:
    """The first and last line of a python-hcl2 block (1, 1 when it does not say)."""
    start, end = body.get("__start_line__"), body.get("__end_line__")
    start = start if isinstance(start, int) and start > 0 else 1
    end = end if isinstance(end, int) and end >= start else start
    return start, end


def attribute_line(doc: Document, body: dict[str, Any], name: str) -> int:
    """The line of `name = ...` (or a `name {` block) inside a block (the block's first line if it is not written)."""
    start, end = block_lines(body)
    pattern = re.compile(rf"^\s*{re.escape(name)}\s*[={{]")
    for number, text in enumerate(doc.text.splitlines()[start - 1:end], start):
        if pattern.match(text):
            return number
    return start


def default_tags(ctx: Context, path: str) -> set[str]:
    """Tag keys the AWS providers of the same module folder add to every resource."""
    folder = posixpath.dirname(path)
    keys: set[str] = set()
    for doc in ctx.documents("terraform"):
        if posixpath.dirname(doc.path) != folder or not isinstance(doc.data, dict):
            continue
        providers = doc.data.get("provider")
        for block in providers if isinstance(providers, list) else []:
            for body in block.values() if isinstance(block, dict) else ():
                defaults = body.get("default_tags") if isinstance(body, dict) else None
                for default in defaults if isinstance(defaults, list) else []:
                    tags = default.get("tags") if isinstance(default, dict) else None
                    tags = tags[0] if isinstance(tags, list) and tags else tags
                    if isinstance(tags, dict):
                        keys.update(map(str, tags))
    return keys


@policy(
    id="ORG-TF-001",
    title="Taggable cloud resources carry the required tags",
    kinds=["terraform"],
    severity="medium",
    rationale=(
        "In a cloud account, tags are the inventory: how cost, ownership and PCI scope are found (the "
        "account's inventory and cost reports read nothing else); an untagged resource has no owner to "
        "patch, review or retire it."
    ),
    remediation="""
        Add every tag in organisation.required_tags, here or in the provider's `default_tags`:

            tags = {
              owner       = "team-payments"
              cost-centre = "cc-1234"
            }
    """,
    tags=["inventory"],
    requires=["required_tags"],
)
def required_tags(doc: Document, ctx: Context) -> Iterator[Violation]:
    """Every AWS and Azure resource that takes tags has each tag in `organisation.required_tags`.

    Which resource types take tags comes from the taggable-resource lists Checkov ships (so
    `aws_vpn_gateway_route_propagation` or `aws_s3_bucket_policy` are never asked for tags).
    Tags added by the AWS provider's `default_tags` in the same module count; Auto Scaling groups are
    judged on their `tag { key = ... }` blocks. Tags computed by an
    expression (`merge(local.tags, ...)`, `var.tags`) are only known at plan time and are not judged.
    """
    required = list(ctx.organisation["required_tags"])
    inherited = default_tags(ctx, doc.path)
    for rtype, name, body in resources(doc.data):
        if rtype == "aws_autoscaling_group":
            yield from _asg_tags(doc, rtype, name, body, required, inherited)
            continue
        if not is_taggable(rtype):
            continue
        tags = body.get("tags")
        tags = tags[0] if isinstance(tags, list) and tags else tags
        if isinstance(tags, str):
            continue  # an expression
        present = set(map(str, tags)) if isinstance(tags, dict) else set()
        missing = [t for t in required if t not in present and t not in inherited]
        if missing:
            line = attribute_line(doc, body, "tags") if tags is not None else block_lines(body)[0]
            yield Violation(f"{rtype}.{name} lacks required tag(s): {', '.join(missing)}", line, f"{rtype}.{name}")


def _asg_tags(doc: Document, rtype: str, name: str, body: dict[str, Any], required: list[str],
              inherited: set[str]) -> Iterator[Violation]:
    """Auto Scaling groups take `tag { key = ... }` blocks (default_tags do not reach them)."""
    if "dynamic" in body:
        return  # dynamic "tag" blocks are computed
    present = set()
    tags = body.get("tag")
    for block in tags if isinstance(tags, list) else []:
        key = block.get("key") if isinstance(block, dict) else None
        key = key[0] if isinstance(key, list) and key else key
        if not isinstance(key, str) or "${" in key:
            return  # a computed key
        present.add(key)
    missing = [t for t in required if t not in present]
    if missing:
        line = attribute_line(doc, body, "tag") if present else block_lines(body)[0]
        yield Violation(f"{rtype}.{name} lacks required tag(s): {', '.join(missing)}", line, f"{rtype}.{name}")


def _literal(value: Any) -> str | None:
    """A literal string attribute value (python-hcl2 wraps attributes in a list); None for expressions."""
    value = value[0] if isinstance(value, list) and len(value) == 1 else value
    if isinstance(value, str) and "${" not in value and value.strip():
        return value.strip()
    return None


def region_settings(tree: Any) -> Iterator[tuple[str, dict[str, Any], str]]:
    """(resource name, block body, region) of every provider and resource block with a literal `region`."""
    if not isinstance(tree, dict):
        return
    for block in tree.get("provider", []) if isinstance(tree.get("provider"), list) else []:
        if not isinstance(block, dict):
            continue
        for name, body in block.items():
            if isinstance(body, dict):
                region = _literal(body.get("region"))
                alias = _literal(body.get("alias"))
                if region:
                    yield f"provider.{name}" + (f".{alias}" if alias else ""), body, region
    for rtype, name, body in resources(tree):
        region = _literal(body.get("region"))
        if region:
            yield f"{rtype}.{name}", body, region


@policy(
    id="ORG-TF-002",
    title="Providers and resources are confined to the allowed regions",
    kinds=["terraform"],
    severity="high",
    rationale=(
        "Where data is stored and processed is a compliance fact: cardholder and personal data must stay in "
        "the regions the organisation has assessed, contracted and monitors."
    ),
    remediation="""
        Use a region listed in organisation.allowed_regions:

            provider "aws" {
              region = "eu-west-2"
            }
    """,
    tags=["data-residency"],
    requires=["allowed_regions"],
)
def allowed_regions(doc: Document, ctx: Context) -> Iterator[Violation]:
    """Every provider block and every resource that sets `region` to a literal uses a region in
    `organisation.allowed_regions`.

    Regions set by variables or other expressions (`var.region`) are decided at plan time and are not
    judged. The finding points at the `region =` line.
    """
    allowed = {str(region) for region in ctx.organisation["allowed_regions"]}
    for resource, body, region in region_settings(doc.data):
        if region not in allowed:
            yield Violation(f"{resource} uses region {region}, which is not allowed ({', '.join(sorted(allowed))})",
                            attribute_line(doc, body, "region"), resource)
