"""`python -m tollway` runs the CLI."""

from tollway.cli import main

main()
