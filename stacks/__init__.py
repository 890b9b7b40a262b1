"""The CDK stacks: base (data + access) and endpoint, built from one Settings object."""
