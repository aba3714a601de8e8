"""CloudFormation template policies."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from checker.documents import Document, YamlMap
from checker.policy import Context, Violation, policy

# Common resource types that take Tags; a resource of another type is judged only when it writes Tags.
TAGGABLE = frozenset({
    "AWS::EC2::Instance", "AWS::EC2::VPC", "AWS::EC2::Subnet", "AWS::EC2::SecurityGroup", "AWS::EC2::Volume",
    "AWS::EC2::InternetGateway", "AWS::EC2::NatGateway", "AWS::EC2::RouteTable", "AWS::EC2::EIP",
    "AWS::EC2::NetworkAcl", "AWS::EC2::LaunchTemplate", "AWS::EC2::TransitGateway", "AWS::EC2::VPCEndpoint",
    "AWS::S3::Bucket", "AWS::RDS::DBInstance", "AWS::RDS::DBCluster", "AWS::RDS::DBSubnetGroup",
    "AWS::DynamoDB::Table", "AWS::Lambda::Function", "AWS::KMS::Key", "AWS::SNS::Topic", "AWS::SQS::Queue",
    "AWS::ECS::Cluster", "AWS::ECS::Service", "AWS::ECS::TaskDefinition", "AWS::EKS::Cluster",
    "AWS::ElasticLoadBalancingV2::LoadBalancer", "AWS::ElasticLoadBalancingV2::TargetGroup",
    "AWS::ElasticLoadBalancing::LoadBalancer", "AWS::Logs::LogGroup", "AWS::IAM::Role", "AWS::IAM::User",
    "AWS::EFS::FileSystem", "AWS::ElastiCache::ReplicationGroup", "AWS::Redshift::Cluster",
    "AWS::SecretsManager::Secret", "AWS::CloudTrail::Trail", "AWS::ECR::Repository",
    "AWS::Elasticsearch::Domain", "AWS::OpenSearchService::Domain", "AWS::Kinesis::Stream",
    "AWS::CodeBuild::Project", "AWS::StepFunctions::StateMachine", "AWS::ApiGateway::RestApi",
    "AWS::CloudFront::Distribution", "AWS::AutoScaling::AutoScalingGroup", "AWS::SageMaker::NotebookInstance",
    "AWS::Neptune::DBCluster", "AWS::DocDB::DBCluster", "AWS::MSK::Cluster", "AWS::DAX::Cluster",
    "AWS::Serverless::Function", "AWS::Serverless::Api", "AWS::Serverless::SimpleTable", "AWS::SSM::Parameter",
})


def tag_keys(tags: Any) -> set[str] | None:
    """Keys of a Tags property (a list of Key/Value or a map); None when they are computed (intrinsics)."""
    if isinstance(tags, dict):
        if len(tags) == 1 and next(iter(tags)) in ("Ref", "Fn::If", "Fn::GetAtt", "Fn::FindInMap", "Fn::Transform"):
            return None
        return {str(k) for k in tags}
    if isinstance(tags, list):
        keys = set()
        for tag in tags:
            if not isinstance(tag, dict):
                return None
            key = tag.get("Key")
            if not isinstance(key, (str, int)):
                return None  # an intrinsic key, or a Fn::If of tags
            keys.add(str(key))
        return keys
    return None


def sam_global_tags(template: YamlMap, rtype: str) -> set[str]:
    """Tag keys SAM's `Globals` section gives every `AWS::Serverless::<X>` resource."""
    if not rtype.startswith("AWS::Serverless::"):
        return set()
    section = template.get("Globals")
    section = section.get(rtype.rsplit("::", 1)[1]) if isinstance(section, dict) else None
    keys = tag_keys(section.get("Tags")) if isinstance(section, dict) else None
    return keys or set()


@policy(
    id="ORG-CFN-001",
    title="Taggable CloudFormation resources carry the required tags",
    kinds=["cloudformation"],
    severity="medium",
    rationale=(
        "In a cloud account, tags are the inventory: how cost, ownership and PCI scope are found (the "
        "account's inventory and cost reports read nothing else); an untagged resource has no owner to "
        "patch, review or retire it."
    ),
    remediation="""
        Add every tag in organisation.required_tags to the resource's Tags:

            PaymentsBucket:
              Type: AWS::S3::Bucket
              Properties:
                Tags:
                  - Key: owner
                    Value: team-payments
                  - Key: cost-centre
                    Value: cc-1234
    """,
    tags=["inventory"],
    requires=["required_tags"],
)
def cfn_required_tags(doc: Document, ctx: Context) -> Iterator[Violation]:
    """Every resource that writes `Properties.Tags`, and every resource of a common taggable type (S3
    buckets, EC2 instances, VPCs, RDS, DynamoDB, Lambda, KMS, SNS, SQS, ECS, EKS, load balancers, log
    groups, IAM roles...) has each tag in `organisation.required_tags`.

    Tags SAM's `Globals` section gives serverless resources count; tags computed by intrinsic functions
    (`!If`, `!Ref`) are not judged, and stack-level tags (set when the stack is deployed) cannot be
    seen in the template, so write the required tags on the resources. The finding points at `Tags:`,
    or at the resource's `Properties:` (or logical id) when it has no tags.
    """
    resources = doc.data.get("Resources") if isinstance(doc.data, YamlMap) else None
    if not isinstance(resources, YamlMap):
        return
    required = [str(tag) for tag in ctx.organisation["required_tags"]]
    for logical_id, resource in resources.items():
        if not isinstance(resource, YamlMap):
            continue
        rtype = str(resource.get("Type", ""))
        inherited = sam_global_tags(doc.data, rtype)
        properties = resource.get("Properties")
        properties = properties if isinstance(properties, YamlMap) else None
        if properties is not None and "Tags" in properties:
            keys = tag_keys(properties["Tags"])
            if keys is None:
                continue
            line = properties.line_of("Tags")
        elif rtype in TAGGABLE:
            keys = set()
            line = resource.line_of("Properties") if properties is not None else resources.line_of(logical_id)
        else:
            continue
        missing = [tag for tag in required if tag not in keys and tag not in inherited]
        if missing:
            yield Violation(f"{logical_id} ({rtype}) lacks required tag(s): {', '.join(missing)}", line,
                            f"Resources.{logical_id}")
