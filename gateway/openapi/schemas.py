"""JSON Schemas of proto messages, following the gateway's REST rendering rules.

The rules (see the renderer in `gateway/transcode/`): proto field names; every field is
present; a field with presence (message, proto3 `optional`, oneof member) may be `null`
unless marked `NON_EMPTY_DEFAULT`; a `deprecated` repeated field is omitted when empty and
otherwise an array; `RawJson` is the JSON object itself; enums are their REST names;
Timestamps RFC 3339 strings; other well-known types as protojson writes them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from google.api import field_behavior_pb2  # type: ignore[import-untyped, unused-ignore]
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from gateway.transcode.descriptor_info import (
    ANY,
    DURATION,
    EMPTY,
    FIELD_MASK,
    INT32_TYPES,
    INT64_TYPES,
    LIST_VALUE,
    RAW_JSON,
    RAW_JSON_LIST,
    STRUCT,
    TIMESTAMP,
    UINT32_TYPES,
    UINT64_TYPES,
    VALUE,
    WRAPPERS,
    enum_rest_values,
    field_behaviors,
    has_unspecified_zero,
    is_map,
    is_map_order,
    is_non_empty_default,
    map_key_value,
    rest_field,
)

Schema = dict[str, Any]

JSON_OBJECT: Schema = {"type": "object", "additionalProperties": True}
NULL: Schema = {"type": "null"}

_SCALARS: dict[int, Schema] = {
    **{t: {"type": "integer", "format": "int32"} for t in INT32_TYPES},
    **{t: {"type": "integer", "format": "int64"} for t in INT64_TYPES},
    **{t: {"type": "integer", "format": "int32", "minimum": 0} for t in UINT32_TYPES},
    **{t: {"type": "integer", "format": "int64", "minimum": 0} for t in UINT64_TYPES},
    FieldDescriptor.TYPE_DOUBLE: {"type": "number", "format": "double"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number", "format": "float"},
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "contentEncoding": "base64"},
}

# Messages with a JSON form of their own (protojson's, and RawJson's).
_SPECIAL_MESSAGES: dict[str, Schema] = {
    RAW_JSON: JSON_OBJECT,
    RAW_JSON_LIST: {"type": "array", "items": JSON_OBJECT},
    TIMESTAMP: {"type": "string", "format": "date-time"},
    DURATION: {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$"},
    STRUCT: JSON_OBJECT,
    VALUE: {},
    LIST_VALUE: {"type": "array", "items": {}},
    EMPTY: {"type": "object", "additionalProperties": False},
    FIELD_MASK: {"type": "string"},
    ANY: {"type": "object", "properties": {"@type": {"type": "string"}}, "required": ["@type"]},
    **{name: _SCALARS[scalar] for name, scalar in WRAPPERS.items()},
}


def _default_of(field: FieldDescriptor) -> Any:
    rules = rest_field(field)
    if rules is not None and rules.HasField("default_value"):
        return rules.default_value
    if field.enum_type is not None:
        return enum_rest_values(field.enum_type).get(0)  # none for an UNSPECIFIED zero
    if field.type == FieldDescriptor.TYPE_BYTES:
        return ""
    return field.default_value


def field_examples(field: FieldDescriptor) -> list[Any]:
    """The field's `rest_field.examples`, parsed (each is JSON text)."""
    rules = rest_field(field)
    return [json.loads(text) for text in rules.examples] if rules is not None else []


def _title(name: str) -> str:
    """`retriever_id` -> `Retriever Id`, the same titles the contract's schemas carry."""
    return " ".join(word.capitalize() for word in name.split("_"))


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


class SchemaRegistry:
    """Builds `components.schemas`: one entry per message and enum that is referred to.

    A component is named by the short proto name (as the contract names them); a second
    type with the same short name, or one clashing with a reserved name such as
    `ErrorResponse`, gets its full name with the dots replaced by underscores.
    """

    def __init__(self, comments: Mapping[str, str], reserved: frozenset[str]) -> None:
        self._comments = comments
        self._reserved = reserved
        self._names: dict[str, str] = {}  # proto full name -> component name
        self.components: dict[str, Schema] = {}

    def _component_name(self, short: str, full: str) -> tuple[str, bool]:
        """(name, already built)."""
        if full in self._names:
            return self._names[full], True
        taken = self._reserved | set(self._names.values())
        name = short if short not in taken else full.replace(".", "_")
        self._names[full] = name
        return name, False

    def message(self, message: Descriptor) -> Schema:
        """A schema for one value of the message type: inline for special types, else a $ref."""
        special = _SPECIAL_MESSAGES.get(message.full_name)
        if special is not None:
            return dict(special)
        name, built = self._component_name(message.name, message.full_name)
        if not built:
            self.components[name] = {}  # placeholder first: recursive messages refer to it
            self.components[name] = self._message_schema(message)
        return _ref(name)

    def enum(self, enum: EnumDescriptor) -> Schema:
        name, built = self._component_name(enum.name, enum.full_name)
        if not built:
            rest_names = enum_rest_values(enum)
            values = list(dict.fromkeys(rest_names.values()))
            schema: Schema = {"type": "string", "enum": values, "title": name}
            lines = [self._comments.get(enum.full_name, "")]
            value_docs: dict[str, str] = {}  # REST name -> comment; an alias adds nothing
            for value in enum.values:
                comment = self._comments.get(f"{enum.full_name}.{value.name}")
                if comment and value.number in rest_names:
                    value_docs.setdefault(rest_names[value.number], comment)
            lines.append("\n".join(f"- `{name}`: {doc}" for name, doc in value_docs.items()))
            description = "\n\n".join(line for line in lines if line)
            if description:
                schema["description"] = description
            self.components[name] = schema
        return _ref(name)

    def value(self, field: FieldDescriptor) -> Schema:
        """The schema of one value of the field (an element, for a repeated field)."""
        if field.message_type is not None:
            return self.message(field.message_type)
        if field.enum_type is not None:
            return self.enum(field.enum_type)
        schema = dict(_SCALARS[field.type])
        rules = rest_field(field)
        if rules is not None:  # the bounds the request mapper enforces
            if rules.HasField("minimum"):
                schema["minimum"] = rules.minimum
            if rules.HasField("maximum"):
                schema["maximum"] = rules.maximum
            if rules.HasField("default_value"):
                schema["default"] = rules.default_value
        return schema

    def is_nullable(self, field: FieldDescriptor) -> bool:
        """Whether the renderer can write `null` for this field."""
        if field.is_repeated:
            return bool(field.GetOptions().deprecated) and not is_map(field)
        return field.has_presence and not is_non_empty_default(field)

    def shape(self, field: FieldDescriptor) -> Schema:
        """The field's value without null: an object for a map, an array for a repeated field."""
        if is_map(field):
            _, value_field = map_key_value(field)
            return {"type": "object", "additionalProperties": self.body_value(value_field)}
        if field.is_repeated:
            return {"type": "array", "items": self.body_value(field)}
        return self.body_value(field)

    def body_value(self, field: FieldDescriptor) -> Schema:
        """One value in a JSON body: as `value`, but an enum whose UNSPECIFIED zero renders
        as `null` (a field not marked REQUIRED) may be null."""
        schema = self.value(field)
        if (
            field.enum_type is not None
            and has_unspecified_zero(field.enum_type)
            and not self.is_required(field)
        ):
            return {"anyOf": [schema, NULL]}
        return schema

    def field(self, field: FieldDescriptor) -> Schema:
        """A property schema: shape, nullability, title, description and field options."""
        schema = self.shape(field)
        if self.is_nullable(field) and NULL not in schema.get("anyOf", ()):
            schema = {"anyOf": [schema, NULL]}
        behaviors = field_behaviors(field)
        schema["title"] = _title(field.name)
        description = self._comments.get(field.full_name)
        if description:
            schema["description"] = description
        if not field.has_presence and not field.is_repeated and not self.is_required(field):
            default = _default_of(field)
            if default is not None:
                schema["default"] = default
        examples = field_examples(field)
        if examples:
            schema["examples"] = examples
        if field.GetOptions().deprecated:
            schema["deprecated"] = True
        if field_behavior_pb2.OUTPUT_ONLY in behaviors:
            schema["readOnly"] = True
        if field_behavior_pb2.INPUT_ONLY in behaviors:
            schema["writeOnly"] = True
        return schema

    @staticmethod
    def is_required(field: FieldDescriptor) -> bool:
        return field_behavior_pb2.REQUIRED in field_behaviors(field)

    def object_schema(
        self, message: Descriptor, fields: list[FieldDescriptor], title: str
    ) -> Schema:
        """An object schema of some of a message's fields (all of them for its component)."""
        fields = [field for field in fields if not is_map_order(field)]  # not in REST bodies
        schema: Schema = {
            "type": "object",
            "properties": {field.name: self.field(field) for field in fields},
            "title": title,
        }
        required = [field.name for field in fields if self.is_required(field)]
        if required:
            schema["required"] = required
        description = self._comments.get(message.full_name)
        if description:
            schema["description"] = description
        if message.GetOptions().deprecated:
            schema["deprecated"] = True
        return schema

    def _message_schema(self, message: Descriptor) -> Schema:
        name = self._names[message.full_name]
        return self.object_schema(message, list(message.fields), name)
