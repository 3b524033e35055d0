"""Annotation → strategy mapping: each supported form gives strategy text that draws the right kind of value."""

from __future__ import annotations

import ast
import enum
import types
from dataclasses import dataclass
from typing import Any, NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzers.strategies import Strategy, guess_from_name, parse_module, strategy_for

MODULE_SOURCE = """
from dataclasses import dataclass, field
from enum import Enum
from typing import NamedTuple
from decimal import Decimal as Dec

class Color(Enum):
    RED = 1
    BLUE = 2

@dataclass
class Point:
    x: int
    y: int = 0
    tags: list[str] = field(default_factory=list)

class Pair(NamedTuple):
    left: str
    right: bytes

class Opaque:
    def __init__(self, anything):
        self.anything = anything
"""


class Color(enum.Enum):
    RED = 1
    BLUE = 2


@dataclass
class Point:
    x: int
    y: int = 0
    tags: list[str] | None = None


class Pair(NamedTuple):
    left: str
    right: bytes


FAKE_MODULE = types.SimpleNamespace(Color=Color, Point=Point, Pair=Pair)
MODULE = parse_module(MODULE_SOURCE)


def _annotation(text: str) -> ast.expr:
    return ast.parse(text, mode="eval").body


def _check_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


CASES: list[tuple[str, str, Any]] = [
    ("int", "st.integers(min_value=-100_000", _check_int),
    ("float", "st.floats(", lambda v: isinstance(v, float) and v == v),
    ("str", "st.text()", lambda v: isinstance(v, str)),
    ("bytes", "st.binary()", lambda v: isinstance(v, bytes)),
    ("bool", "st.booleans()", lambda v: isinstance(v, bool)),
    ("None", "st.none()", lambda v: v is None),
    ("Optional[int]", "st.none()", lambda v: v is None or _check_int(v)),
    ("int | None", "st.none()", lambda v: v is None or _check_int(v)),
    ("Union[int, str]", "st.text()", lambda v: isinstance(v, int | str)),
    ("list[int]", "st.lists(st.integers(", lambda v: isinstance(v, list) and all(map(_check_int, v))),
    ("typing.List[str]", "st.lists(st.text()", lambda v: isinstance(v, list)),
    ("Sequence[bytes]", "st.lists(st.binary()", lambda v: isinstance(v, list)),
    ("dict[str, int]", "st.dictionaries(st.text(), st.integers(", lambda v: isinstance(v, dict)),
    ("Mapping[str, list[int]]", "st.dictionaries(", lambda v: isinstance(v, dict)),
    ("tuple[int, ...]", ".map(tuple)", lambda v: isinstance(v, tuple)),
    (
        "tuple[int, str]",
        "max_value=100_000), st.text())",
        lambda v: isinstance(v, tuple) and len(v) == 2,
    ),
    ("set[int]", "st.sets(st.integers(", lambda v: isinstance(v, set)),
    ("frozenset[str]", "st.frozensets(", lambda v: isinstance(v, frozenset)),
    ("Literal['a', 'b']", "st.sampled_from(['a', 'b'])", lambda v: v in ("a", "b")),
    ("Annotated[int, 'meta']", "st.integers(", _check_int),
    ("'int'", "st.integers(", _check_int),
    ("Color", "st.sampled_from(mod.Color)", lambda v: isinstance(v, Color)),
    ("Point", "st.builds(mod.Point, x=st.integers(", lambda v: isinstance(v, Point)),
    ("Pair", "st.builds(mod.Pair, left=st.text(), right=st.binary())", lambda v: isinstance(v, Pair)),
    ("list[Color]", "st.lists(st.sampled_from(mod.Color)", lambda v: all(isinstance(c, Color) for c in v)),
    ("Dec", "st.from_type(mod.Dec)", None),
    ("Decimal", "st.decimals(", None),
    ("Fraction", "st.fractions()", None),
    ("datetime", "st.datetimes()", None),
    ("Iterator[int]", ".map(iter)", None),
]


@pytest.mark.parametrize(("annotation", "expected", "check"), CASES, ids=[c[0] for c in CASES])
def test_annotation_forms(annotation: str, expected: str, check: Any) -> None:
    strategy = strategy_for(_annotation(annotation), module=MODULE)
    assert strategy is not None
    assert expected in strategy.code
    assert strategy.exact == ("from_type" not in strategy.code)


@pytest.mark.parametrize(("annotation", "check"), [(c[0], c[2]) for c in CASES if c[2] is not None])
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_strategy_text_draws_the_annotated_type(annotation: str, check: Any, data: st.DataObject) -> None:
    strategy = strategy_for(_annotation(annotation), module=MODULE)
    assert strategy is not None
    value = data.draw(eval(strategy.code, {"st": st, "mod": FAKE_MODULE}))
    assert check(value), value


@pytest.mark.parametrize("annotation", ["Callable[[int], int]", "Unknown", "list[Unknown]", "Literal[x]", "Opaque"])
def test_unsupported_forms_give_none(annotation: str) -> None:
    assert strategy_for(_annotation(annotation), module=MODULE) is None


def test_defaults_and_names() -> None:
    assert strategy_for(None, name="flag", default=ast.Constant(True)).code == "st.booleans()"  # type: ignore[union-attr]
    width = strategy_for(None, name="width", default=ast.Constant(70))
    assert width is not None
    assert "min_value=0" in width.code
    assert width.exact
    assert strategy_for(None, name="sep", default=ast.Constant(",")).code == "st.text()"  # type: ignore[union-attr]
    assert guess_from_name("text", "", None).code == "st.text()"  # type: ignore[union-attr]
    assert guess_from_name("month", "", None).code == "st.integers(min_value=1, max_value=12)"  # type: ignore[union-attr]
    assert guess_from_name("items", "", None).kind == "list"  # type: ignore[union-attr]
    encoded = guess_from_name("s", "b64encode\nEncode the bytes-like object s using Base64.", None)
    assert encoded is not None
    assert encoded.kind == "bytes"
    assert not encoded.exact
    assert guess_from_name("r", "rgb_to_hsv", None).code.startswith("st.floats(min_value=0.0")  # type: ignore[union-attr]
    assert guess_from_name("mystery", "", None) is None


def test_module_model() -> None:
    info = parse_module(
        "import binascii\n"
        "class Codec:\n"
        "    def encode(self, data: bytes) -> str:\n"
        "        if not data:\n"
        "            raise ValueError('empty')\n"
        "        return data.hex()\n"
        "    @staticmethod\n"
        "    def check(x: int) -> bool:\n"
        "        return _helper(x)\n"
        "def _helper(x):\n"
        "    raise binascii.Error('bad')\n"
        "def use(x: int) -> int:\n"
        "    return _helper(x)\n"
    )
    encode = info.functions["Codec.encode"]
    assert encode.method_kind == "method"
    assert [p.name for p in encode.params] == ["data"]
    assert encode.raises == {"ValueError"}
    assert encode.complexity == 2
    assert info.functions["Codec.check"].method_kind == "staticmethod"
    assert "binascii.Error" in info.functions["use"].raises  # raised by a same-module helper it calls
    assert "binascii" in info.bound_names


def test_usage_in_the_body_types_unannotated_parameters() -> None:
    module = parse_module(
        "import binascii\n"
        "from io import BytesIO\n"
        "def enc(s, quotetabs=False):\n"
        "    return BytesIO(s).read()\n"
        "def dec(s):\n"
        "    return s.decode('ascii')\n"
        "def chunks(s):\n"
        "    return [binascii.b2a_base64(s[i : i + 3]) for i in range(0, len(s), 3)]\n"
        "def text(payload):\n"
        "    return payload.encode('utf-8')\n"
    )
    assert module.functions["enc"].usage == {"s": "bytes"}
    assert module.functions["dec"].usage == {"s": "bytes"}
    assert module.functions["chunks"].usage == {"s": "bytes"}
    assert module.functions["text"].usage == {"payload": "str"}
    strategy = strategy_for(None, name="s", usage="bytes")
    assert strategy is not None
    assert strategy.code == "st.binary()"


def test_a_handler_that_raises_again_raises_its_types() -> None:
    module = parse_module(
        "import zlib\n"
        "def a(data):\n"
        "    try:\n"
        "        return zlib.decompress(data)\n"
        "    except (OSError, zlib.error):\n"
        "        if data:\n"
        "            raise\n"
        "        return b''\n"
        "def b(data):\n"
        "    try:\n"
        "        return zlib.decompress(data)\n"
        "    except EOFError as exc:\n"
        "        raise exc\n"
        "def c(data):\n"
        "    try:\n"
        "        return zlib.decompress(data)\n"
        "    except EOFError:\n"
        "        return None\n"
    )
    assert module.functions["a"].raises == {"OSError", "zlib.error"}
    assert module.functions["b"].raises == {"EOFError"}  # the types, not the variable `exc`
    assert module.functions["c"].raises == frozenset()


def test_names_deleted_at_top_level_are_not_bound() -> None:
    module = parse_module("import re\ndef f(line, pat=re.compile('x').match):\n    return pat(line)\ndel re\n")
    assert "re" not in module.bound_names
    assert "f" in module.bound_names


def test_usage_of_characters_patterns_and_helpers() -> None:
    module = parse_module(
        "import re\n"
        "def table(code):\n"
        "    return ord(code) in {1, 2}\n"
        "def lookup(c):\n"
        "    return TABLE[ord(c)]\n"
        "def quote_lines(data):\n"
        "    return re.sub(r'(?m)^\\.', '..', data)\n"
        "def raw_lines(data):\n"
        "    return re.split(rb'\\n', data)\n"
        "def text(s, encoding):\n"
        "    return s.decode(encoding)\n"
        "def number(s):\n"
        "    return int(text(s, 'ascii'), 8)\n"
    )
    assert module.functions["table"].usage == {"code": "char"}
    assert module.functions["lookup"].usage == {}  # the table's size bounds the characters
    assert module.functions["quote_lines"].usage == {"data": "str"}
    assert module.functions["raw_lines"].usage == {"data": "bytes"}
    assert module.functions["number"].usage == {"s": "bytes"}  # handed on to a same-module function
    assert strategy_for(None, name="code", usage="char") == Strategy("st.characters()", "str", False)


def test_unchecked_constant_indexing_asks_for_a_minimum_length() -> None:
    module = parse_module(
        "def first(s):\n"
        "    return s[0] + s[-2]\n"
        "def checked(s):\n"
        "    if not s:\n"
        "        return None\n"
        "    return s[0]\n"
        "def measured(s):\n"
        "    return s[3] if len(s) > 3 else None\n"
        "def counted(s):\n"
        "    n = 0\n"
        "    for i in range(len(s) - 1):\n"
        "        n += s[i + 1]\n"
        "    return n if s[0] else -n\n"
        "def caught(s):\n"
        "    try:\n"
        "        return s[0]\n"
        "    except IndexError:\n"
        "        return None\n"
    )
    assert module.functions["first"].min_sizes == {"s": 2}
    assert module.functions["checked"].min_sizes == {}
    assert module.functions["measured"].min_sizes == {}
    assert module.functions["caught"].min_sizes == {}
    assert module.functions["counted"].min_sizes == {"s": 1}  # len(s) in a range() is no check of it
    assert strategy_for(None, name="s", min_size=2).code == "st.text(min_size=2)"
    assert strategy_for(None, name="items", min_size=1).code == "st.lists(st.integers(), max_size=20, min_size=1)"
    assert strategy_for(None, name="n", min_size=1).code == "st.integers(min_value=0, max_value=100)"


def test_codec_names_and_error_handlers() -> None:
    assert strategy_for(None, name="encoding").code == 'st.sampled_from(["utf-8", "latin-1", "ascii"])'
    assert strategy_for(ast.Name("str"), name="errors").code == 'st.sampled_from(["strict", "replace", "ignore"])'
    assert strategy_for(ast.Name("str"), name="text").code == "st.text()"


def test_usage_from_text_literals() -> None:
    module = parse_module(
        "def parse150(resp):\n"
        "    if resp[:3] != '150':\n"
        "        raise ValueError(resp)\n"
        "    return resp\n"
        "def quoteaddr(addrstring):\n"
        "    if addrstring.strip() == '<>':\n"
        "        return '<>'\n"
        "    return addrstring\n"
        "def has_arg(opt, shortopts):\n"
        "    return shortopts.startswith(':', 1) and opt == b'x'\n"
        "def count(n):\n"
        "    return n == 3\n"
        "def options(args, flags):\n"
        "    return args[0].startswith('-') or args[1] == '--' or flags[0] == '-'\n"
    )
    assert module.functions["parse150"].usage == {"resp": "str"}
    assert module.functions["quoteaddr"].usage == {"addrstring": "str"}
    assert module.functions["has_arg"].usage == {"shortopts": "str", "opt": "bytes"}
    assert module.functions["count"].usage == {}
    assert module.functions["options"].usage == {"flags": "str"}  # args[0] == "--": args is a list


def test_text_literals_mix_into_the_strategy() -> None:
    module = parse_module(
        "def parse257(resp):\n"
        "    if resp[:3] != '257':\n"
        "        raise ValueError(resp)\n"
        "    if resp[3:5] != ' \"':\n"
        "        return ''\n"
        "    return resp[5:]\n"
        "def magic(data):\n"
        "    return data.startswith((b'\\x1f\\x8b', b'BZh'))\n"
        "def first(s):\n"
        "    return s[0] == 'x'\n"
    )
    literals = module.functions["parse257"].literals
    assert literals == {"resp": (' "', "257")}
    code = strategy_for(None, name="resp", usage="str", literals=literals["resp"]).code
    assert code == (
        "st.text() | st.lists(st.sampled_from([' \"', '257']) | st.text(max_size=3), max_size=6).map(\"\".join)"
    )
    assert module.functions["magic"].literals == {"data": (b"BZh", b"\x1f\x8b")}
    assert 'b"".join' in strategy_for(None, name="data", usage="bytes", literals=(b"BZh",)).code
    assert strategy_for(None, name="s", min_size=1, literals=("x",)).code == "st.text(min_size=1)"

    drawn = eval(code, {"st": st})  # the strategy text is valid Hypothesis and reaches past the first check
    seen: list[str] = []

    @settings(max_examples=200, derandomize=True, database=None)
    @given(drawn)
    def check(resp: str) -> None:
        assert isinstance(resp, str)
        seen.append(resp)

    check()
    assert any(resp.startswith("257") for resp in seen)


def test_usage_as_an_int() -> None:
    module = parse_module(
        "def pack(address):\n"
        "    return address.to_bytes(4, 'big')\n"
        "def low(value, mask):\n"
        "    return (value & 0xFF, mask | 1)\n"
    )
    assert module.functions["pack"].usage == {"address": "int"}
    assert module.functions["low"].usage == {"value": "int"}  # `|` is also a set union: not a sign of an int
    assert strategy_for(None, name="address", usage="int") == Strategy("st.integers()", "int", False)


def test_data_by_its_docstring() -> None:
    def guess(doc: str) -> str | None:
        found = guess_from_name("data", f"f\n{doc}", None)
        return found.code if found is not None else None

    assert guess("Convert a date string to a time tuple.") == "st.text()"
    assert guess("Turn a 10-tuple as returned by parsedate_tz() into a POSIX timestamp.") is None
    assert guess("Compress a block of data. For incremental compression, use a Compressor object.") == "st.binary()"
    assert guess("Decode a bytes object (a byte string).") == "st.binary()"


def test_a_list_whose_items_are_used_as_text() -> None:
    module = parse_module(
        "def parse_pairs(l):\n"
        "    parsed = {}\n"
        "    for elt in l:\n"
        "        k, v = elt.split('=', 1)\n"
        "        parsed[k] = v\n"
        "    return parsed\n"
    )
    assert module.functions["parse_pairs"].usage == {"l": "texts"}
    assert strategy_for(None, name="l", usage="texts").code == "st.lists(st.text(), max_size=20)"


def test_the_first_argument_of_a_codec_module_is_bytes() -> None:
    module = parse_module(
        "import base64\n"
        "def base64_encode(input, errors='strict'):\n"
        "    return (base64.encodebytes(input), len(input))\n"
    )
    assert module.functions["base64_encode"].usage == {"input": "bytes"}
