"""`python -m singleprocess serve`: gateway and service in one process; see `singleprocess.cli`."""

import sys

from runtime.grpc_io import use_polling_io

# Before anything imports grpc: gRPC core reads its experiments once, at import.
use_polling_io()

from singleprocess.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
