"""REST <-> protobuf transcoding: response rendering, request mapping, error bodies.

Pure modules (no aiohttp): everything here is compiled once per message type or route
at start-up from descriptors, then called per request with plain values.
"""
