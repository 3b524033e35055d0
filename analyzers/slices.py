"""Context slices: for each hunk, the smallest enclosing symbol(s), bounded, with new-file line numbers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from analyzers.diff import ChangedFile, ChangeSet, FileStatus, Hunk, LineKind
from analyzers.syntax import FileSyntax, Symbol, SyntaxMap, split_lines

DEFAULT_MAX_LINES = 120
CONTEXT_LINES = 5  # around changes outside any symbol (or in a file without a grammar)
HEADER_LINES = 3  # a long symbol keeps its first lines (the signature) above the changed window
ELISION = "⋮"


@dataclass(frozen=True)
class Slice:
    """Source lines around a change, one text line per source line.

    ``"+ 12 | code"`` for an added line, ``"  13 | code"`` otherwise (the new file's number,
    right-aligned), ``"     ⋮"`` where lines are left out to respect the bound. With ``include_removed``
    the removed lines appear where they were, as ``"-    | old code"`` (they have no new-file number).
    """

    path: str
    start_line: int  # first and last new-file line rendered
    end_line: int
    symbol: str | None  # qualname of the enclosing symbol, None at module level or without a grammar
    text: str
    changed: tuple[int, ...] = ()  # the added lines shown
    outer: tuple[str, ...] = ()  # signatures of the enclosing symbols above the slice, outermost first


def context_slices(
    changeset: ChangeSet,
    syntax_map: SyntaxMap | None,
    read_file: Callable[[str], str | None],
    max_lines: int = DEFAULT_MAX_LINES,
    include_removed: bool = False,
) -> list[Slice]:
    """Slices for every hunk of every readable, non-removed file, merged when they overlap."""
    out: list[Slice] = []
    for changed in changeset.files:
        if changed.status is FileStatus.REMOVED or not changed.hunks:
            continue
        fs = syntax_map.get(changed.path) if syntax_map is not None else None
        if fs is not None:
            lines = fs.lines
        else:
            text = read_file(changed.path)
            if text is None:
                continue
            lines = split_lines(text)
        out.extend(_file_slices(changed, fs, lines, max(max_lines, HEADER_LINES + 2), include_removed))
    return out


@dataclass
class _Region:
    start: int
    end: int
    symbol: Symbol | None
    points: list[int]  # the changed lines inside it, ascending


def _file_slices(
    changed: ChangedFile, fs: FileSyntax | None, lines: list[str], max_lines: int, include_removed: bool
) -> list[Slice]:
    last_line = max(len(lines), 1)
    regions: list[_Region] = []
    for hunk in changed.hunks:
        for group in _change_groups(hunk, fs):
            points = sorted({min(max(p, 1), last_line) for p in group})
            lo, hi = points[0], points[-1]
            symbol = _smallest_enclosing(fs, lo, hi)
            if symbol is not None:
                start, end = symbol.start_line, min(symbol.end_line, last_line)
            else:
                start, end = max(1, lo - CONTEXT_LINES), min(last_line, hi + CONTEXT_LINES)
            regions.append(_Region(start, end, symbol, points))
    merged = _merge(regions)
    removed_after = _removed_by_position(changed) if include_removed else {}
    return [_render(changed, fs, r, lines, max_lines, removed_after) for r in merged]


def _change_groups(hunk: Hunk, fs: FileSyntax | None) -> list[list[int]]:
    """The hunk's changed new-file lines, grouped by innermost symbol (consecutive runs)."""
    points: list[int] = list(hunk.added)
    # a removal not replaced by added lines: the line just before it (or after it, at the file's top)
    prev_new = hunk.new_start - 1
    in_removal = False
    for ln in (*hunk.lines, None):
        if ln is not None and ln.kind is LineKind.REMOVED:
            in_removal = True
            continue
        if in_removal and (ln is None or ln.kind is not LineKind.ADDED):
            points.append(prev_new if prev_new >= 1 else prev_new + 1)
        in_removal = False
        if ln is not None and ln.new is not None:
            prev_new = ln.new
    if not points:
        return []
    groups: list[list[int]] = []
    current_key: int | None = None
    for p in sorted(set(points)):
        key = fs.innermost_index(p) if fs is not None else -1
        if groups and key == current_key:
            groups[-1].append(p)
        else:
            groups.append([p])
            current_key = key
    return groups


def _smallest_enclosing(fs: FileSyntax | None, lo: int, hi: int) -> Symbol | None:
    if fs is None:
        return None
    for symbol in reversed(fs.enclosing(lo)):
        if symbol.end_line >= hi:
            return symbol
    return None


def _merge(regions: list[_Region]) -> list[_Region]:
    """Overlapping regions become one: the enclosing symbol's, or the union for module-level windows."""
    regions.sort(key=lambda r: (r.start, -r.end))
    out: list[_Region] = []
    for r in regions:
        if out and r.start <= out[-1].end:
            last = out[-1]
            if last.symbol is not None and r.symbol is not None and r.end > last.end:
                symbol = None  # two sibling symbols touching: keep both, as one window
            elif r.end <= last.end:
                symbol = last.symbol
            else:
                symbol = None if last.symbol is not r.symbol else last.symbol
            out[-1] = _Region(last.start, max(last.end, r.end), symbol, sorted({*last.points, *r.points}))
        else:
            out.append(_Region(r.start, r.end, r.symbol, list(r.points)))
    return out


def _removed_by_position(changed: ChangedFile) -> dict[int, list[str]]:
    """Removed lines keyed by the new-file line they sit before."""
    out: dict[int, list[str]] = {}
    for hunk in changed.hunks:
        pending: list[str] = []
        next_new = hunk.new_start
        for ln in hunk.lines:
            if ln.kind is LineKind.REMOVED:
                pending.append(ln.text)
                continue
            if pending:
                out.setdefault(ln.new or next_new, []).extend(pending)
                pending = []
            next_new = (ln.new or next_new) + 1
        if pending:
            out.setdefault(next_new, []).extend(pending)
    return out


def _visible(region: _Region, max_lines: int) -> list[tuple[int, int]]:
    """Line ranges to show: the whole region if it fits, else its header plus the widest windows around
    every changed line that fit in `max_lines` (all changed lines are kept while they fit at all)."""
    if region.end - region.start + 1 <= max_lines:
        return [(region.start, region.end)]
    header = [(region.start, min(region.end, region.start + HEADER_LINES - 1))] if region.symbol else []

    def windows(pad: int) -> list[tuple[int, int]]:
        spans = [(max(region.start, p - pad), min(region.end, p + pad)) for p in region.points]
        return _union(header + spans)

    lo, hi = 0, max_lines  # the widest padding that fits (the count only grows with the padding)
    if _count(windows(0)) > max_lines:
        return _truncate(windows(0), max_lines)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _count(windows(mid)) <= max_lines:
            lo = mid
        else:
            hi = mid - 1
    return windows(lo)


def _union(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _count(ranges: list[tuple[int, int]]) -> int:
    return sum(hi - lo + 1 for lo, hi in ranges)


def _truncate(ranges: list[tuple[int, int]], budget: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in ranges:
        if budget <= 0:
            break
        out.append((lo, min(hi, lo + budget - 1)))
        budget -= out[-1][1] - lo + 1
    return out


def _render(
    changed: ChangedFile,
    fs: FileSyntax | None,
    region: _Region,
    lines: list[str],
    max_lines: int,
    removed: dict[int, list[str]],
) -> Slice:
    ranges = _visible(region, max_lines)
    width = len(str(ranges[-1][1]))
    added = changed.added_lines
    out: list[str] = []
    shown: list[int] = []
    for i, (lo, hi) in enumerate(ranges):
        if i > 0 or lo > region.start:
            out.append(" " * (width + 2) + ELISION)
        for n in range(lo, hi + 1):
            for old in removed.get(n, ()):
                out.append(f"-{'':>{width + 1}} | {old}")
            mark = "+" if n in added else " "
            if mark == "+":
                shown.append(n)
            code = lines[n - 1] if n - 1 < len(lines) else ""
            out.append(f"{mark} {n:>{width}} | {code}")
    if ranges[-1][1] < region.end:
        out.append(" " * (width + 2) + ELISION)
    symbol = region.symbol.qualname if region.symbol is not None else None
    outer: tuple[str, ...] = ()
    if fs is not None and region.symbol is not None:
        outer = tuple(s.signature for s in fs.enclosing(region.symbol.start_line) if s.start_line < region.start)
    start, end = ranges[0][0], ranges[-1][1]
    return Slice(changed.path, start, end, symbol, "\n".join(out), tuple(shown), outer)
