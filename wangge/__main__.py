"""`python -m wangge`: the command line, as the `wangge` script."""

from wangge.cli import main

main()
