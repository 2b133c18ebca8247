"""The test-only library servicer that end-to-end gateway tests run behind the gateway."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc
import pytest
import pytest_asyncio
from execgate.testing.v1 import library_pb2, library_pb2_grpc
from google.rpc import (  # type: ignore[import-untyped, unused-ignore]
    error_details_pb2,
    status_pb2,
)

from tests.support.library_servicer import DOMAIN, RunningLibrary, serve_library

if TYPE_CHECKING:
    from execgate.testing.v1.library_pb2_grpc import LibraryServiceAsyncStub


@pytest_asyncio.fixture
async def running() -> AsyncIterator[RunningLibrary]:
    async with serve_library() as running:
        yield running


@pytest_asyncio.fixture
async def channel(running: RunningLibrary) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(running.address) as channel:
        yield channel


async def seed(stub: LibraryServiceAsyncStub) -> None:
    await stub.CreateShelf(library_pb2.CreateShelfRequest(id="s1", theme="sf"))
    for book in (
        library_pb2.Book(
            id="b1",
            title="Dune",
            author="Herbert",
            pages=600,
            rating=4.5,
            genre=library_pb2.GENRE_FICTION,
            tags=["desert", "epic"],
            published=True,
        ),
        library_pb2.Book(
            id="b2",
            title="Draft",
            author="Herbert",
            pages=90,
            rating=2.0,
            genre=library_pb2.GENRE_FICTION,
            tags=["epic"],
        ),
        library_pb2.Book(
            id="b3",
            title="Cosmos",
            author="Sagan",
            pages=400,
            rating=4.8,
            genre=library_pb2.GENRE_SCIENCE,
            published=True,
        ),
    ):
        await stub.CreateBook(library_pb2.CreateBookRequest(shelf_id="s1", book=book))


@pytest.mark.asyncio
async def test_crud_and_custom_method(running: RunningLibrary, channel: grpc.aio.Channel) -> None:
    stub = library_pb2_grpc.LibraryServiceStub(channel)
    await seed(stub)
    shelf = await stub.GetShelf(library_pb2.GetShelfRequest(shelf_id="s1"))
    assert (shelf.shelf.id, shelf.shelf.theme, shelf.shelf.book_count) == ("s1", "sf", 3)

    book = await stub.GetBook(library_pb2.GetBookRequest(name="shelves/s1/books/b2"))
    assert (book.name, book.shelf_id, book.title, book.published) == (
        "shelves/s1/books/b2",
        "s1",
        "Draft",
        False,
    )
    published = await stub.PublishBook(
        library_pb2.PublishBookRequest(name="shelves/s1/books/b2", note="final")
    )
    assert published.published
    assert running.library.publish_notes == {"shelves/s1/books/b2": "final"}

    updated = await stub.UpdateBook(
        library_pb2.UpdateBookRequest(book=library_pb2.Book(shelf_id="s1", id="b2", title="Done"))
    )
    assert (updated.name, updated.title, updated.pages) == ("shelves/s1/books/b2", "Done", 0)

    deleted = await stub.DeleteBook(library_pb2.DeleteBookRequest(name="shelves/s1/books/b2"))
    assert deleted.name == "shelves/s1/books/b2"
    shelf = await stub.GetShelf(library_pb2.GetShelfRequest(shelf_id="s1"))
    assert shelf.shelf.book_count == 2


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("request_fields", "expected_ids"),
    [
        ({}, ["b1", "b3"]),
        ({"include_unpublished": True}, ["b1", "b2", "b3"]),
        ({"include_unpublished": True, "page_size": 2}, ["b1", "b2"]),
        ({"include_unpublished": True, "max_pages": 400}, ["b2", "b3"]),
        ({"min_rating": 4.6}, ["b3"]),
        ({"genre": library_pb2.GENRE_FICTION, "include_unpublished": True}, ["b1", "b2"]),
        ({"tags": ["epic", "desert"]}, ["b1"]),
        ({"include_unpublished": True, "filter": {"author": "Herbert", "min_pages": 100}}, ["b1"]),
    ],
)
async def test_list_filters(
    running: RunningLibrary,
    channel: grpc.aio.Channel,
    request_fields: dict[str, object],
    expected_ids: list[str],
) -> None:
    stub = library_pb2_grpc.LibraryServiceStub(channel)
    await seed(stub)
    request = library_pb2.ListBooksRequest(shelf_id="s1", **request_fields)  # type: ignore[arg-type]
    listed = await stub.ListBooks(request)
    assert [book.id for book in listed.books] == expected_ids
    assert running.library.list_requests == [request]


@pytest.mark.asyncio
async def test_errors_carry_error_info(channel: grpc.aio.Channel) -> None:
    stub = library_pb2_grpc.LibraryServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.GetBook(library_pb2.GetBookRequest(name="shelves/x/books/y"))
    assert raised.value.code() is grpc.StatusCode.NOT_FOUND
    trailers = dict(raised.value.trailing_metadata() or ())
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert (info.reason, info.domain, dict(info.metadata)) == (
        "BOOK_NOT_FOUND",
        DOMAIN,
        {"resource": "book", "id": "shelves/x/books/y"},
    )
    await stub.CreateShelf(library_pb2.CreateShelfRequest(id="s1"))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.CreateShelf(library_pb2.CreateShelfRequest(id="s1"))
    assert raised.value.code() is grpc.StatusCode.ALREADY_EXISTS


@pytest.mark.asyncio
async def test_watch_streams_existing_then_new_books(channel: grpc.aio.Channel) -> None:
    stub = library_pb2_grpc.LibraryServiceStub(channel)
    watch = library_pb2_grpc.ShelfWatchServiceStub(channel)
    await seed(stub)
    call = watch.WatchShelf(library_pb2.WatchShelfRequest(shelf_id="s1", max_events=4))
    received = [await call.read() for _ in range(3)]
    assert [book.id for book in received if isinstance(book, library_pb2.Book)] == [
        "b1",
        "b2",
        "b3",
    ]
    await stub.CreateBook(
        library_pb2.CreateBookRequest(shelf_id="s1", book=library_pb2.Book(id="b4"))
    )
    fourth = await asyncio.wait_for(call.read(), timeout=5)
    assert isinstance(fourth, library_pb2.Book)
    assert fourth.id == "b4"
    assert await call.read() is grpc.aio.EOF
    assert await call.code() is grpc.StatusCode.OK
