"""analyzers.base helpers: LazyPattern compiles on first use and then is the compiled pattern's own methods."""

from __future__ import annotations

import re

from analyzers.base import LazyPattern


def test_lazy_pattern_compiles_on_first_use_and_behaves_like_re() -> None:
    lazy = LazyPattern(r"(?P<k>[a-z]+)=(\d+)", re.I)
    assert lazy._compiled is None  # nothing compiled at import
    eager = re.compile(r"(?P<k>[a-z]+)=(\d+)", re.I)
    text = "A=1, bb=22; c=x"
    assert lazy.search(text).group(0) == eager.search(text).group(0)  # type: ignore[union-attr]
    assert lazy.match(text, 5).span() == eager.match(text, 5).span()  # type: ignore[union-attr]
    assert lazy.match(text, 4) is None
    assert lazy.fullmatch("bb=22") is not None
    assert [m.span() for m in lazy.finditer(text)] == [m.span() for m in eager.finditer(text)]
    assert lazy.findall(text) == eager.findall(text)
    assert lazy.sub("#", text) == eager.sub("#", text)
    assert lazy.subn("#", text, 1) == eager.subn("#", text, 1)
    assert lazy.split(text) == eager.split(text)
    assert lazy.pattern == eager.pattern
    assert lazy.flags == eager.flags
    assert lazy.search.__self__ is lazy.compiled  # type: ignore[attr-defined]  # bound to re's own method now
