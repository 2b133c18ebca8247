"""gRPC servicers of the execution service, registered with byte-passthrough serializers."""
