"""The local sandbox: the whole stack as local processes (see DESIGN.md, Environments)."""
