"""Allow ``python -m catwalk``."""

from catwalk.cli import main

main()
