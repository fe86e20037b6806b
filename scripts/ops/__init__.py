"""AutoEnroll operations toolkit (`ops`)."""

__version__ = "0.1.0"
