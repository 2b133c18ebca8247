"""Copy as curl and as grpcurl: the commands on screen leave the key out, and they work.

Each command is run as shown, in a shell whose `EXECGATE_API_KEY` holds the key,
and must answer what the page shows.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from tests.ui.viewer_stack import Viewer

pytestmark = [pytest.mark.slow, pytest.mark.asyncio]
GRPCURL = Path(sys.executable).with_name("grpcurl")


async def _commands(viewer: Viewer) -> dict[str, str]:
    page = viewer.page
    await page.locator(".commands > summary").click()
    blocks = page.locator(".commands pre.command")
    await expect(blocks).to_have_count(2)
    texts = [str(text) for text in await blocks.all_text_contents()]
    labels = [str(await block.get_attribute("aria-label")) for block in await blocks.all()]
    return dict(zip(labels, texts, strict=True))


async def _run(command: str, viewer: Viewer) -> Any:
    environment = {
        **os.environ,
        "EXECGATE_API_KEY": viewer.key,
        "EXECGATE_GRPC_ADDRESS": viewer.service.address,
        "PATH": f"{GRPCURL.parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    process = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        command,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, stderr.decode()
    return json.loads(stdout)


def _field(message: dict[str, Any], name: str) -> Any:
    # grpcurl prints the proto field names or their lowerCamelCase JSON names by version.
    camel = name.split("_")[0] + "".join(part.title() for part in name.split("_")[1:])
    return message[name] if name in message else message[camel]


def _check_no_key(viewer: Viewer, commands: dict[str, str]) -> None:
    for command in commands.values():
        assert viewer.key not in command
        assert "$EXECGATE_API_KEY" in command


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
async def test_detail_commands_answer_the_execution_on_screen(viewer: Viewer) -> None:
    execution_id = viewer.execution("completed_10")
    await viewer.sign_in()
    await viewer.open_execution(execution_id)
    commands = await _commands(viewer)
    _check_no_key(viewer, commands)
    rest = await _run(commands["curl"], viewer)
    assert rest["execution_id"] == execution_id
    assert rest["status"] == await viewer.page.text_content(".overview .badge")
    if GRPCURL.is_file():
        grpc = await _run(commands["grpcurl"], viewer)
        assert _field(grpc, "execution_id") == execution_id
        assert grpc["status"] == "EXECUTION_STATUS_COMPLETED"
    viewer.assert_clean()


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
async def test_list_commands_answer_the_listing_on_screen(viewer: Viewer) -> None:
    await viewer.sign_in()
    await viewer.open_list("?status=completed&sort=credits_used.asc")
    page = viewer.page
    await expect(page.locator("table.executions tbody tr")).to_have_count(2)
    shown = await page.locator("table.executions tbody tr").evaluate_all(
        "rows => rows.map(row => row.dataset.executionId)"
    )
    commands = await _commands(viewer)
    _check_no_key(viewer, commands)
    rest = await _run(commands["curl"], viewer)
    assert [row["execution_id"] for row in rest["results"]] == shown
    if GRPCURL.is_file():
        grpc = await _run(commands["grpcurl"], viewer)
        assert [_field(row, "execution_id") for row in grpc["results"]] == shown
    viewer.assert_clean()
