"""A small, real, in-memory implementation of the test-only `execgate.testing.v1` services.

End-to-end tests start it (`serve_library()`, on 127.0.0.1 port 0) behind the
gateway to show that annotated RPCs are served with no gateway code. Failures
carry a `google.rpc.Status` with an `ErrorInfo` (reason UPPER_SNAKE, domain
`execgate.testing`, metadata `{"resource", "id"}`), like the real service.
`Library` keeps what the servicers did, for tests to check what arrived.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn

import grpc
from execgate.testing.v1 import library_pb2, library_pb2_grpc
from google.protobuf import any_pb2
from google.rpc import (  # type: ignore[import-untyped, unused-ignore]
    error_details_pb2,
    status_pb2,
)

DOMAIN = "execgate.testing"
_BOOK_NAME = re.compile(r"shelves/([^/]+)/books/([^/]+)")

Context = grpc.aio.ServicerContext[Any, Any]


@dataclass
class Library:
    """The servicers' shared state: shelves, books by (shelf, id), and what was asked."""

    shelves: dict[str, library_pb2.Shelf] = field(default_factory=dict)
    books: dict[tuple[str, str], library_pb2.Book] = field(default_factory=dict)
    # Notes received by PublishBook, by book name (proves `body: "*"` mapping).
    publish_notes: dict[str, str] = field(default_factory=dict)
    # Every ListBooks request as received (proves query parameter mapping).
    list_requests: list[library_pb2.ListBooksRequest] = field(default_factory=list)
    # Every shelf's change log (WatchShelfEvents): an event's ID is its index + 1.
    shelf_events: dict[str, list[library_pb2.ShelfEvent]] = field(default_factory=dict)
    # WatchShelfEvents streams: how many are open, messages yielded (padding
    # included), and when each ended (loop time; proves cancellation reaches here).
    open_event_streams: int = 0
    events_yielded: int = 0
    event_stream_ends: list[float] = field(default_factory=list)
    _watchers: dict[str, list[asyncio.Queue[library_pb2.Book]]] = field(default_factory=dict)
    _event_watchers: dict[str, list[asyncio.Queue[library_pb2.ShelfEvent]]] = field(
        default_factory=dict
    )

    def add_book(self, book: library_pb2.Book) -> None:
        self.books[book.shelf_id, book.id] = book
        self.shelves[book.shelf_id].book_count += 1
        for queue in self._watchers.get(book.shelf_id, []):
            queue.put_nowait(book)
        log = self.shelf_events.setdefault(book.shelf_id, [])
        event = library_pb2.ShelfEvent(event_id=str(len(log) + 1), book_added=book)
        log.append(event)
        for event_queue in self._event_watchers.get(book.shelf_id, []):
            event_queue.put_nowait(event)

    def watch_events(self, shelf_id: str) -> asyncio.Queue[library_pb2.ShelfEvent]:
        queue: asyncio.Queue[library_pb2.ShelfEvent] = asyncio.Queue()
        self._event_watchers.setdefault(shelf_id, []).append(queue)
        return queue

    def unwatch_events(self, shelf_id: str, queue: asyncio.Queue[library_pb2.ShelfEvent]) -> None:
        self._event_watchers[shelf_id].remove(queue)

    def watch(self, shelf_id: str) -> asyncio.Queue[library_pb2.Book]:
        queue: asyncio.Queue[library_pb2.Book] = asyncio.Queue()
        self._watchers.setdefault(shelf_id, []).append(queue)
        return queue

    def unwatch(self, shelf_id: str, queue: asyncio.Queue[library_pb2.Book]) -> None:
        self._watchers[shelf_id].remove(queue)


class LibraryServicer(library_pb2_grpc.LibraryServiceServicer):
    def __init__(self, library: Library) -> None:
        self.library = library

    async def CreateShelf(  # noqa: N802 (gRPC method name)
        self, request: library_pb2.CreateShelfRequest, context: Context
    ) -> library_pb2.Shelf:
        if not request.id:
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "MISSING_FIELD", "id", "")
        if request.id in self.library.shelves:
            await _abort(
                context, grpc.StatusCode.ALREADY_EXISTS, "SHELF_ALREADY_EXISTS", "shelf", request.id
            )
        shelf = library_pb2.Shelf(id=request.id, theme=request.theme)
        self.library.shelves[request.id] = shelf
        return shelf

    async def GetShelf(  # noqa: N802 (gRPC method name)
        self, request: library_pb2.GetShelfRequest, context: Context
    ) -> library_pb2.GetShelfResponse:
        shelf = await self._shelf(request.shelf_id, context)
        return library_pb2.GetShelfResponse(shelf=shelf, revision=len(self.library.books))

    async def CreateBook(  # noqa: N802 (gRPC method name)
        self, request: library_pb2.CreateBookRequest, context: Context
    ) -> library_pb2.Book:
        await self._shelf(request.shelf_id, context)
        if not request.book.id:
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "MISSING_FIELD", "book.id", "")
        if (request.shelf_id, request.book.id) in self.library.books:
            name = _book_name(request.shelf_id, request.book.id)
            await _abort(
                context, grpc.StatusCode.ALREADY_EXISTS, "BOOK_ALREADY_EXISTS", "book", name
            )
        book = library_pb2.Book()
        book.CopyFrom(request.book)
        book.shelf_id = request.shelf_id
        book.name = _book_name(book.shelf_id, book.id)
        self.library.add_book(book)
        return book

    async def ListBooks(  # noqa: N802 (gRPC method name)
        self, request: library_pb2.ListBooksRequest, context: Context
    ) -> library_pb2.ListBooksResponse:
        self.library.list_requests.append(request)
        await self._shelf(request.shelf_id, context)
        books = [
            book
            for (shelf_id, _), book in sorted(self.library.books.items())
            if shelf_id == request.shelf_id and _selected(book, request)
        ]
        if request.page_size:
            books = books[: request.page_size]
        return library_pb2.ListBooksResponse(books=books)

    async def GetBook(  # noqa: N802 (gRPC method name)
        self, request: library_pb2.GetBookRequest, context: Context
    ) -> library_pb2.Book:
        return await self._book(request.name, context)

    async def UpdateBook(  # noqa: N802 (gRPC method name)
        self, request: library_pb2.UpdateBookRequest, context: Context
    ) -> library_pb2.Book:
        name = _book_name(request.book.shelf_id, request.book.id)
        book = await self._book(name, context)
        book.CopyFrom(request.book)
        book.name = name
        return book

    async def DeleteBook(  # noqa: N802 (gRPC method name)
        self, request: library_pb2.DeleteBookRequest, context: Context
    ) -> library_pb2.DeleteBookResponse:
        book = await self._book(request.name, context)
        del self.library.books[book.shelf_id, book.id]
        self.library.shelves[book.shelf_id].book_count -= 1
        return library_pb2.DeleteBookResponse(name=book.name)

    async def PublishBook(  # noqa: N802 (gRPC method name)
        self, request: library_pb2.PublishBookRequest, context: Context
    ) -> library_pb2.Book:
        book = await self._book(request.name, context)
        book.published = True
        self.library.publish_notes[book.name] = request.note
        return book

    async def _shelf(self, shelf_id: str, context: Context) -> library_pb2.Shelf:
        shelf = self.library.shelves.get(shelf_id)
        if shelf is None:
            await _abort(context, grpc.StatusCode.NOT_FOUND, "SHELF_NOT_FOUND", "shelf", shelf_id)
        return shelf

    async def _book(self, name: str, context: Context) -> library_pb2.Book:
        parsed = _BOOK_NAME.fullmatch(name)
        book = self.library.books.get((parsed[1], parsed[2])) if parsed else None
        if book is None:
            await _abort(context, grpc.StatusCode.NOT_FOUND, "BOOK_NOT_FOUND", "book", name)
        return book


class ShelfWatchServicer(library_pb2_grpc.ShelfWatchServiceServicer):
    def __init__(self, library: Library) -> None:
        self.library = library

    async def WatchShelf(  # noqa: N802 (gRPC method name)
        self, request: library_pb2.WatchShelfRequest, context: Context
    ) -> AsyncIterator[library_pb2.Book]:
        """The shelf's books, then each book added, until `max_events` or cancellation."""
        if request.shelf_id not in self.library.shelves:
            await _abort(
                context, grpc.StatusCode.NOT_FOUND, "SHELF_NOT_FOUND", "shelf", request.shelf_id
            )
        queue = self.library.watch(request.shelf_id)
        try:
            for (shelf_id, _), book in sorted(self.library.books.items()):
                if shelf_id == request.shelf_id:
                    queue.put_nowait(book)
            sent = 0
            while not request.max_events or sent < request.max_events:
                yield await queue.get()
                sent += 1
        finally:
            self.library.unwatch(request.shelf_id, queue)

    async def WatchShelfEvents(  # noqa: N802 (gRPC method name)
        self, request: library_pb2.WatchShelfEventsRequest, context: Context
    ) -> AsyncIterator[library_pb2.ShelfEvent]:
        """A snapshot (or the events after `last_event_id`), then each book added."""
        library = self.library
        shelf = library.shelves.get(request.shelf_id)
        if shelf is None:
            await _abort(
                context, grpc.StatusCode.NOT_FOUND, "SHELF_NOT_FOUND", "shelf", request.shelf_id
            )
        log = library.shelf_events.get(request.shelf_id, [])
        if request.last_event_id and not (
            request.last_event_id.isdigit() and int(request.last_event_id) <= len(log)
        ):
            await _abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                "UNKNOWN_EVENT_ID",
                "event",
                request.last_event_id,
            )
        queue = library.watch_events(request.shelf_id)
        library.open_event_streams += 1
        try:
            for index in range(request.burst):
                library.events_yielded += 1
                yield library_pb2.ShelfEvent(
                    book_added=library_pb2.Book(id=f"pad-{index}", title="p" * 1000)
                )
            if request.last_event_id:
                backlog = log[int(request.last_event_id) :]
            else:
                snapshot = library_pb2.ShelfEvent(event_id=str(len(log)), snapshot=shelf)
                backlog = [snapshot]
            for event in backlog:
                queue.put_nowait(event)
            sent = 0
            while True:
                if request.fail_after and sent == request.fail_after:
                    await _abort(
                        context, grpc.StatusCode.ABORTED, "SHELF_CHANGED", "shelf", shelf.id
                    )
                event = await queue.get()
                library.events_yielded += 1
                yield event
                sent += 1
        finally:
            library.open_event_streams -= 1
            library.unwatch_events(request.shelf_id, queue)
            library.event_stream_ends.append(asyncio.get_running_loop().time())


@dataclass(frozen=True)
class RunningLibrary:
    address: str  # "127.0.0.1:<port>"
    library: Library


@asynccontextmanager
async def serve_library(library: Library | None = None) -> AsyncIterator[RunningLibrary]:
    """Both test services on 127.0.0.1, an ephemeral port; stopped on exit."""
    state = library if library is not None else Library()
    server = grpc.aio.server()
    library_pb2_grpc.add_LibraryServiceServicer_to_server(LibraryServicer(state), server)
    library_pb2_grpc.add_ShelfWatchServiceServicer_to_server(ShelfWatchServicer(state), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield RunningLibrary(f"127.0.0.1:{port}", state)
    finally:
        await server.stop(grace=None)


def _book_name(shelf_id: str, book_id: str) -> str:
    return f"shelves/{shelf_id}/books/{book_id}"


def _selected(book: library_pb2.Book, request: library_pb2.ListBooksRequest) -> bool:
    return (
        (request.include_unpublished or book.published)
        and (not request.max_pages or book.pages <= request.max_pages)
        and book.rating >= request.min_rating
        and (not request.genre or book.genre == request.genre)
        and set(request.tags) <= set(book.tags)
        and (not request.filter.author or book.author == request.filter.author)
        and book.pages >= request.filter.min_pages
    )


async def _abort(
    context: Context, code: grpc.StatusCode, reason: str, resource: str, resource_id: str
) -> NoReturn:
    """Fail the call with a `google.rpc.Status` carrying an `ErrorInfo`, as AIP-193 says."""
    message = f"{resource} {resource_id!r}: {reason.lower().replace('_', ' ')}"
    info = error_details_pb2.ErrorInfo(
        reason=reason, domain=DOMAIN, metadata={"resource": resource, "id": resource_id}
    )
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(code=code.value[0], message=message, details=[detail])
    await context.abort(
        code,
        message,
        trailing_metadata=(("grpc-status-details-bin", status.SerializeToString()),),
    )
