"""Auto-demotion: rules a repository keeps dismissing drop below the comment threshold there (policy can opt out)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Engine

from analyzers.base import Finding, Severity
from app.outcome_store import OutcomeStore

MIN_SAMPLES = 10
DISMISSAL_RATE = 0.6


def demoted_rules(
    engine: Engine, repo: str, min_samples: int = MIN_SAMPLES, dismissal_rate: float = DISMISSAL_RATE
) -> dict[str, float]:
    """{rule: dismissal rate} for rules with at least `min_samples` classified findings in `repo` and a rate
    of at least `dismissal_rate`."""
    out: dict[str, float] = {}
    for stats in OutcomeStore(engine).rule_stats(repo):
        if stats.samples >= min_samples and stats.dismissal_rate >= dismissal_rate:
            out[stats.rule] = round(stats.dismissal_rate, 4)
    return out


def enabled(policy: Any) -> bool:
    """`analyzers.auto_demote` in the repository policy (on by default)."""
    return bool(getattr(getattr(policy, "analyzers", None), "auto_demote", True))


def demoted_for(engine: Engine, repo: str, policy: Any) -> dict[str, float]:
    """What the review handler asks: the demoted rules of `repo`, or none when the policy turns demotion off."""
    return demoted_rules(engine, repo) if enabled(policy) else {}


def demote(
    findings: Sequence[Finding], demoted: Mapping[str, float], min_severity: Severity | str
) -> tuple[list[Finding], list[str]]:
    """Findings of demoted rules get a severity just below the comment threshold (so they land in the summary's
    count, not inline); returns the findings and the demoted rules that actually fired, sorted."""
    threshold = Severity.parse(min_severity)
    below = Severity(max(int(threshold) - 1, int(Severity.INFO)))
    fired: set[str] = set()
    out: list[Finding] = []
    for f in findings:
        if f.rule in demoted and f.severity >= threshold:
            fired.add(f.rule)
            f = dataclasses.replace(f, severity=below)
        out.append(f)
    return out, sorted(fired)
