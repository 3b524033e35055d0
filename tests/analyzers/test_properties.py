"""Property detection, one family at a time, on small modules; and the rendered tests hold on correct code."""

from __future__ import annotations

import sys
import types

import pytest

from analyzers.properties import (
    HELPERS,
    allowed_exceptions,
    family_tests,
    inverse_pairs,
    is_parser,
    never_none,
    no_crash,
    plan_call,
)
from analyzers.strategies import parse_module

SOURCE = """
import base64
from typing import Optional


def to_json(data: dict[str, int]) -> str:
    return ";".join(f"{k.encode().hex()}={v}" for k, v in sorted(data.items()))


def from_json(text: str) -> dict[str, int]:
    if not text:
        return {}
    pairs = (part.partition("=") for part in text.split(";"))
    return {bytes.fromhex(k).decode(): int(v) for k, _, v in pairs}


def rgb_to_grey(r: float, g: float, b: float) -> tuple[float, float, float]:
    return (r, g, b)


def grey_to_rgb(r: float, g: float, b: float) -> tuple[float, float, float]:
    return (r, g, b)


def compress(data: bytes) -> bytes:
    return base64.b64encode(data)


def decompress(data: bytes) -> bytes:
    return base64.b64decode(data)


def normalize_name(name: str) -> str:
    return " ".join(name.split()).lower()


def bubble_sort(items: list[int]) -> list[int]:
    out = list(items)
    for i in range(len(out)):
        for j in range(len(out) - 1 - i):
            if out[j] > out[j + 1]:
                out[j], out[j + 1] = out[j + 1], out[j]
    return out


def clamp(value: int, lower: int, upper: int) -> int:
    return max(lower, min(value, upper))


def reverse(items: list[int]) -> list[int]:
    return items[::-1]


def gcd(a: int, b: int) -> int:
    a, b = abs(a), abs(b)
    while b:
        a, b = b, a % b
    return a


def checked(x: int) -> Optional[int]:
    if x < 0:
        raise ValueError("negative")
    return x or None


def total(items: list[int]) -> int:
    return sum(items)


def median_low(data: list[int]) -> int:
    if not data:
        raise ValueError("no data")
    return sorted(data)[(len(data) - 1) // 2]


def nlargest(n: int, iterable: list[int]) -> list[int]:
    return sorted(iterable, reverse=True)[: max(n, 0)]


def splitext(path: str) -> tuple[str, str]:
    dot = path.rfind(".")
    return (path, "") if dot <= 0 else (path[:dot], path[dot:])


def wrap(text: str, width: int = 10) -> list[str]:
    if width < 1:
        raise ValueError("width must be positive")
    return [text[i : i + width] for i in range(0, len(text), width)]
"""

BASE_TOTAL = "def total(items: list[int]) -> int:\n    out = 0\n    for i in items:\n        out += i\n    return out\n"
MODULE = parse_module(SOURCE)


def _families(qualname: str, base: str | None = None) -> list[str]:
    tests, _ = family_tests(MODULE.functions[qualname], MODULE, 20, base)
    return [t.family for t in tests]


@pytest.mark.parametrize(
    ("function", "family"),
    [
        ("to_json", "roundtrip"),
        ("from_json", "roundtrip"),
        ("rgb_to_grey", "roundtrip"),
        ("compress", "roundtrip"),
        ("normalize_name", "idempotent"),
        ("bubble_sort", "sorted"),
        ("bubble_sort", "idempotent"),
        ("clamp", "clamp"),
        ("reverse", "length"),
        ("gcd", "commutative"),
        ("gcd", "associative"),
        ("checked", "no-crash"),
        ("median_low", "bounds"),
        ("nlargest", "selection"),
        ("splitext", "parts"),
        ("wrap", "width"),
    ],
)
def test_family_detected(function: str, family: str) -> None:
    assert family in _families(function)


def test_no_family_without_a_reason() -> None:
    assert _families("checked") == ["no-crash"]
    assert "associative" not in _families("clamp")


def test_predicates_check_for_a_bool() -> None:
    module = parse_module("def isvowel(ch: str):\n    return ch in 'aeiou'\n")
    call = plan_call(module.functions["isvowel"], module, optional=False)
    assert call is not None
    assert "assert isinstance(result, bool)" in no_crash(call, module, 10).code
    assert "assert" not in no_crash(call, module, 10, bare=True).code


def test_no_roundtrip_through_a_variadic_function() -> None:
    module = parse_module(
        "def join(a: str, *p: str) -> str:\n    return '/'.join((a, *p))\n"
        "def split(p: str) -> tuple[str, str]:\n    head, _, tail = p.rpartition('/')\n    return head, tail\n"
    )
    assert ("join", "split") in inverse_pairs(module)
    tests, _ = family_tests(module.functions["join"], module, 10)
    assert "roundtrip" not in [t.family for t in tests]


def test_inverse_pairs_by_name_and_order() -> None:
    pairs = inverse_pairs(MODULE)
    assert ("to_json", "from_json") in pairs
    assert ("compress", "decompress") in pairs
    assert ("rgb_to_grey", "grey_to_rgb") in pairs
    assert ("grey_to_rgb", "rgb_to_grey") not in pairs


def test_equivalence_only_when_the_base_differs() -> None:
    assert "equivalence" in _families("total", BASE_TOTAL)
    assert "equivalence" not in _families("total", MODULE.functions["total"].source)


def test_allowed_exceptions_and_parsers() -> None:
    assert allowed_exceptions(MODULE.functions["checked"], MODULE) == ["ValueError"]
    assert allowed_exceptions(MODULE.functions["from_json"], MODULE) == ["ValueError"]
    assert allowed_exceptions(MODULE.functions["gcd"], MODULE) == []


def test_optional_parameters_only_with_exact_strategies() -> None:
    module = parse_module(
        "def f(text: str, width=70, strict=False, *, size: int = 3, callback=None, mystery=object()) -> str:\n"
        "    return text\n"
    )
    call = plan_call(module.functions["f"], module, optional=True)
    assert call is not None
    assert [a.param.name for a in call.args] == ["text", "strict", "size"]
    assert (
        plan_call(parse_module("def g(unknown):\n    pass\n").functions["g"], parse_module(""), optional=False) is None
    )


def test_rendered_property_tests_hold_on_correct_code() -> None:
    namespace = types.ModuleType("under_test")
    exec(compile(SOURCE, "under_test", "exec"), namespace.__dict__)
    for qualname in MODULE.functions:
        tests, preamble = family_tests(
            MODULE.functions[qualname], MODULE, 20, BASE_TOTAL if qualname == "total" else None
        )
        code = "import math\nfrom hypothesis import assume, given, settings, strategies as st\n"
        code += "".join(HELPERS.values()) + "".join(preamble) + "\n".join(t.code for t in tests)
        scope: dict[str, object] = {"mod": namespace}
        exec(compile(code, f"generated for {qualname}", "exec"), scope)
        for test in tests:
            scope[test.name]()  # type: ignore[operator]


RECORD = """
from dataclasses import dataclass


@dataclass(frozen=True)
class Vec:
    x: int
    y: int

    def scaled(self, k: int) -> "Vec":
        return Vec(self.x * k, self.y * k)

    @classmethod
    def from_text(cls, text: str) -> "Vec":
        a, b = text.split(",")
        return cls(int(a), int(b))

    def to_text(self) -> str:
        return f"{self.x},{self.y}"
"""


def test_methods_of_records_roundtrip_and_return_their_class(monkeypatch: pytest.MonkeyPatch) -> None:
    module = parse_module(RECORD)
    tests, _ = family_tests(module.functions["Vec.to_text"], module, 10)
    roundtrip = next(t for t in tests if t.family == "roundtrip")
    assert "back = mod.Vec.from_text(value)" in roundtrip.code
    assert "obj=st.builds(mod.Vec" in roundtrip.code
    scaled, _ = family_tests(module.functions["Vec.scaled"], module, 10)
    assert "assert isinstance(result, mod.Vec), result" in scaled[0].code
    namespace = types.ModuleType("records")
    monkeypatch.setitem(sys.modules, "records", namespace)  # dataclasses look their module up
    exec(compile(RECORD, "records", "exec"), namespace.__dict__)
    for test in [*tests, *scaled]:
        scope: dict[str, object] = {"mod": namespace}
        exec("from hypothesis import given, settings, strategies as st\n" + test.code, scope)
        scope[test.name]()  # type: ignore[operator]


# ---- parsers refuse arbitrary input: the no-crash property accepts refusals, not bugs -------------------

PARSERS = """
import bz2
import zlib


def decompress(data: bytes) -> bytes:
    return bz2.decompress(data)  # OSError "Invalid data stream": raised by the library, never by this body


def inflate(blob: bytes) -> bytes:
    try:
        return zlib.decompress(blob)
    except zlib.error:
        raise  # re-raised on purpose: the handler's type is a raise of this function


def load_frame(data: bytes) -> bytes:
    return zlib.decompress(data)  # zlib.error: a library's own error class


def parse_version(text: str) -> int:
    return int(text.split(".")[1])  # IndexError on "1": a bug a test must still catch


def encode_label(text: str) -> bytes:
    return text.encode("ascii")


def wrap_frame(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def unwrap_frame(data: bytes) -> bytes:
    size = int.from_bytes(data[:4], "big")
    if size != len(data) - 4:
        raise ValueError("bad frame")
    return data[4:]


def parse_expr(text: str) -> object:
    return compile(text, "<expr>", "eval")


def literal(text: str) -> object:
    return parse_expr(text).co_consts
"""


def _run_no_crash(source: str, name: str) -> None:
    module = parse_module(source)
    tests, _ = family_tests(module.functions[name], module, 50)
    test = next(t for t in tests if t.family == "no-crash")
    namespace = types.ModuleType("parsers")
    exec(compile(source, "parsers", "exec"), namespace.__dict__)
    code = "import math\nfrom hypothesis import given, settings, strategies as st\n"
    code += "".join(HELPERS[h] for h in sorted(test.helpers)) + test.code
    scope: dict[str, object] = {"mod": namespace}
    exec(compile(code, f"generated for {name}", "exec"), scope)
    scope[test.name]()  # type: ignore[operator]


@pytest.mark.parametrize("name", ["decompress", "inflate", "load_frame", "encode_label", "unwrap_frame"])
def test_no_crash_of_a_decoder_holds_on_arbitrary_input(name: str) -> None:
    _run_no_crash(PARSERS, name)


def test_no_crash_of_a_parser_still_catches_a_bug() -> None:
    with pytest.raises(IndexError):
        _run_no_crash(PARSERS, "parse_version")


def test_what_counts_as_a_parser() -> None:
    module = parse_module(PARSERS)
    parsers = {name for name, info in module.functions.items() if is_parser(info, module)}
    # by name; as the inverse of an encoder taking bytes (unwrap_frame); by handing its input to a parser (literal)
    assert parsers == {"decompress", "load_frame", "parse_version", "unwrap_frame", "parse_expr", "literal"}
    assert allowed_exceptions(module.functions["inflate"], module) == ["mod.zlib.error"]
    assert allowed_exceptions(module.functions["encode_label"], module) == ["UnicodeError"]


def test_refused_accepts_refusals_only() -> None:
    scope: dict[str, object] = {}
    exec(HELPERS["_refused"], scope)
    refused = scope["_refused"]
    import binascii
    import zlib

    for exc in (ValueError(), UnicodeDecodeError("ascii", b"", 0, 1, "x"), binascii.Error(), zlib.error(), OSError()):
        assert refused(exc), exc  # type: ignore[operator]
    for exc in (TypeError(), IndexError(), AttributeError(), KeyError(), ZeroDivisionError(), RecursionError()):
        assert not refused(exc), exc  # type: ignore[operator]


def test_nothing_to_vary_means_no_property_test() -> None:
    module = parse_module("import time\ndef now_iso(t=None):\n    return time.strftime('%Y', time.gmtime(t))\n")
    assert family_tests(module.functions["now_iso"], module, 10) == ([], [])  # `@given()` would be invalid


def test_a_predicate_name_is_not_enough_when_a_return_says_otherwise() -> None:
    module = parse_module(
        "def iso2time(text):\n"
        "    if not text:\n"
        "        return None\n"
        "    return float(len(text))\n"
        "def isvowel(text):\n"
        "    if not text:\n"
        "        return False\n"
        "    return text in 'aeiou'\n"
    )
    iso, _ = family_tests(module.functions["iso2time"], module, 10)
    assert "isinstance(result, bool)" not in iso[0].code
    vowel, _ = family_tests(module.functions["isvowel"], module, 10)
    assert "isinstance(result, bool)" in vowel[0].code


def test_no_roundtrip_through_an_inverse_that_returns_more_parts() -> None:
    module = parse_module(
        "def encode_value(s):\n"
        "    return \"''\" + s\n"
        "def decode_value(s):\n"
        '    parts = s.split("\'", 2)\n'
        "    if len(parts) <= 2:\n"
        "        return None, None, s\n"
        "    return parts\n"
    )
    assert ("encode_value", "decode_value") in inverse_pairs(module)
    tests, _ = family_tests(module.functions["encode_value"], module, 10)
    assert "roundtrip" not in [t.family for t in tests]


def test_no_equivalence_when_the_base_cannot_be_defined_in_the_module() -> None:
    module = parse_module(
        "import re\ndef junk(line, pat=re.compile('#').match):\n    return pat(line) is None\ndel re\n"
    )
    base = "def junk(line, pat=re.compile('x').match):\n    return pat(line) is not None\n"
    assert "equivalence" not in [t.family for t in family_tests(module.functions["junk"], module, 10, base)[0]]
    kept = parse_module("import re\ndef junk(line, pat=re.compile('#').match):\n    return pat(line) is None\n")
    assert "equivalence" in [t.family for t in family_tests(kept.functions["junk"], kept, 10, base)[0]]


NONE_OR_NOT = """
def _helper(text):
    return text.strip()


def unquote(text):
    if len(text) > 1 and text.startswith('"'):
        return text[1:-1].replace('\\\\"', '"')
    return text


def words(text):
    out = []
    for word in text.split():
        out.append(word.lower())
    return " ".join(out) or "-"


def delegated(text):
    return _helper(text) + "!"


def maybe(text):
    if text:
        return text.upper()


def looked_up(text):
    found = TABLE.get(text)
    return found


def loop_bound(text):
    for part in text.split():
        last = part
    return last


def one_of(text, fallback=None):
    return text or fallback


TABLE = {}
"""


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("unquote", True),
        ("words", True),
        ("delegated", True),
        ("maybe", False),  # falls off the end
        ("looked_up", False),  # dict.get may give None
        ("loop_bound", False),  # bound by a loop: unknown
        ("one_of", False),  # the fallback defaults to None
    ],
)
def test_never_none(name: str, expected: bool) -> None:
    module = parse_module(NONE_OR_NOT)
    info = module.functions[name]
    call = plan_call(info, module, optional=True)
    assert call is not None
    assert never_none(info, module, call) is expected
    test = no_crash(call, module, 10)
    assert ("assert result is not None" in test.code) is expected
    assert "is not None" not in no_crash(call, module, 10, bare=True).code
    if expected:
        _run_no_crash(NONE_OR_NOT, name)  # and the check holds on the code


def test_a_normaliser_that_strips_one_layer_is_not_idempotent() -> None:
    module = parse_module(
        "def strip_quotes(text):\n"
        "    if text.startswith('\"'):\n"
        "        text = text[1:]\n"
        "    if text.endswith('\"'):\n"
        "        text = text[:-1]\n"
        "    return text\n"
        "def strip_prefix(text):\n"
        "    return text.removeprefix('x')\n"
        "def strip_spaces(text):\n"
        "    return text.strip()\n"
    )
    assert "idempotent" not in [t.family for t in family_tests(module.functions["strip_quotes"], module, 10)[0]]
    assert "idempotent" not in [t.family for t in family_tests(module.functions["strip_prefix"], module, 10)[0]]
    assert "idempotent" in [t.family for t in family_tests(module.functions["strip_spaces"], module, 10)[0]]


def test_roundtrip_through_a_decoder_with_an_error_handler() -> None:
    source = (
        "def punish_encode(text):\n"
        "    return text.encode('utf-8')\n"
        "def punish_decode(data, errors):\n"
        "    return data.decode('utf-8', errors)\n"
    )
    module = parse_module(source)
    tests, _ = family_tests(module.functions["punish_encode"], module, 20)
    test = next(t for t in tests if t.family == "roundtrip")
    assert "back = mod.punish_decode(value, errors_back)" in test.code
    namespace = types.ModuleType("codec")
    exec(compile(source, "codec", "exec"), namespace.__dict__)
    scope: dict[str, object] = {"mod": namespace}
    header = "import math\nfrom hypothesis import given, settings, strategies as st\n"
    exec(header + HELPERS["_same"] + test.code, scope)
    scope[test.name]()  # type: ignore[operator]
