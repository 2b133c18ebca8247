"""Run the service or the gateway with experimental patches applied first.

    python -m bench.experiments.launch service|gateway VARIANT[+VARIANT...] -- CLI ARGS

A variant is a named change (server or channel options, an alternative
per-request path) applied by monkeypatching before the product CLI starts, so
that several variants run side by side from one tree and are compared in one
interleaved run (`bench.experiments.ab`). `base` changes nothing: the process
runs as `python -m service|gateway` runs it, gRPC core's polling I/O included
(`runtime.grpc_io`); the `eventengine` variant, listed first, undoes that.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from bench.experiments import variants
from runtime.grpc_io import use_polling_io


def main() -> None:
    use_polling_io()  # as the entry points do, before any variant imports grpc
    role, names = sys.argv[1], sys.argv[2]
    args = sys.argv[sys.argv.index("--") + 1 :]
    table: dict[str, Callable[[], None]] = (
        variants.SERVICE if role == "service" else variants.GATEWAY
    )
    for name in names.split("+"):
        table[name]()
    if role == "service":
        from service.cli import main as service_main

        raise SystemExit(service_main(args))
    from gateway.cli import main as gateway_main

    gateway_main(args)


if __name__ == "__main__":
    main()
