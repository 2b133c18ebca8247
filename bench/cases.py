"""The request cases of the benchmark and the demo data they point at."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Not an ID the demo seeds, but shaped like one (22-character token), so it reaches the
# store lookup rather than failing validation.
MISSING_EXECUTION_ID = "exec_benchmissing0000000000"


@dataclass(frozen=True, slots=True)
class Demo:
    """What `python -m service demo --json` seeded: who may read, and what there is to read."""

    api_key: str
    namespace: str
    retriever_id: str
    executions: dict[str, str]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Demo:
        namespace = data["namespace"]
        return cls(
            api_key=data["api_key"],
            namespace=namespace["name"] if isinstance(namespace, dict) else namespace,
            retriever_id=data["retriever"]["id"],
            executions=dict(data["executions"]),
        )

    @property
    def http_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}", "X-Namespace": self.namespace}

    @property
    def grpc_metadata(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.api_key}", "x-namespace": self.namespace}


@dataclass(frozen=True, slots=True)
class Case:
    """One GetExecution request, as seen over REST and over gRPC."""

    name: str
    retriever_id: str
    execution_id: str
    expected_http: int
    expected_grpc: str  # grpc.StatusCode name

    @property
    def path(self) -> str:
        return f"/v1/retrievers/{self.retriever_id}/executions/{self.execution_id}"


def cases_for(demo: Demo) -> list[Case]:
    """The 10-document and 1,000-document completed executions, and a miss."""
    ret = demo.retriever_id
    return [
        Case("10 docs", ret, demo.executions["completed_10"], 200, "OK"),
        Case("1000 docs", ret, demo.executions["completed_1000"], 200, "OK"),
        Case("404 miss", ret, MISSING_EXECUTION_ID, 404, "NOT_FOUND"),
    ]
