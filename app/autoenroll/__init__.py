"""AutoEnroll validation app: the containerised service this repository deploys."""

__version__ = "0.1.0"
