"""Proto comments by full name, read from a FileDescriptorSet with source info.

The Python descriptors the gateway routes with carry no comments; `make protos` writes
`gen/execgate/descriptor_set.binpb` with `--include_source_info` so the OpenAPI document
can describe every operation, schema and property in the protos' own words.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from google.protobuf import descriptor_pb2

# Field numbers inside descriptor.proto that make up SourceCodeInfo location paths.
_FILE_MESSAGE = 4
_FILE_ENUM = 5
_FILE_SERVICE = 6
_MESSAGE_FIELD = 2
_MESSAGE_NESTED = 3
_MESSAGE_ENUM = 4
_ENUM_VALUE = 2
_SERVICE_METHOD = 2


# A line that starts a Markdown list item or an indented block keeps its line break.
_KEEPS_BREAK = re.compile(r"\s|[-*+] |\d+\. ")


def _clean(comment: str) -> str:
    """Markdown text of a comment: lines of a paragraph joined, paragraphs and lists kept."""
    text = ""
    for line in (raw.removeprefix(" ").rstrip() for raw in comment.strip("\n").splitlines()):
        if not text:
            text = line
        elif not line or not text.split("\n")[-1] or _KEEPS_BREAK.match(line):
            text += "\n" + line
        else:
            text += " " + line
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _enum_names(
    enum: descriptor_pb2.EnumDescriptorProto, scope: str, path: tuple[int, ...]
) -> Iterator[tuple[tuple[int, ...], str]]:
    full = f"{scope}.{enum.name}"
    yield path, full
    for i, value in enumerate(enum.value):
        # Keyed under the enum (not protobuf's sibling scope) so values of two enums never clash.
        yield (*path, _ENUM_VALUE, i), f"{full}.{value.name}"


def _message_names(
    message: descriptor_pb2.DescriptorProto, scope: str, path: tuple[int, ...]
) -> Iterator[tuple[tuple[int, ...], str]]:
    full = f"{scope}.{message.name}"
    yield path, full
    for i, field in enumerate(message.field):
        yield (*path, _MESSAGE_FIELD, i), f"{full}.{field.name}"
    for i, nested in enumerate(message.nested_type):
        yield from _message_names(nested, full, (*path, _MESSAGE_NESTED, i))
    for i, enum in enumerate(message.enum_type):
        yield from _enum_names(enum, full, (*path, _MESSAGE_ENUM, i))


def _file_names(
    file: descriptor_pb2.FileDescriptorProto,
) -> Iterator[tuple[tuple[int, ...], str]]:
    scope = file.package
    for i, message in enumerate(file.message_type):
        yield from _message_names(message, scope, (_FILE_MESSAGE, i))
    for i, enum in enumerate(file.enum_type):
        yield from _enum_names(enum, scope, (_FILE_ENUM, i))
    for i, service in enumerate(file.service):
        full = f"{scope}.{service.name}"
        yield (_FILE_SERVICE, i), full
        for j, method in enumerate(service.method):
            yield (_FILE_SERVICE, i, _SERVICE_METHOD, j), f"{full}.{method.name}"


def comments_from_files(
    files: Sequence[descriptor_pb2.FileDescriptorProto],
) -> dict[str, str]:
    """Full name -> leading comment, for `pkg.Message.field`, `pkg.Enum.VALUE`, `pkg.Svc.Method`."""
    comments: dict[str, str] = {}
    for file in files:
        by_path = {
            tuple(location.path): location.leading_comments
            for location in file.source_code_info.location
            if location.leading_comments
        }
        for path, full_name in _file_names(file):
            text = by_path.get(path)
            if text:
                comments[full_name] = _clean(text)
    return comments


def load_comments(descriptor_set_path: Path) -> Mapping[str, str]:
    """Comments of every file in a serialized FileDescriptorSet (empty if it has no source info)."""
    descriptor_set = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set_path.read_bytes())
    return comments_from_files(descriptor_set.file)
