"""Metrics and log plumbing shared by the service and the gateway.

The two halves deploy separately and must not import each other, yet they
measure and log the same way; what is the same lives here.
"""
