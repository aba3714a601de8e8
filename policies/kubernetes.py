"""Kubernetes manifest policies."""
from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from typing import Any

from checker.documents import Document, YamlMap
from checker.policy import Context, Violation, policy

from ._helpers import is_approved, is_variable, list_at, mappings

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
    if found is None or not isinstance(manifest, YamlMap):  # a pod spec is found only in a YamlMap
        return
    spec, path = found
    name = workload_name(manifest)
    for key in CONTAINER_KEYS:
        for i, container in enumerate(mappings(spec.get(key))):
            yield container, f"{name}.{path}.{key}[{i}]"


@policy(
    id="ORG-K8S-001",
    title="Container images come from an approved registry",
    kinds=["kubernetes"],
    severity="high",
    rationale=(
        "Only images from the organisation's registries are scanned for vulnerabilities, signed and kept "
        "available; an image pulled from anywhere else runs code nobody scanned, and nobody can say which "
        "build of what is running."
    ),
    remediation="""
        Push the image to an approved registry (organisation.approved_registries) and use it:

            image: registry.example.com/payments/api:1.4.2
    """,
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


def workload_name(manifest: YamlMap) -> str:
    metadata = manifest.get("metadata")
    name = metadata.get("name", "?") if isinstance(metadata, YamlMap) else "?"
    return f"{manifest.get('kind')}/{name}"


def pod_template(manifest: object) -> tuple[YamlMap | None, str, int] | None:
    """The pod template of a workload (its metadata holder), its path and the line of its key; the
    manifest itself for a Pod."""
    if not isinstance(manifest, YamlMap) or str(manifest.get("kind")) not in POD_SPEC_PATHS:
        return None
    path = POD_SPEC_PATHS[str(manifest.get("kind"))][:-1]
    node: object = manifest
    line = manifest.line
    for key in path:
        if isinstance(node, YamlMap):
            line = node.line_of(key)
            node = node.get(key)
        else:
            node = None
    return (node if isinstance(node, YamlMap) else None), ".".join(path), line


def labels_of(holder: object, line: int = 1) -> tuple[dict[Any, Any], int]:
    """(labels, line to report) of an object with `metadata`: the `labels:` key's line, else the
    `metadata:` key's, else `line` (the line of the key holding the object)."""
    if not isinstance(holder, YamlMap):
        return {}, line
    metadata = holder.get("metadata")
    if not isinstance(metadata, YamlMap):
        return {}, holder.lines.get("metadata", line)
    labels = metadata.get("labels")
    if not isinstance(labels, YamlMap):
        return {}, metadata.lines.get("labels", holder.line_of("metadata"))
    return labels, metadata.line_of("labels")


def _kustomizations(ctx: Context, path: str) -> Iterator[dict[Any, Any]]:
    """The kustomization.yaml files in the same folder as `path`."""
    folder = posixpath.dirname(path)
    for doc in ctx.documents("kustomize"):
        if posixpath.dirname(doc.path) == folder and isinstance(doc.data, dict):
            yield doc.data


def is_patch(doc: Document, ctx: Context) -> bool:
    """A partial manifest: it carries `$patch`, or a kustomization beside it lists it as a patch."""
    data = doc.data
    if isinstance(data, dict) and ("$patch" in data or (isinstance(data.get("metadata"), dict)
                                                        and "$patch" in data["metadata"])):
        return True
    name = posixpath.basename(doc.path)
    for kustomization in _kustomizations(ctx, doc.path):
        listed = [p.get("path") if isinstance(p, dict) else p
                  for key in ("patches", "patchesStrategicMerge", "patchesJson6902")
                  for p in list_at(kustomization, key)]
        if any(isinstance(p, str) and posixpath.normpath(p) == name for p in listed):
            return True
    return False


def kustomize_labels(ctx: Context, path: str) -> tuple[set[str], set[str]]:
    """(labels added to metadata, labels added to pod templates) by kustomizations beside `path`:
    `commonLabels` go to both, `labels[].pairs` to templates only with `includeTemplates: true`."""
    metadata: set[str] = set()
    templates: set[str] = set()
    for kustomization in _kustomizations(ctx, path):
        common = kustomization.get("commonLabels")
        if isinstance(common, dict):
            metadata.update(map(str, common))
            templates.update(map(str, common))
        for entry in list_at(kustomization, "labels"):
            pairs = entry.get("pairs") if isinstance(entry, dict) else None
            if isinstance(pairs, dict):
                metadata.update(map(str, pairs))
                if entry.get("includeTemplates") is True:
                    templates.update(map(str, pairs))
    return metadata, templates


@policy(
    id="ORG-K8S-002",
    title="Workloads and their pod templates carry the required labels",
    kinds=["kubernetes"],
    severity="low",
    rationale=(
        "Labels are the inventory of what runs: how the organisation finds a workload's owner, cost centre "
        "and data classification, and how policies (network, PCI scope) select it; pods inherit only the "
        "template's labels. Low: an unlabelled workload still runs under every other control, but it is "
        "missing from the inventory, and a reviewer asks for the labels."
    ),
    remediation="""
        Add every label in organisation.required_labels to the workload and to its pod template:

            metadata:
              labels:
                app: payments-api
                team: payments
            spec:
              template:
                metadata:
                  labels:
                    app: payments-api
                    team: payments
    """,
    tags=["inventory"],
    requires=["required_labels"],
)
def required_labels(doc: Document, ctx: Context) -> Iterator[Violation]:
    """Every workload (Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job,
    CronJob) has each label in `organisation.required_labels` in its `metadata.labels`, and so does its
    pod template.

    Labels a kustomization.yaml beside the manifest adds (`commonLabels`, or `labels[].pairs` —
    templates only with `includeTemplates: true`) count, and kustomize patches (`$patch`, or files a
    kustomization lists under `patches`) are partial manifests and are not judged. Findings point at
    the `labels:` key (or at `metadata:` when there are no labels).
    """
    required = [str(label) for label in ctx.organisation["required_labels"]]
    found = pod_template(doc.data)
    if found is None or is_patch(doc, ctx):
        return
    added_metadata, added_templates = kustomize_labels(ctx, doc.path)
    manifest = doc.data
    name = workload_name(manifest)
    holders: list[tuple[object, str]] = [(manifest, f"{name}.metadata.labels")]
    template, path, template_line = found
    if template is not manifest:
        holders.append((template, f"{name}.{path}.metadata.labels"))
    for holder, resource in holders:
        labels, line = labels_of(holder, template_line if holder is template else manifest.line)
        added = added_templates if holder is template and template is not manifest else added_metadata
        missing = [label for label in required if label not in labels and label not in added]
        if missing:
            yield Violation(f"{resource} lacks required label(s): {', '.join(missing)}", line, resource)


SECRET_NAME = re.compile(
    r"(?:^|[_.-])(?:passw(?:or)?d|pwd|secret|token|api[_-]?key|apikey|private[_-]?key|access[_-]?key|"
    r"secret[_-]?key|client[_-]?secret|credentials?|auth[_-]?key|signing[_-]?key|encryption[_-]?key|"
    r"master[_-]?key|conn(?:ection)?[_-]?str(?:ing)?)(?:$|[_.-])",
    re.IGNORECASE,
)
NOT_A_SECRET = re.compile(
    r"[_.-](?:file|path|dir|url|uri|endpoint|name|names|header|type|ttl|length|expiry|expiration|enabled|"
    r"ref|mount|location|id|keyname|secret[_-]?name|issuer|audience|scope|scopes|format)$|"
    r"initial[_-]cluster[_-]token$",  # etcd's cluster id seed, documented as not secret
    re.IGNORECASE,
)


@policy(
    id="ORG-K8S-003",
    title="Secrets are not written as plain-text environment values",
    kinds=["kubernetes"],
    severity="high",
    rationale=(
        "A literal `value:` sits in Git, in the API server's object store unencrypted and in every "
        "`kubectl get -o yaml`; a `secretKeyRef` keeps it in a Secret with its own access control."
    ),
    remediation="""
        Keep the value in a Secret (ideally synced from the vault) and reference it:

            env:
              - name: DB_PASSWORD
                valueFrom:
                  secretKeyRef:
                    name: payments-db
                    key: password
    """,
    tags=["secrets"],
)
def no_plaintext_secrets_in_env(doc: Document, ctx: Context) -> Iterator[Violation]:
    """No container `env` entry whose name looks like a credential (`*PASSWORD*`, `*SECRET*`, `*TOKEN*`,
    `*API_KEY*`, `*PRIVATE_KEY*`, `*CREDENTIALS*`...) has a non-empty literal `value:`.

    Names that describe where a secret is rather than the secret (`*_FILE`, `*_PATH`, `*_URL`,
    `*_SECRET_NAME`...) and values that are variable references (`$(VAR)`, `{{ }}`) are exempt. The
    finding points at the `value:`.
    """
    for container, resource in containers(doc.data):
        for i, item in enumerate(mappings(container.get("env"))):
            name, value = item.get("name"), item.get("value")
            if not isinstance(name, str):
                continue
            words = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)  # dbPassword -> db_Password
            if not SECRET_NAME.search(words) or NOT_A_SECRET.search(words):
                continue
            if value is None or isinstance(value, bool) or (
                    isinstance(value, str) and (not value.strip() or is_variable(value))):
                continue
            yield Violation(f"env {name} holds a plain-text value; use valueFrom.secretKeyRef",
                            item.line_of("value"), f"{resource}.env[{i}]")


def _selects(selector: object, labels: dict[Any, Any]) -> bool:
    """Whether a label selector (matchLabels / matchExpressions) selects pods with `labels`."""
    if not isinstance(selector, dict):
        return False
    match_labels = selector.get("matchLabels") or {}
    if not isinstance(match_labels, dict):
        return False
    if any(str(labels.get(k)) != str(v) or k not in labels for k, v in match_labels.items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        if not isinstance(expression, dict):
            return False
        key, op = expression.get("key"), str(expression.get("operator", ""))
        values = [str(v) for v in expression.get("values") or []] if isinstance(expression.get("values"), list) else []
        present = key in labels
        value = str(labels.get(key))
        ok = {"In": present and value in values, "NotIn": not present or value not in values,
              "Exists": present, "DoesNotExist": not present}.get(op, False)
        if not ok:
            return False
    return True


def _namespace(manifest: YamlMap) -> str | None:
    metadata = manifest.get("metadata")
    namespace = metadata.get("namespace") if isinstance(metadata, YamlMap) else None
    return str(namespace) if isinstance(namespace, (str, int)) and str(namespace).strip() else None


def _kustomize_namespace(ctx: Context, path: str) -> str | None:
    for kustomization in _kustomizations(ctx, path):
        namespace = kustomization.get("namespace")
        if isinstance(namespace, str) and namespace.strip():
            return namespace
    return None


@policy(
    id="ORG-K8S-004",
    title="PCI workloads are isolated: own namespace and a NetworkPolicy",
    kinds=["kubernetes"],
    severity="high",
    rationale=(
        "PCI DSS requires the cardholder data environment to be segmented from everything else; in a cluster "
        "that means a dedicated namespace and NetworkPolicies that select the PCI pods, since pods accept "
        "traffic from anywhere by default."
    ),
    remediation="""
        Deploy the workload in its own namespace and ship a NetworkPolicy that selects its pods:

            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata:
              name: payments-api
              namespace: payments
            spec:
              podSelector:
                matchLabels:
                  app: payments-api
              policyTypes: [Ingress, Egress]
              ingress:
                - from:
                    - namespaceSelector:
                        matchLabels:
                          kubernetes.io/metadata.name: ingress
    """,
    tags=["segmentation", "pci"],
    params={"label": "data-classification", "value": "pci"},
)
def pci_workloads_isolated(doc: Document, ctx: Context) -> Iterator[Violation]:
    """A workload whose pods (or whose own metadata) carry the label `data-classification: pci` (the
    rule's `label`/`value` parameters) is not in the `default` namespace — an explicit
    `metadata.namespace`, or the `namespace:` of a kustomization.yaml beside it — and a NetworkPolicy
    among the scanned manifests, in the same namespace, has a `podSelector` that selects its pods.

    The namespace finding points at `metadata.namespace` (or `metadata:`); the NetworkPolicy finding at
    the PCI label.
    """
    label, wanted = str(ctx.params.get("label")), str(ctx.params.get("value"))
    found = pod_template(doc.data)
    if found is None or is_patch(doc, ctx):
        return
    manifest: YamlMap = doc.data
    template, _, template_line = found
    own_labels, own_line = labels_of(manifest, manifest.line)
    pod_labels, pod_line = labels_of(template, template_line)
    if template is manifest:
        pod_labels, pod_line = own_labels, own_line
    if str(pod_labels.get(label)) == wanted and label in pod_labels:
        line = pod_labels.lines.get(label, pod_line) if isinstance(pod_labels, YamlMap) else pod_line
    elif str(own_labels.get(label)) == wanted and label in own_labels:
        line = own_labels.lines.get(label, own_line) if isinstance(own_labels, YamlMap) else own_line
    else:
        return
    name = workload_name(manifest)
    namespace = _namespace(manifest) or _kustomize_namespace(ctx, doc.path)
    if namespace in (None, "default"):
        metadata = manifest.get("metadata")
        ns_line = metadata.lines.get("namespace", manifest.line_of("metadata")) if isinstance(metadata, YamlMap) \
            else manifest.line_of("metadata")
        yield Violation(f"PCI workload {name} runs in the default namespace", ns_line, f"{name}.metadata.namespace")
    for other in ctx.documents("kubernetes"):
        policy_doc = other.data
        if not isinstance(policy_doc, YamlMap) or policy_doc.get("kind") != "NetworkPolicy":
            continue
        if (_namespace(policy_doc) or _kustomize_namespace(ctx, other.path)) != namespace:
            continue
        spec = policy_doc.get("spec")
        if isinstance(spec, dict) and "podSelector" in spec and (
                spec["podSelector"] in (None, {}) or _selects(spec["podSelector"], pod_labels)):
            return
    yield Violation(f"no NetworkPolicy selects the pods of PCI workload {name}", line, f"{name}")
