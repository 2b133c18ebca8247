"""`python -m gateway serve` and the `execgate-gateway` console script: see `gateway.cli`."""

from runtime.grpc_io import use_polling_io

# Before anything imports grpc: gRPC core reads its experiments once, at import.
use_polling_io()

from gateway.cli import main  # noqa: E402


def run() -> None:
    main()


if __name__ == "__main__":
    run()
