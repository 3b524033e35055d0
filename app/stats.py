"""`diffwise stats`: acceptance and dismissal rates, comments per PR, time to first review, LLM cost, over time."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from sqlalchemy import Engine, select

from app.outcome_store import OutcomeRow, OutcomeStore

PERIODS: dict[str, int | None] = {"7d": 7, "30d": 30, "90d": 90, "365d": 365, "all": None}
OUTCOMES = ("applied", "dismissed", "disputed", "unaddressed")


@dataclass(frozen=True)
class ReviewRow:
    repo: str
    number: int
    reviewed_at: float
    opened_at: float | None
    status: str  # reviewed | skipped:<reason>
    cost_usd: float = 0.0


@dataclass(frozen=True)
class ClosureRow:
    """A closed PR as the outcomes handler saw it (its own open and first-review times from GitHub)."""

    repo: str
    number: int
    closed_at: float
    opened_at: float | None = None
    first_review_at: float | None = None


@dataclass(frozen=True)
class CostRow:
    repo: str
    number: int | None
    at: float
    cost_usd: float


@dataclass(frozen=True)
class Rates:
    """Findings posted and what became of those whose PR has been classified."""

    posted: int = 0
    applied: int = 0
    dismissed: int = 0
    disputed: int = 0
    unaddressed: int = 0

    @property
    def classified(self) -> int:
        return self.applied + self.dismissed + self.disputed + self.unaddressed

    @property
    def acceptance_rate(self) -> float | None:
        return self.applied / self.classified if self.classified else None

    @property
    def dismissal_rate(self) -> float | None:
        return self.dismissed / self.classified if self.classified else None

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {
            "classified": self.classified,
            "acceptance_rate": _round(self.acceptance_rate),
            "dismissal_rate": _round(self.dismissal_rate),
        }


@dataclass(frozen=True)
class Summary:
    """One repository (or all of them): rates plus PR-level numbers."""

    rates: Rates
    prs_reviewed: int = 0
    prs_skipped: int = 0
    skip_reasons: Mapping[str, int] = field(default_factory=dict)
    prs_with_comments: int = 0
    first_review_median_s: float | None = None
    first_review_mean_s: float | None = None
    llm_cost_usd: float = 0.0

    @property
    def comments_per_pr(self) -> float | None:
        prs = self.prs_reviewed or self.prs_with_comments  # reviews not on record: PRs that got comments
        return self.rates.posted / prs if prs else None

    @property
    def cost_per_pr(self) -> float | None:
        return self.llm_cost_usd / self.prs_reviewed if self.prs_reviewed else None

    @property
    def cost_per_accepted(self) -> float | None:
        return self.llm_cost_usd / self.rates.applied if self.rates.applied else None

    def to_json(self) -> dict[str, Any]:
        return {
            **self.rates.to_json(),
            "prs_reviewed": self.prs_reviewed,
            "prs_skipped": self.prs_skipped,
            "skip_reasons": dict(self.skip_reasons),
            "comments_per_pr": _round(self.comments_per_pr),
            "first_review_median_seconds": _round(self.first_review_median_s, 1),
            "first_review_mean_seconds": _round(self.first_review_mean_s, 1),
            "llm_cost_usd": round(self.llm_cost_usd, 6),
            "llm_cost_per_pr": _round(self.cost_per_pr, 6),
            "llm_cost_per_accepted_finding": _round(self.cost_per_accepted, 6),
        }


@dataclass(frozen=True)
class Week:
    start: str  # the Monday, YYYY-MM-DD (UTC)
    rates: Rates
    prs_reviewed: int
    llm_cost_usd: float

    def to_json(self) -> dict[str, Any]:
        return {
            "week": self.start,
            **self.rates.to_json(),
            "prs_reviewed": self.prs_reviewed,
            "llm_cost_usd": round(self.llm_cost_usd, 6),
        }


@dataclass(frozen=True)
class StatsReport:
    repo: str | None
    since: float | None
    overall: Summary
    by_repo: Mapping[str, Summary]
    by_rule: Mapping[str, Rates]
    by_analyzer: Mapping[str, Rates]
    by_source: Mapping[str, Rates]
    by_week: Sequence[Week]
    demoted: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # repo → {rule: dismissal rate}

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "repo": self.repo,
            "since": _iso(self.since) if self.since is not None else None,
            "overall": self.overall.to_json(),
            "by_repo": {k: v.to_json() for k, v in self.by_repo.items()},
            "by_rule": {k: v.to_json() for k, v in self.by_rule.items()},
            "by_analyzer": {k: v.to_json() for k, v in self.by_analyzer.items()},
            "by_source": {k: v.to_json() for k, v in self.by_source.items()},
            "by_week": [w.to_json() for w in self.by_week],
            "demoted_rules": {repo: dict(rules) for repo, rules in self.demoted.items()},
        }


# ---- pure aggregation ---------------------------------------------------------------------------


def rates(rows: Iterable[OutcomeRow]) -> Rates:
    counts = {name: 0 for name in OUTCOMES}
    posted = 0
    for r in rows:
        posted += 1
        if r.outcome in counts:
            counts[r.outcome] += 1
    return Rates(posted=posted, **counts)


def _group(rows: Iterable[OutcomeRow], key: Any) -> dict[str, Rates]:
    groups: dict[str, list[OutcomeRow]] = defaultdict(list)
    for r in rows:
        groups[key(r)].append(r)
    return {k: rates(v) for k, v in sorted(groups.items())}


def week_start(epoch: float) -> str:
    day = datetime.fromtimestamp(epoch, UTC).date()
    return (day - timedelta(days=day.weekday())).isoformat()


def pr_costs(reviews: Iterable[ReviewRow], costs: Iterable[CostRow]) -> dict[tuple[str, int | None], float]:
    """LLM cost per PR: the audit trail where it has the PR, else what the review records say."""
    audited: dict[tuple[str, int | None], float] = defaultdict(float)
    for c in costs:
        audited[(c.repo, c.number)] += c.cost_usd
    recorded: dict[tuple[str, int | None], float] = defaultdict(float)
    for r in reviews:
        recorded[(r.repo, r.number)] += r.cost_usd
    return {key: audited.get(key, recorded.get(key, 0.0)) for key in set(audited) | set(recorded)}


def summary(
    outcomes: Sequence[OutcomeRow],
    reviews: Sequence[ReviewRow],
    costs: Sequence[CostRow],
    closures: Sequence[ClosureRow] = (),
) -> Summary:
    reviewed: dict[tuple[str, int], float] = {}
    opened: dict[tuple[str, int], float] = {}
    skipped: set[tuple[str, int]] = set()
    reasons: dict[str, int] = defaultdict(int)
    for r in reviews:
        key = (r.repo, r.number)
        if r.opened_at is not None:
            opened[key] = min(opened.get(key, r.opened_at), r.opened_at)
        if r.status == "reviewed":
            reviewed[key] = min(reviewed.get(key, r.reviewed_at), r.reviewed_at)
        else:
            skipped.add(key)
            reasons[r.status.partition(":")[2] or r.status] += 1
    first = dict(reviewed)
    for c in closures:  # what GitHub said at close time fills what the review records lack
        key = (c.repo, c.number)
        if c.opened_at is not None:
            opened.setdefault(key, c.opened_at)
        if c.first_review_at is not None:
            first.setdefault(key, c.first_review_at)
    waits = [max(0.0, first[k] - opened[k]) for k in first if k in opened]
    return Summary(
        rates=rates(outcomes),
        prs_reviewed=len(reviewed),
        prs_skipped=len(skipped - set(reviewed)),
        skip_reasons=dict(sorted(reasons.items())),
        prs_with_comments=len({(o.repo, o.pr_number) for o in outcomes}),
        first_review_median_s=statistics.median(waits) if waits else None,
        first_review_mean_s=statistics.fmean(waits) if waits else None,
        llm_cost_usd=sum(pr_costs(reviews, costs).values()),
    )


def build_report(
    outcomes: Sequence[OutcomeRow],
    reviews: Sequence[ReviewRow],
    costs: Sequence[CostRow],
    repo: str | None = None,
    since: float | None = None,
    closures: Sequence[ClosureRow] = (),
) -> StatsReport:
    repos = sorted({o.repo for o in outcomes} | {r.repo for r in reviews} | {c.repo for c in costs if c.repo})
    by_repo = {
        name: summary(
            [o for o in outcomes if o.repo == name],
            [r for r in reviews if r.repo == name],
            [c for c in costs if c.repo == name],
            [c for c in closures if c.repo == name],
        )
        for name in repos
    }
    weeks: dict[str, tuple[list[OutcomeRow], set[tuple[str, int]], float]] = {}
    for o in outcomes:
        weeks.setdefault(week_start(o.posted_at), ([], set(), 0.0))[0].append(o)
    for r in reviews:
        if r.status == "reviewed":
            weeks.setdefault(week_start(r.reviewed_at), ([], set(), 0.0))[1].add((r.repo, r.number))
    week_cost: dict[str, float] = defaultdict(float)
    audited = {(c.repo, c.number) for c in costs}
    for c in costs:
        week_cost[week_start(c.at)] += c.cost_usd
    for r in reviews:
        if (r.repo, r.number) not in audited:
            week_cost[week_start(r.reviewed_at)] += r.cost_usd
    for w in week_cost:
        weeks.setdefault(w, ([], set(), 0.0))
    by_week = [Week(w, rates(rows), len(prs), week_cost.get(w, 0.0)) for w, (rows, prs, _) in sorted(weeks.items())]
    return StatsReport(
        repo=repo,
        since=since,
        overall=summary(outcomes, reviews, costs, closures),
        by_repo=by_repo,
        by_rule=_group(outcomes, lambda o: o.rule),
        by_analyzer=_group(outcomes, lambda o: o.analyzer),
        by_source=_group(outcomes, lambda o: o.source),
        by_week=by_week,
    )


# ---- reading the store --------------------------------------------------------------------------


def load_reviews(engine: Engine, repo: str | None = None, since: float | None = None) -> list[ReviewRow]:
    from app.review_state import ReviewState

    out = []
    rows: list[dict[str, Any]] = ReviewState(engine).all()
    for r in rows:
        name = str(r["repo"]).lower()
        if (repo and name != repo.lower()) or (since is not None and float(r["reviewed_at"]) < since):
            continue
        out.append(
            ReviewRow(
                name,
                int(r["number"]),
                float(r["reviewed_at"]),
                r["opened_at"],
                str(r["status"]),
                float(r["cost_usd"] or 0.0),
            )
        )
    return out


def load_costs(engine: Engine, repo: str | None = None, since: float | None = None) -> list[CostRow]:
    from app.audit import AuditLog, llm_calls

    AuditLog(engine)  # creates the table on a fresh store
    c = llm_calls.c
    stmt = select(c.repo, c.pr_number, c.at, c.cost_usd)
    out = []
    with engine.connect() as conn:
        for name, number, at, cost in conn.execute(stmt):
            when = at.replace(tzinfo=UTC).timestamp() if at.tzinfo is None else at.timestamp()
            name = str(name or "").lower()
            if (repo and name != repo.lower()) or (since is not None and when < since):
                continue
            out.append(CostRow(name, number, when, float(cost or 0.0)))
    return out


def load_closures(engine: Engine, repo: str | None = None, since: float | None = None) -> list[ClosureRow]:
    return [
        ClosureRow(c["repo"], int(c["pr_number"]), float(c["closed_at"]), c["opened_at"], c["first_review_at"])
        for c in OutcomeStore(engine).closures(repo)
        if since is None or float(c["closed_at"]) >= since
    ]


def compute(engine: Engine, repo: str | None = None, since: float | None = None) -> StatsReport:
    """The report for `repo` (or all) since `since`; demotions are over all time, as the review handler sees them."""
    from app.demotion import demoted_rules

    outcomes = OutcomeStore(engine).rows(repo, since)
    reviews, costs = load_reviews(engine, repo, since), load_costs(engine, repo, since)
    report = build_report(outcomes, reviews, costs, repo, since, load_closures(engine, repo, since))
    demoted = {name: demoted_rules(engine, name) for name in report.by_repo}
    return replace(report, demoted={name: rules for name, rules in demoted.items() if rules})


def since_for(period: str | None, now: float | None = None) -> float | None:
    days = PERIODS.get(period or "all")
    if days is None:
        return None
    return (now if now is not None else time.time()) - days * 86400


# ---- the CLI ------------------------------------------------------------------------------------


def run_stats(args: argparse.Namespace, out: TextIO | None = None, engine: Engine | None = None) -> int:
    """`diffwise stats [--repo o/r] [--format text|json] [--period 7d|30d|90d|365d|all]`."""
    out = out or sys.stdout
    repo = getattr(args, "repo", None)
    since = since_for(getattr(args, "period", None))
    try:
        engine = engine or OutcomeStore.from_settings(_settings()).engine
        report = compute(engine, repo, since)
    except Exception as exc:  # a missing or unreadable store is a message, not a traceback
        sys.stderr.write(f"diffwise: cannot read the state store: {exc}\n")
        return 1
    if getattr(args, "format", "text") == "json":
        json.dump(report.to_json(), out, indent=2)
        out.write("\n")
    else:
        out.write(render_text(report))
    return 0


def _settings() -> Any:
    try:
        from app.settings import Settings

        return Settings.from_env()
    except Exception:  # App credentials are not needed to read the store
        return None


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def money(value: float | None) -> str:
    return "—" if value is None else f"${value:,.4f}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def _rates_table(title: str, groups: Mapping[str, Rates]) -> list[str]:
    if not groups:
        return []
    width = max(len(title), *(len(k) for k in groups))
    lines = [f"{title:<{width}}  posted  classified  applied  dismissed  disputed  accept  dismiss"]
    for key, r in groups.items():
        lines.append(
            f"{key:<{width}}  {r.posted:>6}  {r.classified:>10}  {r.applied:>7}  {r.dismissed:>9}  {r.disputed:>8}"
            f"  {pct(r.acceptance_rate):>6}  {pct(r.dismissal_rate):>7}"
        )
    return [*lines, ""]


def render_text(report: StatsReport) -> str:
    o = report.overall
    scope = report.repo or "all repositories"
    since = f" since {_iso(report.since)[:10]}" if report.since is not None else ""
    lines = [
        f"diffwise stats for {scope}{since}",
        "",
        f"PRs reviewed {o.prs_reviewed}, skipped {o.prs_skipped}"
        + (f" ({', '.join(f'{k} {v}' for k, v in o.skip_reasons.items())})" if o.skip_reasons else ""),
        f"findings posted {o.rates.posted}, classified {o.rates.classified}: acceptance {pct(o.rates.acceptance_rate)},"
        f" dismissal (false alarms) {pct(o.rates.dismissal_rate)}",
        f"comments per PR {o.comments_per_pr:.1f}" if o.comments_per_pr is not None else "comments per PR —",
        f"time to first review: median {duration(o.first_review_median_s)}, mean {duration(o.first_review_mean_s)}",
        f"LLM cost {money(o.llm_cost_usd)}: per PR {money(o.cost_per_pr)}, per accepted finding"
        f" {money(o.cost_per_accepted)}",
        "",
    ]
    if len(report.by_repo) > 1:
        lines += ["repo  prs  posted  accept  dismiss  cost"]
        for name, s in report.by_repo.items():
            lines.append(
                f"{name}  {s.prs_reviewed}  {s.rates.posted}  {pct(s.rates.acceptance_rate)}"
                f"  {pct(s.rates.dismissal_rate)}  {money(s.llm_cost_usd)}"
            )
        lines.append("")
    lines += _rates_table("source", report.by_source)
    lines += _rates_table("analyzer", report.by_analyzer)
    lines += _rates_table("rule", report.by_rule)
    for name, rules in report.demoted.items():
        listed = ", ".join(f"{rule} ({pct(rate)} dismissed)" for rule, rate in sorted(rules.items()))
        lines += [f"auto-demoted in {name}: {listed}", ""]
    if report.by_week:
        lines.append("week        posted  applied  dismissed  prs  cost")
        for w in report.by_week:
            lines.append(
                f"{w.start}  {w.rates.posted:>6}  {w.rates.applied:>7}  {w.rates.dismissed:>9}  {w.prs_reviewed:>3}"
                f"  {money(w.llm_cost_usd)}"
            )
        lines.append("")
    return "\n".join(lines)


# ---- Prometheus ---------------------------------------------------------------------------------


def outcome_metrics(engine: Engine) -> Iterator[Any]:
    """Scrape-time families for app.metrics' StoreCollector: findings posted and their outcomes, by source."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    from app.demotion import demoted_rules

    store = OutcomeStore(engine)
    posted = CounterMetricFamily(
        "diffwise_findings_posted", "Findings posted as comments, by source", labels=["source"]
    )
    outcome = CounterMetricFamily(
        "diffwise_finding_outcomes",
        "Classified findings of closed PRs, by source and outcome",
        labels=["source", "outcome"],
    )
    by_source = _group(store.rows(), lambda o: o.source)
    for source, r in by_source.items():
        posted.add_metric([source], float(r.posted))
        for name in OUTCOMES:
            outcome.add_metric([source, name], float(getattr(r, name)))
    demoted = GaugeMetricFamily(
        "diffwise_demoted_rules", "Rules auto-demoted after frequent dismissals, by repo", labels=["repo"]
    )
    for repo in store.repos():
        demoted.add_metric([repo], float(len(demoted_rules(engine, repo))))
    yield from (posted, outcome, demoted)


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()
