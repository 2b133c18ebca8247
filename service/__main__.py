"""`python -m service …` and the `execgate-service` console script: see `service.cli`."""

import sys

from runtime.grpc_io import use_polling_io

# Before anything imports grpc: gRPC core reads its experiments once, at import.
use_polling_io()

from service.cli import main  # noqa: E402


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
