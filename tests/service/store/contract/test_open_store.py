"""`open_store` picks the store a URL names."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.store import open_store
from service.store.sqlite import SqliteStore


def test_sqlite_urls_name_relative_and_absolute_files(tmp_path: Path) -> None:
    relative = open_store("sqlite:///var/execgate.db")
    assert isinstance(relative, SqliteStore)
    assert relative.path == Path("var/execgate.db")

    absolute = open_store(f"sqlite:///{tmp_path}/x.db")
    assert isinstance(absolute, SqliteStore)
    assert absolute.path == tmp_path / "x.db"


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_postgres_urls_name_the_postgres_store(scheme: str) -> None:
    from service.store.postgres import PostgresStore

    assert isinstance(open_store(f"{scheme}://execgate@127.0.0.1:5432/execgate"), PostgresStore)


@pytest.mark.asyncio
async def test_sqlite_store_creates_its_folder(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/deeper/still/x.db")
    await store.open()
    try:
        assert await store.healthy()
    finally:
        await store.close()
    assert (tmp_path / "deeper" / "still" / "x.db").is_file()


@pytest.mark.parametrize(
    "url",
    ["sqlite://", "sqlite:///", "sqlite://host/x.db", "sqlite:///:memory:", "mysql://db/x", "x.db"],
)
def test_unusable_urls_are_refused_clearly(url: str) -> None:
    with pytest.raises(ValueError, match=r"sqlite:///|SQLite"):
        open_store(url)
