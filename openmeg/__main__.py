"""``python -m openmeg``."""

from openmeg.cli import main

main()
