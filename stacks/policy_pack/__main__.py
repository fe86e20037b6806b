"""`pulumi preview --policy-pack stacks/policy_pack`: the program's policies, enforced by the engine."""

from typing import Any

from pulumi_policy import PolicyPack

from stacks.policy_pack.rules import POLICY_LIST

PolicyPack(name="autoenroll-policies", policies=list[Any](POLICY_LIST))
