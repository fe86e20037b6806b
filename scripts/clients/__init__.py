"""The client layer: every SaaS HTTP client the toolkit and the Pulumi program call, with its own
error tree (clients.errors). It imports neither `ops` nor `stacks` (tests/scripts/test_layers_clients.py)."""
