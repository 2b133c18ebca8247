"""A second tenant beside the demo one, and keys of every shape, for the tenancy tests."""

from __future__ import annotations

from dataclasses import dataclass

from execgate.retrievers.v1 import execution_writer_service_pb2 as writer_pb2

from service import admin
from service.store.protocol import Namespace, Retriever
from tests.support.running_service import RunningService, Stubs, auth


@dataclass(frozen=True)
class Tenants:
    """The demo tenant plus a second one whose retriever has the same name."""

    demo_key: str
    other: Namespace
    other_retriever: Retriever  # named like the demo retriever ("product-search")
    other_key: str  # read+write, scoped to `other` only
    other_execution_id: str
    both_key: str  # read+write in demo and other
    read_only_key: str  # demo only
    write_only_key: str  # demo only


async def add_tenants(running_service: RunningService, calls: Stubs) -> Tenants:
    """Add a second tenant and a few keys to the demo data."""
    store = running_service.store
    demo = running_service.demo
    other = await admin.create_namespace(store, "other")
    other_retriever = await admin.create_retriever(store, other.id, demo.retriever.name)
    other_key = await admin.create_api_key(store, [other.id], admin.PERMISSIONS)
    started = await calls.writer.StartExecution(
        writer_pb2.StartExecutionRequest(retriever_id=other_retriever.name, total_stages=1),
        metadata=auth(other_key.secret),
    )
    both = await admin.create_api_key(store, [demo.namespace.id, other.id], admin.PERMISSIONS)
    read_only = await admin.create_api_key(store, [demo.namespace.id], ["read"])
    write_only = await admin.create_api_key(store, [demo.namespace.id], ["write"])
    return Tenants(
        demo_key=demo.api_key,
        other=other,
        other_retriever=other_retriever,
        other_key=other_key.secret,
        other_execution_id=started.execution.execution_id,
        both_key=both.secret,
        read_only_key=read_only.secret,
        write_only_key=write_only.secret,
    )
