"""Reads Schema/*.tl and turns Telethon objects into the normalized field tree the Swift tests compare.

The tree is driven by our schema, not by Telethon's `to_dict()`, because `to_dict()` hides what the
wire says: it turns an absent `flags.N?Vector<T>` into `[]`, keeps absent `true` flags as `None`, and
has Telethon's own names (`is_self`, `from_`). The tree uses TL names and TL semantics instead:

- an object is a dict: `"_"` is the TL constructor name, then one key per TL field (flag words
  `flags:#` are left out: they are implied by the other fields);
- `int`, `long`: JSON integers (dates too, as Unix seconds); `int128`/`int256`: lower-case hex of
  the little-endian wire bytes;
- `double`: a JSON string of Python's `float.hex()`, so the value survives JSON exactly;
- `string`: the text; `bytes` (and the `string` fields of BYTES_FIELDS): lower-case hex;
- `Bool` and `flags.N?true`: JSON booleans (an absent `true` flag is `false`);
- an absent optional field: `null`; vectors: JSON arrays.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILES = {"api": ROOT / "Schema" / "api.tl", "mtproto": ROOT / "Schema" / "mtproto.tl"}

# `string` fields that carry raw bytes, typed `[UInt8]` by our generator (GeneratorOptions.bytesFields
# in Sources/TLGen): their tree value is hex, like `bytes`. Telethon keeps them as str.
BYTES_FIELDS = {("msgs_state_info", "info"), ("msgs_all_info", "info")}

# Telethon renames the TL fields that are Python keywords or clash with `self`.
TELETHON_ATTRIBUTE = {"self": "is_self", "from": "from_"}


@dataclass(frozen=True)
class Param:
    name: str
    type: str  # the TL type with any `flags.N?` prefix removed
    flag: tuple[str, int] | None  # (flags field, bit) for optional fields


@dataclass(frozen=True)
class Combinator:
    name: str
    id: int
    params: tuple[Param, ...]
    result: str
    is_function: bool
    schema: str


_LINE = re.compile(r"^([A-Za-z_][\w.]*)#([0-9a-fA-F]{1,8})\s*(.*?)\s*=\s*([^;]+);")


def load_schema() -> dict[int, Combinator]:
    combinators: dict[int, Combinator] = {}
    for schema, path in SCHEMA_FILES.items():
        is_function = False
        for raw in path.read_text(encoding="utf-8").splitlines():
            line = raw.strip()
            if line.startswith("---functions---"):
                is_function = True
                continue
            if line.startswith("---types---"):
                is_function = False
                continue
            match = _LINE.match(line)
            if not match:
                continue
            name, hex_id, body, result = match.groups()
            params = []
            for token in body.split():
                if token.startswith("{"):
                    continue  # generic parameter declaration such as {X:Type}
                field, _, type_ = token.partition(":")
                flag = None
                conditional = re.match(r"^(\w+)\.(\d+)\?(.+)$", type_)
                if conditional:
                    flag = (conditional.group(1), int(conditional.group(2)))
                    type_ = conditional.group(3)
                params.append(Param(field, type_, flag))
            combinator = Combinator(name, int(hex_id, 16), tuple(params), result.strip(), is_function, schema)
            combinators[combinator.id] = combinator
    return combinators


def _unix(value) -> int:
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return int(value.timestamp())
    return int(value)


def _inner(type_: str) -> str | None:
    match = re.match(r"^[Vv]ector<(.+)>$", type_)
    return match.group(1) if match else None


class Normalizer:
    def __init__(self, combinators: dict[int, Combinator]):
        self.combinators = combinators

    def tree(self, obj) -> dict:
        cid = getattr(obj, "CONSTRUCTOR_ID", None)
        combinator = self.combinators.get(cid)
        if combinator is None:
            raise KeyError(f"{type(obj).__name__} (id {cid!r}) is not in Schema/*.tl")
        node = {"_": combinator.name}
        for param in combinator.params:
            if param.type == "#":
                continue
            value = getattr(obj, TELETHON_ATTRIBUTE.get(param.name, param.name))
            if (combinator.name, param.name) in BYTES_FIELDS and param.type == "string":
                param = Param(param.name, "bytes", param.flag)
                if isinstance(value, str):
                    value = value.encode("utf-8")
            node[param.name] = self.value(value, param)
        return node

    def value(self, value, param: Param):
        if param.type == "true":
            return bool(value)
        if value is None:
            if param.flag is None:
                raise ValueError(f"required field {param.name} is None")
            return None
        return self.typed(value, param.type)

    def typed(self, value, type_: str):
        inner = _inner(type_)
        if inner is not None:
            return [self.typed(item, inner) for item in value]
        if type_ in ("int", "long"):
            return _unix(value)
        if type_ == "int128":
            return value.to_bytes(16, "little", signed=True).hex()
        if type_ == "int256":
            return value.to_bytes(32, "little", signed=True).hex()
        if type_ == "double":
            return float(value).hex()
        if type_ == "string":
            return value
        if type_ == "bytes":
            return bytes(value).hex()
        if type_ == "Bool":
            return bool(value)
        return self.tree(value)  # boxed, bare, `!X` or `Object`: an object of its own
