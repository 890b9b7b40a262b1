#!/usr/bin/env python3
"""The CDK app: settings from context -> base stack (+ endpoint stack once a model exists)."""

import sys

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from stacks.app_builder import build_app
from stacks.settings import SettingsError


def main() -> None:
    app = cdk.App()
    try:
        build_app(app)
    except SettingsError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()


if __name__ == "__main__":
    main()
