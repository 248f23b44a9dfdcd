"""``python -m gateway.cli`` runs ``ykt``."""

from gateway.cli.main import main

main()
