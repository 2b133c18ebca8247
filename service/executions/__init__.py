"""The execution domain: validation and the write-path state machine (pure, no I/O, no gRPC)."""
