"""`python -m gateway serve`: see `gateway.cli`."""

from gateway.cli import main

main()
