"""The CDK app as the moto rehearsal deploys it (``cdk --app``): app.py's stacks, synthesized
unchanged, then the parts moto's CloudFormation cannot run taken out of the written templates.
Only this file knows about moto; the production settings have no switch for it.

Taken out, each because moto cannot do it: the bootstrap-version rule (moto does not resolve
SSM parameter types), the custom resources (CloudFormation would invoke their Lambda, which
needs Docker in moto: the notebook bundle's BucketDeployment, S3 auto-delete, the model
group's version cleanup) with anything that depends on them, and the KMS key's tags (moto's
CloudFormation hands them to KMS in CloudFormation's {Key, Value} shape and crashes).
Added, also for moto alone: an empty PrimaryContainer beside a serial pipeline Model's
Containers (moto's CloudFormation reads PrimaryContainer unconditionally and fails with a
KeyError on a Containers-only Model; its SageMaker keeps the Containers as given).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aws_cdk as cdk  # noqa: E402

from stacks.app_builder import build_app  # noqa: E402

CUSTOM_RESOURCE_TYPES = (
    "Custom::CDKBucketDeployment",
    "Custom::S3AutoDeleteObjects",
    "Custom::ModelPackageGroupCleanup",
)


def for_moto(template: dict) -> list[str]:
    """Rewrite one synthesized template in place; returns the logical ids removed."""
    rules = template.get("Rules", {})
    rules.pop("CheckBootstrapVersion", None)
    if not rules:
        template.pop("Rules", None)
    template.get("Parameters", {}).pop("BootstrapVersion", None)
    resources = template["Resources"]
    removed = [k for k, r in resources.items() if r["Type"] in CUSTOM_RESOURCE_TYPES]
    for key in removed:
        del resources[key]
    for resource in resources.values():
        depends = resource.get("DependsOn")
        if depends:
            depends = [depends] if isinstance(depends, str) else depends
            kept = [d for d in depends if d not in removed]
            if kept:
                resource["DependsOn"] = kept
            else:
                del resource["DependsOn"]
        if resource["Type"] == "AWS::KMS::Key":
            resource["Properties"].pop("Tags", None)
        if resource["Type"] == "AWS::SageMaker::Model" and "Containers" in resource["Properties"]:
            resource["Properties"].setdefault("PrimaryContainer", {})
    return removed


def main() -> None:
    app = cdk.App()
    build_app(app)
    assembly = app.synth()
    for stack in assembly.stacks:
        path = Path(assembly.directory) / stack.template_file
        template = json.loads(path.read_text())
        for_moto(template)
        path.write_text(json.dumps(template, indent=1))


if __name__ == "__main__":
    main()
