"""JSON request bodies, read by the routes themselves: the nesting depth is checked before the JSON is parsed,
then the body is validated against the route's model, whose unknown fields are refused.

- A body nested deeper than ``--max-json-depth`` is a 422 naming the limit (found without parsing, so a
  50,000-deep array never reaches the parser's recursion).
- A body that is not JSON, or not what the model says, is a 422 naming the field.
- A field the model does not have (a misspelt ``optins``) is a 422 that lists the valid fields.
"""
from __future__ import annotations

import json
import re
from itertools import accumulate

from pydantic import BaseModel, ConfigDict, ValidationError

from hub.serve.errors import ApiError
from hub.serve.limits import Limits, over_limit

# a JSON string, escapes included (unrolled: no backtracking per character)
STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
BRACKETS = b"[]{}"
# '[' and '{' step in (+1), ']' and '}' step out (-1, as a signed byte)
STEPS = bytes.maketrans(BRACKETS, bytes([1, 255, 1, 255]))
OTHER_BYTES = bytes(b for b in range(256) if b not in BRACKETS)


class Body(BaseModel):
    """A JSON request body: fields it does not declare are refused."""

    model_config = ConfigDict(extra="forbid")


def json_depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in JSON text (brackets inside strings are not counted)."""
    steps = STRING.sub(b"", raw).translate(STEPS, OTHER_BYTES)
    return max(accumulate(memoryview(steps).cast("b")), default=0)


def check_depth(raw: bytes, limits: Limits) -> None:
    """A 422 naming ``max_json_depth`` when the body is nested deeper than it allows."""
    limit = limits.max_json_depth
    if raw.count(b"[") + raw.count(b"{") <= limit:  # cannot be deeper than it has brackets
        return
    depth = json_depth(raw)
    if depth > limit:
        raise over_limit("max_json_depth", "the nesting depth of the JSON body (arrays and objects)", depth, limit,
                         None)


def parse_json(raw: bytes, limits: Limits, what: str = "the body"):
    """The value of JSON text whose depth is within the limit; a 422 naming the problem otherwise."""
    check_depth(raw, limits)
    try:
        return json.loads(raw)
    except RecursionError:  # only when the limit is set past what Python's parser can nest
        raise over_limit("max_json_depth", f"the nesting depth of {what}", "more than Python can parse",
                         limits.max_json_depth, None) from None
    except ValueError as exc:
        raise ApiError(422, f"{what} is not valid JSON ({exc}); send a JSON object with the header "
                            "'Content-Type: application/json'", None, "invalid_json") from None


def read_model(raw: bytes, model: type[BaseModel], limits: Limits):
    """``raw`` parsed (depth checked) and validated as ``model``; a 422 naming the field otherwise."""
    value = parse_json(raw, limits)
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise invalid(exc, model) from None


def invalid(exc: ValidationError, model: type[BaseModel]) -> ApiError:
    """The 422 for a body that does not validate: unknown fields listed with the valid ones, else the first error."""
    errors = exc.errors()
    unknown = [str(e["loc"][0]) for e in errors if e.get("type") == "extra_forbidden" and len(e["loc"]) == 1]
    if unknown:
        return unknown_fields(unknown, model)
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(p) for p in first.get("loc", ())) or "body"
    return ApiError(422, f"invalid request: {where}: {first.get('msg')}", where, "invalid_request")


def unknown_fields(names: list[str], model: type[BaseModel]) -> ApiError:
    """A 422 naming the unknown fields of a body and listing the fields it takes."""
    valid = ", ".join(model.model_fields)
    listed = ", ".join(f"'{n}'" for n in names)
    return ApiError(422, f"unknown field{'s' if len(names) > 1 else ''} {listed} in the request body; the valid "
                         f"fields are {valid}", names[0], "unknown_field")


def narrowed(**keywords):
    """A ``json_schema_extra`` adding ``keywords`` to a field's schema (to its non-null branch when it is nullable),
    so that the schema says what the route checks itself, with its own messages (a schema-valid request is
    then refused only for what no schema can know: a model's options, the content of an image, ...)."""
    def extra(schema: dict) -> None:
        branches = [b for b in schema.get("anyOf", ()) if b.get("type") != "null"]
        (branches[0] if len(branches) == 1 else schema).update(keywords)

    return extra


def not_null(**keywords):
    """A ``json_schema_extra`` that declares an optional form field as its type alone (a form cannot send null)."""
    def extra(schema: dict) -> None:
        branches = [b for b in schema.pop("anyOf", ()) if b.get("type") != "null"]
        schema.update(branches[0] if len(branches) == 1 else {}, **keywords)

    return extra


def openapi_body(model: type[BaseModel], **more_content) -> dict:
    """``openapi_extra`` declaring ``model`` as the route's JSON body (plus other content types given)."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}, **more_content}}}
