"""EXPERIMENT, NOT USED (removed in the next commit): a pure-Python fast path for
decoding well-formed records, meant to be exactly equal to pydantic's.

Measured on this machine (busy, CPython 3.11.7 built without PGO/LTO) it is NOT
faster than pydantic: ~8-10 us/event against ~7.5-9 us (orjson.loads alone ~1.6,
building two pydantic model instances from Python ~3 us with their deallocation,
the checks ~2.5 us). A mypyc-compiled hand-written equivalent for email.opened
reached 6.3 us against pydantic's 7.0. Kept in history for reference only.

`schemas.codec.decode_event` validates with pydantic (`ANY_EVENT.validate_json`),
which cost about 10 us per event, five times `orjson.loads` of the same bytes.
Almost every record on our topics is well formed, so `fast_decode` parses it with
orjson, checks each value with cheap checks that accept only what pydantic accepts
*and* converts the same way, and assembles the models as `model_construct` does
(values in declaration order, the set of fields given, extra, no private).

The checks are derived from each model's pydantic core schema (the very schema
pydantic validates with) when this module is imported: for each model a function
is generated (Python source, compiled with `exec`, kept in `SOURCES` for reading)
that checks its fields one after another. A check accepts only exact JSON types:

- str: a JSON string within the length limits; a pattern only when its Python
  translation here (`_PATTERNS`) is known to match exactly what pydantic's (Rust)
  regex matches;
- int: a JSON integer (no bool, no float such as 5.0), within its bounds;
- float: a JSON number (an integer only up to 2**53, exact as a float), in bounds;
- literal / enum: a JSON string equal to one of the values, given as the value
  pydantic gives (the enum member);
- datetime (`UtcDatetime`): `YYYY-MM-DDTHH:MM:SS[.f{1,6}](Z|+HH:MM|-HH:MM)` only,
  converted to UTC;
- models: a JSON object with known fields only (extension attributes of the
  envelope: strings, integers, booleans and nulls); lists and dicts of the above.

Anything else (another type, a value pydantic would coerce or refuse, an unknown
field, a schema feature this module does not know) makes `fast_decode` return
None and the caller validates with pydantic as before: errors and unusual inputs
behave exactly as they did. A model whose schema uses a feature not handled here
gets no fast path at all (`UNSUPPORTED` names it; a test keeps it empty).
tests/schemas/test_fastdecode.py compares both ways on the corpus, the examples,
generated valid and invalid events and edge cases.
"""

import re
from collections.abc import Callable
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Final

import orjson
from pydantic import BaseModel

from schemas.envelope import CloudEvent, _to_utc
from schemas.events import EVENT_MODELS

Builder = Callable[[Any], Any]


class _Unsure(Exception):
    """The fast path cannot vouch for this value: let pydantic decide."""


class UnsupportedSchema(Exception):
    """A core schema feature this module does not translate."""


_MISSING: Final = object()
_SLOTS: Final = BaseModel.__dict__
_TIME: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
).fullmatch
"""The RFC 3339 timestamps taken fast: pydantic (speedate) reads these exactly as
`datetime.fromisoformat` does; other forms it accepts (lowercase t/z, a space,
`+0900`, unix seconds, over 6 fraction digits) go to pydantic."""
_FROM_ISO: Final = datetime.fromisoformat


def _utc_datetime(value: str) -> datetime:
    """An aware datetime validated as pydantic's then `_to_utc`."""
    if _TIME(value) is None:
        raise _Unsure
    moment = _FROM_ISO(value)  # an invalid date or time raises ValueError: unsure
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment


_PATTERNS: Final[dict[str, tuple[str, bool]]] = {
    # pydantic's pattern -> a Python regex to fullmatch, and whether only ASCII
    # strings may be taken. Rust's `$` matches only at the very end (Python's also
    # before a final newline: hence fullmatch); Rust's `\s` is Unicode White_Space,
    # which within ASCII is [\t\n\v\f\r ] (Python's also \x1c-\x1f): spelled out,
    # for ASCII strings only.
    r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$": (r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}", False),
    r"^[A-Z]{2}$": (r"[A-Z]{2}", False),
    r"^[^@\s]+@[^@\s]+$": (r"[^@\t\n\v\f\r ]+@[^@\t\n\v\f\r ]+", True),
}
_PLAIN: Final = (type(None), str, int, float, bool)


class _Matches:
    """A regex's fullmatch, remembering the strings that matched (lead ids repeat:
    a lead sends many events); forgets them all past 100,000."""

    def __init__(self, regex: str) -> None:
        self.fullmatch = re.compile(regex).fullmatch
        self.known: set[str] = set()

    def __call__(self, value: str) -> bool:
        if self.fullmatch(value) is None:
            return False
        if len(self.known) >= 100_000:
            self.known.clear()
        self.known.add(value)
        return True


_UNION_TYPES: Final = {"str": str, "int": int, "float": float, "bool": bool}
_UTC_DATETIME: Final = {
    "type": "function-after",
    "function": {"type": "no-info", "function": _to_utc},
    "schema": {"type": "datetime", "tz_constraint": "aware", "microseconds_precision": "truncate"},
}
"""schemas.envelope.UtcDatetime's core schema."""


def _keys(schema: dict[str, Any], allowed: set[str]) -> None:
    unknown = set(schema) - allowed - {"type", "metadata", "ref"}
    if unknown:
        raise UnsupportedSchema(f"{schema['type']} with {sorted(unknown)}")


class _Generator:
    """Writes the checking functions of one event model from its core schema.

    A check is a few statements that test the local `var`, rebind it to the value
    pydantic gives and raise _Unsure when not sure (every check starts with an
    exact type test or an equality with a string, which _M, a missing value, fails).
    """

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {
            "_Unsure": _Unsure,
            "_M": _MISSING,
            "_utc": _utc_datetime,
            "_from_iso": _FROM_ISO,
            "_new": object.__new__,
            "_set_dict": _SLOTS["__dict__"].__set__,
            "_set_fields_set": _SLOTS["__pydantic_fields_set__"].__set__,
            "_set_extra": _SLOTS["__pydantic_extra__"].__set__,
            "_set_private": _SLOTS["__pydantic_private__"].__set__,
            "_extra_ok": _extra_ok,
        }
        self.functions: list[str] = []
        self.count = 0

    def constant(self, value: Any, hint: str) -> str:
        self.count += 1
        name = f"_{hint}{self.count}"
        self.namespace[name] = value
        return name

    def literal(self, value: Any) -> str:
        """`value` in the source: plain values as such, others as constants."""
        if type(value) in _PLAIN:
            return repr(value)
        return self.constant(value, "value")

    def check(self, schema: dict[str, Any], var: str, pad: str) -> list[str]:
        kind = schema["type"]
        fail = f"{pad}    raise _Unsure"
        if kind == "str":
            return [f"{pad}if {self.str_test(schema, var)}:", fail]
        if kind == "int":
            _keys(schema, {"ge"})
            test = f"type({var}) is not int"
            if "ge" in schema:
                test += f" or {var} < {int(schema['ge'])!r}"
            return [f"{pad}if {test}:", fail]
        if kind == "float":
            _keys(schema, {"ge"})
            lines = [
                f"{pad}if type({var}) is not float:",
                # pydantic reads an integer into a float field as a float: exact up to 2**53
                f"{pad}    if type({var}) is not int or not -9007199254740992 <= {var} "
                "<= 9007199254740992:",
                f"{pad}        raise _Unsure",
                f"{pad}    {var} = float({var})",
            ]
            if "ge" in schema:
                lines += [f"{pad}if not {var} >= {float(schema['ge'])!r}:", fail]
            return lines
        if kind in ("literal", "enum"):
            if kind == "literal":
                _keys(schema, {"expected"})
                expected = schema["expected"]
            else:
                _keys(schema, {"cls", "members", "sub_type"})
                if schema.get("sub_type") != "str":
                    raise UnsupportedSchema("an enum not of strings")
                expected = schema["members"]
            if not all(isinstance(value, str) for value in expected):
                raise UnsupportedSchema(f"a {kind} of non-strings")
            if len(expected) == 1:  # only a string equals a string
                lines = [f"{pad}if {var} != {str(expected[0])!r}:", fail]
                if type(expected[0]) is not str:  # the enum member
                    lines.append(f"{pad}{var} = {self.literal(expected[0])}")
                return lines
            values = self.constant({str(v): v for v in expected}, kind)
            return [
                f"{pad}if type({var}) is not str:",
                fail,
                f"{pad}{var} = {values}.get({var}, _M)",
                f"{pad}if {var} is _M:",
                fail,
            ]
        if kind == "nullable":
            _keys(schema, {"schema"})
            return [f"{pad}if {var} is not None:", *self.check(schema["schema"], var, pad + "    ")]
        if kind == "function-after":
            if schema != _UTC_DATETIME:
                raise UnsupportedSchema("a function other than UtcDatetime's")
            return [
                f"{pad}if type({var}) is not str:",
                fail,
                # YYYY-MM-DDTHH:MM:SSZ: fromisoformat takes its digits as pydantic does
                f"{pad}if len({var}) == 20 and {var}[4::3] == '--T::Z':",
                f"{pad}    {var} = _from_iso({var})",
                f"{pad}else:",
                f"{pad}    {var} = _utc({var})",
            ]
        if kind == "list":
            _keys(schema, {"items_schema"})
            item = self.function(schema["items_schema"])
            return [
                f"{pad}if type({var}) is not list:",
                fail,
                f"{pad}{var} = [{item}(x) for x in {var}]",
            ]
        if kind == "dict":
            _keys(schema, {"keys_schema", "values_schema"})
            key = self.function(schema["keys_schema"])
            value = self.function(schema["values_schema"])
            return [
                f"{pad}if type({var}) is not dict:",
                fail,
                f"{pad}{var} = {{{key}(k): {value}(x) for k, x in {var}.items()}}",
            ]
        if kind == "union":
            _keys(schema, {"choices"})
            kinds = [choice.get("type") for choice in schema["choices"]]
            plain = all(set(c) == {"type"} and c["type"] in _UNION_TYPES for c in schema["choices"])
            if not plain or len(set(kinds)) != len(kinds):
                raise UnsupportedSchema("a union other than of plain str/int/float/bool")
            # smart mode: a value of exactly one choice's type is that choice's
            types = self.constant(frozenset(_UNION_TYPES[k] for k in kinds), "types")
            return [f"{pad}if type({var}) not in {types}:", fail]
        if kind == "model":
            return [f"{pad}{var} = {self.model(schema)}({var})"]
        raise UnsupportedSchema(f"schema type {kind!r}")

    def str_test(self, schema: dict[str, Any], var: str) -> str:
        """The condition failing a string that `schema` would not take as it is."""
        _keys(schema, {"min_length", "max_length", "pattern"})
        test = f"type({var}) is not str"
        low, high = schema.get("min_length"), schema.get("max_length")
        if low and high is not None:
            test += f" or not {low} <= len({var}) <= {high}"
        elif low:
            test += f" or len({var}) < {low}"
        elif high is not None:
            test += f" or len({var}) > {high}"
        if "pattern" in schema:
            if schema["pattern"] not in _PATTERNS:
                raise UnsupportedSchema(f"pattern {schema['pattern']!r}")
            regex, ascii_only = _PATTERNS[schema["pattern"]]
            if ascii_only:
                test += f" or not {var}.isascii()"
            matches = _Matches(regex)
            known, check = self.constant(matches.known, "matched"), self.constant(matches, "match")
            test += f" or ({var} not in {known} and not {check}({var}))"
        return test

    def function(self, schema: dict[str, Any]) -> str:
        """A function checking one value (a list item, a dict key or value)."""
        self.count += 1
        name = f"_item{self.count}"
        body = self.check(schema, "v", "    ")
        self.functions.append("\n".join([f"def {name}(v):", *body, "    return v"]))
        return name

    def model(self, schema: dict[str, Any]) -> str:
        """A function building the model of `schema` from a JSON object."""
        _keys(schema, {"cls", "schema", "config", "custom_init", "root_model"})
        cls = schema["cls"]
        config = schema.get("config", {})
        if (
            schema.get("custom_init")
            or schema.get("root_model")
            or set(config)
            - {
                "extra_fields_behavior",
                "title",
            }
        ):
            raise UnsupportedSchema(f"model {cls.__name__} with custom init or config")
        extra = config.get("extra_fields_behavior", "ignore")
        if extra not in ("allow", "forbid"):
            raise UnsupportedSchema(f"model {cls.__name__} with extra={extra}")
        fields_schema = schema["schema"]
        _keys(fields_schema, {"fields", "computed_fields", "model_name"})
        if fields_schema.get("computed_fields") or fields_schema["type"] != "model-fields":
            raise UnsupportedSchema(f"model {cls.__name__} with computed fields")
        fields: dict[str, Any] = fields_schema["fields"]
        if list(fields) != list(cls.model_fields):
            raise UnsupportedSchema(f"model {cls.__name__}: fields not in declaration order")
        self.count += 1
        name = f"_{cls.__name__}{self.count}"
        known = self.constant(frozenset(fields), "known")
        # the fields given; a value that is not a JSON object is unsure (set() of a
        # string or a list is no set of names; a number raises TypeError)
        body = [f"def {name}(d):", "    if type(d) is not dict:", "        raise _Unsure"]
        body.append("    given = set(d)")
        if extra == "forbid":
            body += [f"    if not given <= {known}:", "        raise _Unsure"]
        else:  # extension attributes of plain kinds, kept as they are
            body += [
                f"    if given <= {known}:",
                "        extra = {}",
                "    else:",
                f"        extra = {{k: v for k, v in d.items() if k not in {known}}}",
                "        if not _extra_ok(extra):",
                "            raise _Unsure",
            ]
        for index, (field, field_schema) in enumerate(fields.items()):
            _keys(field_schema, {"schema"})
            body += self.field(cls.__name__, field, field_schema["schema"], f"v{index}")
        values = ", ".join(f"{field!r}: v{i}" for i, field in enumerate(fields))
        body += [
            f"    m = _new({self.constant(cls, 'cls')})",
            f"    _set_dict(m, {{{values}}})",
            "    _set_fields_set(m, given)",
            f"    _set_extra(m, {'None' if extra == 'forbid' else 'extra'})",
            "    _set_private(m, None)",
            "    return m",
        ]
        self.functions.append("\n".join(body))
        return name

    def field(self, model: str, field: str, schema: dict[str, Any], var: str) -> list[str]:
        """Statements binding `var` to the field's value (its default when missing)."""
        if schema["type"] != "default":  # required: a missing one raises KeyError
            return [f"    {var} = d[{field!r}]", *self.check(schema, var, "    ")]
        _keys(schema, {"schema", "default"})
        default, inner = schema["default"], schema["schema"]
        if type(default) not in _PLAIN and not isinstance(default, Enum):
            raise UnsupportedSchema(f"{model}.{field}: a default of {type(default)}")
        if (
            inner["type"] == "literal"
            and len(inner["expected"]) == 1
            and isinstance(default, str)
            and default == inner["expected"][0]
        ):  # missing: the default, which is the one value
            return [
                f"    {var} = d.get({field!r}, {str(default)!r})",
                *self.check(inner, var, "    "),
            ]
        if default is None and inner["type"] == "nullable":  # missing and null: both None
            return [f"    {var} = d.get({field!r})", *self.check(inner, var, "    ")]
        return [
            f"    {var} = d.get({field!r}, _M)",
            f"    if {var} is _M:",
            f"        {var} = {self.literal(default)}",
            "    else:",
            *self.check(inner, var, "        "),
        ]


def _extra_ok(extra: dict[str, Any]) -> bool:
    """Whether pydantic keeps these extension values as orjson read them: strings,
    booleans, nulls and integers (orjson reads an integer beyond 64 bits as a float,
    pydantic as an int: floats, lists and objects go to pydantic)."""
    return all(type(value) in (str, int, bool, type(None)) for value in extra.values())


def _compile(cls: type[CloudEvent]) -> tuple[Builder, str]:
    generator = _Generator()
    entry = generator.model(cls.__pydantic_core_schema__)  # type: ignore[arg-type]
    source = "\n\n".join(generator.functions) + "\n"
    exec(compile(source, f"<fastdecode {cls.__name__}>", "exec"), generator.namespace)  # noqa: S102
    builder: Builder = generator.namespace[entry]
    return builder, source


BUILDERS: Final[dict[str, Builder]] = {}
"""The event type (its string) -> the generated function building its model."""
SOURCES: Final[dict[str, str]] = {}
"""The event type -> the source of its generated functions (to read them)."""
UNSUPPORTED: Final[dict[str, str]] = {}
"""The event types without a fast path, and why."""

for _type, _cls in EVENT_MODELS.items():
    try:
        BUILDERS[_type.value], SOURCES[_type.value] = _compile(_cls)
    except UnsupportedSchema as _exc:
        UNSUPPORTED[_type.value] = str(_exc)

_loads: Final = orjson.loads


def fast_decode(value: bytes | str) -> CloudEvent | None:
    """The event pydantic would decode from `value`, or None when not sure."""
    try:
        record = _loads(value)
        event: CloudEvent = BUILDERS[record["type"]](record)
        return event
    except Exception:  # noqa: BLE001  # not JSON, not an object, a value not vouched for: pydantic
        return None
