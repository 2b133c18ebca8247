"""Process-wide settings both servers apply at start-up (allocator, gRPC core I/O)."""
