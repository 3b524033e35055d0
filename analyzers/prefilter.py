"""Which patterns of a combined rule query can match a file at all, decided from the file's text alone.

Most rules name what they look for: `(#eq? @_mod "subprocess")`, `(#any-of? @fn "eval" "exec")`,
`(#match? @fn "^(open|io\\.open)$")`. A capture's text is a slice of the file, so a pattern whose text
predicate needs the word "subprocess" cannot match a file that does not contain it. Checking that with a
substring search is far cheaper than letting tree-sitter carry the pattern through the whole tree, which is
where most of the matching time goes when a pack has dozens of rules.

Each condition is necessary, never sufficient: a pattern is only left out when it cannot match, so the
findings are exactly those of the full query (tests/test_prefilter.py checks this on every rule's cases).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from tree_sitter import Query

try:  # the regex parser is private; without it #match? predicates simply give no condition
    import re._parser as _sre  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - Python 3.11+ has it
    _sre = None

# (#eq? @cap "x"), (#any-of? @cap "x" "y"), (#match? @cap "rx"): the only predicates that must hold for a
# match (the not- forms and capture-to-capture comparisons give nothing to look for)
_PREDICATE = re.compile(r'\(#(eq|any-of|match)\?\s+@([\w.-]+)((?:\s+"(?:[^"\\]|\\.)*")+)\s*\)')
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0"}

# A condition: the file must contain at least one of these byte strings (with True: as a whole word, the way a
# node whose whole text is an identifier-like word stands in code). A pattern's conditions must all hold.
Need = frozenset[tuple[bytes, bool]]
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TOKEN = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*")


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), text)


def regex_conditions(regex: str) -> tuple[Need, ...]:
    """Conditions every text that `regex` matches somewhere in meets (none when nothing is known)."""
    if _sre is None:
        return ()
    try:
        parsed = _sre.parse(regex)
    except Exception:
        return ()
    if parsed.state.flags & re.IGNORECASE:
        return ()
    return tuple(frozenset((w.encode("utf-8"), False) for w in need) for need in _needs(list(parsed)))


def capture_alternatives(regex: str) -> frozenset[str] | None:
    """For a regex anchored at both ends whose middle is literals and alternations of literals
    (`^(pickle|os\\.(remove|unlink))$`): every whole text it matches; else None."""
    if _sre is None:
        return None
    try:
        tree = _sre.parse(regex)
    except Exception:
        return None
    if tree.state.flags & re.IGNORECASE:
        return None
    parsed = list(tree)
    if len(parsed) < 3 or str(parsed[0][0]) != "AT" or str(parsed[-1][0]) != "AT":
        return None
    if str(parsed[0][1]) != "AT_BEGINNING" or str(parsed[-1][1]) not in ("AT_END", "AT_END_STRING"):
        return None
    texts = _expand(parsed[1:-1])
    return frozenset(texts) if texts is not None and all(texts) else None


def _expand(items: Sequence[tuple[Any, Any]], limit: int = 256) -> list[str] | None:
    """Every text a sequence of literals, groups and alternations matches (None: anything else, or too many)."""
    texts = [""]
    for op, arg in items:
        name = str(op)
        if name == "LITERAL":
            options: list[str] | None = [chr(arg)]
        elif name == "SUBPATTERN":
            _group, add_flags, _del_flags, body = arg
            options = None if add_flags & re.IGNORECASE else _expand(list(body), limit)
        elif name == "BRANCH":
            parts = [_expand(list(b), limit) for b in arg[1]]
            options = None if any(p is None for p in parts) else [t for p in parts if p is not None for t in p]
        else:
            return None
        if options is None:
            return None
        texts = [t + o for t in texts for o in options]
        if len(texts) > limit:
            return None
    return texts


def _best(options: Iterable[frozenset[str]]) -> frozenset[str] | None:
    """The most selective requirement: the longest shortest string, then the fewest strings."""
    ranked = [o for o in options if o and all(o)]
    if not ranked:
        return None
    return max(ranked, key=lambda o: (min(len(s) for s in o), -len(o)))


def _needs(items: Sequence[tuple[Any, Any]]) -> list[frozenset[str]]:
    """Sets of strings such that every match of the sequence `items` (a parsed regex) has one of each."""
    needs: list[frozenset[str]] = []
    run: list[str] = []
    for op, arg in items:
        name = str(op)
        if name == "LITERAL":
            run.append(chr(arg))
            continue
        if run:
            needs.append(frozenset({"".join(run)}))
            run = []
        if name == "SUBPATTERN":
            _group, add_flags, _del_flags, body = arg
            if not (add_flags & re.IGNORECASE):
                needs.extend(_needs(list(body)))
        elif name == "BRANCH":
            _none, branches = arg
            parts = [_best(_needs(list(b))) for b in branches]
            if parts and all(p is not None for p in parts):
                needs.append(frozenset(s for part in parts if part is not None for s in part))
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, _high, body = arg
            if low >= 1:
                needs.extend(_needs(list(body)))
    if run:
        needs.append(frozenset({"".join(run)}))
    return [n for n in needs if n and all(n)]


def pattern_conditions(
    query: Query, source: bytes, extra: Sequence[tuple[Need, ...]] = ()
) -> tuple[tuple[Need, ...], ...]:
    """For each pattern of `query` (compiled from `source`): the conditions a file must meet to match it,
    from its text predicates, plus `extra[p]` (what the rest of the pattern's rule requires)."""
    names = {query.capture_name(i): i for i in range(query.capture_count)}
    out: list[tuple[Need, ...]] = []
    for p in range(query.pattern_count):
        text = source[query.start_byte_for_pattern(p) : query.end_byte_for_pattern(p)].decode("utf-8")
        conditions: list[Need] = list(extra[p]) if p < len(extra) else []
        for m in _PREDICATE.finditer(text):
            kind, capture, args = m.group(1), m.group(2), m.group(3)
            index = names.get(capture)
            # a capture that may hold no node (`?`, `*`) can make a text predicate hold vacuously
            if index is None or query.capture_quantifier(p, index) not in ("", "+"):
                continue
            values = [_unescape(s) for s in _STRING.findall(args)]
            if kind == "match":
                whole_texts = capture_alternatives(values[0]) if len(values) == 1 else None
                if whole_texts is not None:  # the capture's whole text is one of these: like #any-of?
                    conditions.append(
                        frozenset((w.encode("utf-8"), _WORD.fullmatch(w) is not None) for w in whole_texts)
                    )
                else:
                    conditions.extend(regex_conditions(values[0]) if len(values) == 1 else ())
                continue
            words = values if kind == "any-of" or len(values) == 1 else []
            if words and all(words):  # the capture's whole text is one of the words
                conditions.append(frozenset((w.encode("utf-8"), _WORD.fullmatch(w) is not None) for w in words))
        out.append(tuple(conditions))
    return tuple(out)


class Prefilter:
    """The patterns' conditions, set up so that testing a file costs one tokenising pass and, lazily, the
    substring searches that decide something: whole words are looked up in the set of the file's
    identifier-like runs, and a pattern stops at its first condition the file fails."""

    def __init__(self, conditions: Sequence[tuple[Need, ...]]) -> None:
        self.conditions = tuple(conditions)
        self._compiled = tuple(
            tuple(
                (frozenset(w for w, whole in cond if whole), tuple(sorted(w for w, whole in cond if not whole)))
                for cond in conds
            )
            for conds in self.conditions
        )

    def active(self, text: bytes) -> tuple[int, ...]:
        """The indexes of the patterns whose every condition the file's `text` meets."""
        # a whole word is present when it is one of the file's identifier-like runs (a superset of the words
        # standing alone: the test may let a pattern run that cannot match, never the reverse)
        tokens = set(_TOKEN.findall(text))
        found: dict[bytes, bool] = {}
        out: list[int] = []
        for p, conds in enumerate(self._compiled):
            for whole, plain in conds:
                if not whole.isdisjoint(tokens):
                    continue
                for word in plain:
                    hit = found.get(word)
                    if hit is None:
                        hit = found[word] = word in text
                    if hit:
                        break
                else:
                    break  # no word of this condition: the pattern cannot match
            else:
                out.append(p)
        return tuple(out)
