"""`python -m ops` is the same as the `ops` console script."""

from ops.cli import main

main()
