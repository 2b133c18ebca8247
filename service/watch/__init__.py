"""Live executions: the per-process watch hub and the WatchExecution stream."""
