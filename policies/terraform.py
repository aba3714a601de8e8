"""Terraform policies."""
from __future__ import annotations

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


def resources(tree: Any) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(type, name, body) of every resource block in a python-hcl2 tree."""
    for block in tree.get("resource", []) if isinstance(tree, dict) else []:
        for rtype, named in block.items():
            for name, body in named.items():
                if isinstance(body, dict):
                    yield rtype, name, body


def attribute_line(doc: Document, body: dict[str, Any], name: str) -> int:
    """The line of `name = ...` inside a block (the block's first line if it is not written)."""
    start, end = body.get("__start_line__", 1), body.get("__end_line__", 1)
    pattern = re.compile(rf"^\s*{re.escape(name)}\s*=")
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
        for block in doc.data.get("provider", []):
            for body in block.values():
                for default in (body or {}).get("default_tags", []):
                    tags = (default.get("tags") or [{}])[0]
                    if isinstance(tags, dict):
                        keys.update(tags)
    return keys


@policy(
    id="ORG-TF-001",
    title="Taggable cloud resources carry the required tags",
    kinds=["terraform"],
    severity="medium",
    rationale="Tags are how cost, ownership and PCI scope are found; an untagged resource has no owner.",
    remediation="""
        Add every tag in organisation.required_tags, here or in the provider's `default_tags`:

            tags = {
              owner       = "team-payments"
              cost-centre = "cc-1234"
            }
    """,
    controls=["PCI-DSS-4.0:12.5.1"],
    tags=["inventory"],
    requires=["required_tags"],
)
def required_tags(doc: Document, ctx: Context) -> Iterator[Violation]:
    """Every AWS and Azure resource that takes tags has each tag in `organisation.required_tags`.

    Tags added by the AWS provider's `default_tags` in the same module count. Tags computed by an
    expression (`merge(local.tags, ...)`, `var.tags`) are only known at plan time and are not judged.
    """
    required = list(ctx.organisation["required_tags"])
    inherited = default_tags(ctx, doc.path)
    for rtype, name, body in resources(doc.data):
        if not rtype.startswith(TAGGABLE_PREFIXES) or UNTAGGABLE.search(rtype):
            continue
        tags = body.get("tags")
        tags = tags[0] if isinstance(tags, list) and tags else tags
        if isinstance(tags, str):
            continue  # an expression
        present = set(tags) if isinstance(tags, dict) else set()
        missing = [t for t in required if t not in present and t not in inherited]
        if missing:
            line = attribute_line(doc, body, "tags") if tags is not None else body.get("__start_line__", 1)
            yield Violation(f"{rtype}.{name} lacks required tag(s): {', '.join(missing)}", line, f"{rtype}.{name}")
