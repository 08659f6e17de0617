"""The runtime behind the generated messages: field descriptors that validate and convert
one JSON value each, and the Message base class (from_json / to_json / validation).

Validation follows the JSON Schemas in docs/schemas, which the TypeScript side derives
from the same zod definitions, so a message this module accepts is one the loop accepts.
Every error is a ValueError that names the field (``confidence: must be <= 1, got 1.5``).
Unknown keys in incoming JSON are ignored, so a client generated from older schemas keeps
reading messages that gained a field.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar, Dict, Mapping, Optional, Tuple, Type, TypeVar, Union

M = TypeVar("M", bound="Message")


class Descriptor:
    """Checks and converts one JSON value (``load``) and turns it back into JSON (``dump``)."""

    def load(self, value: Any, path: str) -> Any:
        raise NotImplementedError

    def dump(self, value: Any) -> Any:
        return value

    def describe(self) -> str:
        raise NotImplementedError


def _fail(path: str, problem: str, value: Any) -> ValueError:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return ValueError(f"{path}: {problem}, got {shown}")


@dataclass(frozen=True)
class _Bounds:
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    exclusive_minimum: Optional[float] = None
    exclusive_maximum: Optional[float] = None

    def check(self, value: float, path: str) -> None:
        if self.minimum is not None and value < self.minimum:
            raise _fail(path, f"must be >= {self.minimum:g}", value)
        if self.maximum is not None and value > self.maximum:
            raise _fail(path, f"must be <= {self.maximum:g}", value)
        if self.exclusive_minimum is not None and value <= self.exclusive_minimum:
            raise _fail(path, f"must be > {self.exclusive_minimum:g}", value)
        if self.exclusive_maximum is not None and value >= self.exclusive_maximum:
            raise _fail(path, f"must be < {self.exclusive_maximum:g}", value)


class Num(Descriptor):
    def __init__(self, **bounds: float) -> None:
        self._bounds = _Bounds(**bounds)

    def load(self, value: Any, path: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(path, "must be a number", value)
        if not math.isfinite(value):
            raise _fail(path, "must be a finite number", value)
        self._bounds.check(value, path)
        return value

    def describe(self) -> str:
        return "a number"


class Int(Descriptor):
    def __init__(self, **bounds: float) -> None:
        self._bounds = _Bounds(**bounds)

    def load(self, value: Any, path: str) -> Any:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(path, "must be an integer", value)
        self._bounds.check(value, path)
        return value

    def describe(self) -> str:
        return "an integer"


class Str(Descriptor):
    def __init__(self, min_length: Optional[int] = None, max_length: Optional[int] = None, pattern: Optional[str] = None) -> None:
        self._min = min_length
        self._max = max_length
        self._pattern = re.compile(pattern) if pattern is not None else None

    def load(self, value: Any, path: str) -> Any:
        if not isinstance(value, str):
            raise _fail(path, "must be a string", value)
        if self._min is not None and len(value) < self._min:
            raise _fail(path, f"must have at least {self._min} characters", value)
        if self._max is not None and len(value) > self._max:
            raise _fail(path, f"must have at most {self._max} characters", value)
        if self._pattern is not None and self._pattern.search(value) is None:
            raise _fail(path, f"must match {self._pattern.pattern.replace(chr(92) + 'Z', '$')}", value)
        return value

    def describe(self) -> str:
        return "a string"


class Bool(Descriptor):
    def load(self, value: Any, path: str) -> Any:
        if not isinstance(value, bool):
            raise _fail(path, "must be true or false", value)
        return value

    def describe(self) -> str:
        return "a boolean"


class Null(Descriptor):
    def load(self, value: Any, path: str) -> Any:
        if value is not None:
            raise _fail(path, "must be null", value)
        return None

    def describe(self) -> str:
        return "null"


class Const(Descriptor):
    def __init__(self, *values: Any) -> None:
        self._values = values

    def load(self, value: Any, path: str) -> Any:
        if value not in self._values or isinstance(value, bool) != any(isinstance(v, bool) for v in self._values):
            raise _fail(path, f"must be one of {', '.join(json.dumps(v) for v in self._values)}", value)
        return value

    def describe(self) -> str:
        return " or ".join(json.dumps(v) for v in self._values)


class AnyJson(Descriptor):
    def load(self, value: Any, path: str) -> Any:
        return value

    def describe(self) -> str:
        return "any JSON value"


class EnumOf(Descriptor):
    def __init__(self, enum: Type[Enum]) -> None:
        self._enum = enum

    def load(self, value: Any, path: str) -> Any:
        if isinstance(value, self._enum):
            return value
        try:
            return self._enum(value)
        except ValueError:
            allowed = ", ".join(str(member.value) for member in self._enum)
            raise _fail(path, f"must be one of {allowed}", value) from None

    def dump(self, value: Any) -> Any:
        return value.value if isinstance(value, Enum) else value

    def describe(self) -> str:
        return f"a {self._enum.__name__}"


class Obj(Descriptor):
    def __init__(self, cls: Type[Message]) -> None:
        self._cls = cls

    def load(self, value: Any, path: str) -> Any:
        if isinstance(value, self._cls):
            return value
        if not isinstance(value, Mapping):
            raise _fail(path, f"must be an object ({self._cls.__name__})", value)
        return self._cls._load(value, path + ".")

    def dump(self, value: Any) -> Any:
        return value.to_dict() if isinstance(value, Message) else value

    def describe(self) -> str:
        return f"a {self._cls.__name__}"


class ListOf(Descriptor):
    def __init__(self, item: Descriptor, min_items: Optional[int] = None, max_items: Optional[int] = None) -> None:
        self._item = item
        self._min = min_items
        self._max = max_items

    def load(self, value: Any, path: str) -> Any:
        if not isinstance(value, (list, tuple)):
            raise _fail(path, "must be an array", value)
        if self._min is not None and len(value) < self._min:
            raise _fail(path, f"must have at least {self._min} item(s)", value)
        if self._max is not None and len(value) > self._max:
            raise _fail(path, f"must have at most {self._max} item(s)", value)
        return [self._item.load(item, f"{path}[{index}]") for index, item in enumerate(value)]

    def dump(self, value: Any) -> Any:
        return [self._item.dump(item) for item in value]

    def describe(self) -> str:
        return f"an array of {self._item.describe()}"


class DictOf(Descriptor):
    def __init__(self, value: Descriptor, min_properties: Optional[int] = None, max_properties: Optional[int] = None) -> None:
        self._value = value
        self._min = min_properties
        self._max = max_properties

    def load(self, value: Any, path: str) -> Any:
        if not isinstance(value, Mapping):
            raise _fail(path, "must be an object", value)
        if self._min is not None and len(value) < self._min:
            raise _fail(path, f"must have at least {self._min} key(s)", value)
        if self._max is not None and len(value) > self._max:
            raise _fail(path, f"must have at most {self._max} key(s)", value)
        out: Dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _fail(path, "must have string keys", key)
            out[key] = self._value.load(item, f"{path}.{key}")
        return out

    def dump(self, value: Any) -> Any:
        return {key: self._value.dump(item) for key, item in value.items()}

    def describe(self) -> str:
        return f"an object of {self._value.describe()}"


class AnyOf(Descriptor):
    def __init__(self, *options: Descriptor) -> None:
        self._options = options

    def load(self, value: Any, path: str) -> Any:
        errors = []
        for option in self._options:
            try:
                return option.load(value, path)
            except ValueError as error:
                errors.append(error)
        # One non-null option (a nullable field): its own error is the useful one.
        concrete = [(o, e) for o, e in zip(self._options, errors) if not isinstance(o, Null)]
        if len(concrete) == 1 and value is not None:
            raise concrete[0][1]
        raise _fail(path, f"must be {self.describe()}", value)

    def dump(self, value: Any) -> Any:
        for option in self._options:
            try:
                option.load(value, "")
            except ValueError:
                continue
            return option.dump(value)
        return value

    def describe(self) -> str:
        return " or ".join(option.describe() for option in self._options)


@dataclass(frozen=True)
class Field:
    """One field of a message: its Python name, its JSON key, how to check it, whether it must be present."""

    name: str
    key: str
    descriptor: Descriptor
    required: bool


class Message:
    """Base of every generated message: validated when built, from_json / to_json."""

    _FIELDS: ClassVar[Tuple[Field, ...]] = ()

    def __post_init__(self) -> None:
        self._check("")

    def _check(self, prefix: str) -> None:
        for field in self._FIELDS:
            value = getattr(self, field.name)
            if value is None and not field.required:
                continue
            try:
                loaded = field.descriptor.load(value, prefix + field.key)
            except ValueError as error:
                raise ValueError(f"invalid {type(self).__name__}: {error}") from None
            if loaded is not value:
                # Converted (a str to its enum, a dict to its dataclass): frozen, so set it directly.
                object.__setattr__(self, field.name, loaded)

    @classmethod
    def _load(cls: Type[M], data: Mapping[str, Any], prefix: str = "") -> M:
        """Checks and converts a JSON object; errors name the field with its path (``portfolio.win_rate``)."""
        kwargs: Dict[str, Any] = {}
        for field in cls._FIELDS:
            if field.key in data:
                value = data[field.key]
                if value is None and not field.required:
                    continue
                kwargs[field.name] = field.descriptor.load(value, prefix + field.key)
            elif field.required:
                raise ValueError(f"{prefix}{field.key}: is required")
        # Every value is checked and converted already, so __post_init__ finds nothing to change.
        return cls(**kwargs)

    @classmethod
    def from_dict(cls: Type[M], data: Mapping[str, Any]) -> M:
        """Builds the message from a decoded JSON object; ValueError naming the first bad field."""
        if not isinstance(data, Mapping):
            raise ValueError(f"invalid {cls.__name__}: (root): must be a JSON object, got {type(data).__name__}")
        try:
            return cls._load(data)
        except ValueError as error:
            raise ValueError(f"invalid {cls.__name__}: {error}") from None

    @classmethod
    def from_json(cls: Type[M], text: Union[str, bytes]) -> M:
        """Parses and validates one payload; ValueError when it is not JSON or a field is bad."""
        try:
            data = json.loads(text)
        except ValueError as error:
            raise ValueError(f"invalid {cls.__name__}: payload is not valid JSON: {error}") from None
        return cls.from_dict(data)

    def to_dict(self) -> Dict[str, Any]:
        """The JSON object (optional fields left out when None)."""
        out: Dict[str, Any] = {}
        for field in self._FIELDS:
            value = getattr(self, field.name)
            if value is None and not field.required:
                continue
            out[field.key] = field.descriptor.dump(value)
        return out

    def to_json(self) -> str:
        """The wire payload: compact JSON, exactly the schema's keys."""
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False)
