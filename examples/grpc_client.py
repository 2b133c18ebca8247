"""Read a demo execution over gRPC, as an internal service would.

eval "$(.venv/bin/python -m service demo --shell)"
.venv/bin/python examples/grpc_client.py [HOST:PORT]
"""

from __future__ import annotations

import json
import os
import sys

import grpc
from execgate.retrievers.v1 import execution_service_pb2, execution_service_pb2_grpc


def main() -> None:
    address = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:50051"
    metadata = (
        ("authorization", f"Bearer {os.environ['EXECGATE_DEMO_KEY']}"),
        ("x-namespace", os.environ["EXECGATE_DEMO_NAMESPACE"]),
    )
    with grpc.insecure_channel(address) as channel:
        executions = execution_service_pb2_grpc.ExecutionServiceStub(channel)
        detail = executions.GetExecution(
            execution_service_pb2.GetExecutionRequest(
                retriever_id=os.environ["EXECGATE_DEMO_RETRIEVER"],  # an ID or the name
                execution_id=os.environ["EXECGATE_DEMO_COMPLETED_10"],
            ),
            metadata=metadata,
            timeout=5,
        )
        # Documents are one JSON array text (RawJsonList): one parse with any JSON library.
        documents = json.loads(detail.documents.json)
        first = documents[0]
        count = len(documents)
        print(f"{detail.execution_id}: {count} documents, first {first['document_id']}")
        page = executions.ListExecutions(
            execution_service_pb2.ListExecutionsRequest(
                retriever_id=os.environ["EXECGATE_DEMO_RETRIEVER"], limit=3
            ),
            metadata=metadata,
            timeout=5,
        )
        for summary in page.results:
            print(f"  {summary.execution_id} created {summary.created_at.ToJsonString()}")


if __name__ == "__main__":
    main()
