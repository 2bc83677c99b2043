"""The metrics of one evaluation arranged as a person reads them: one group per task, its headline metric first,
the published number beside ours, and the metrics nobody computed (those that need a judge) folded into one note
instead of rows of "n/a".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ufvideo.data.schema import TASKS

JUDGE_METRICS = ("sc", "ad", "td", "hd", "score_avg", "score_avg_no_td")
# Groups a metric name may start with: the curated task kinds, and ReVOS's expression groups.
GROUP_PREFIXES = (*TASKS, "referring", "reasoning", "overall")


@dataclass
class MetricRow:
    name: str
    ours: float | None
    published: float | None
    headline: bool = False

    @property
    def difference(self) -> float | None:
        return None if self.ours is None or self.published is None else self.ours - self.published


@dataclass
class TaskGroup:
    """A task's metrics (headline first) and the names of those without a value here (reported in one line)."""

    task: str
    rows: list[MetricRow] = field(default_factory=list)
    not_computed: list[str] = field(default_factory=list)


def split_name(name: str, default: str) -> tuple[str, str]:
    """(task, metric) of a metrics.json key: `rvos_jf` -> (rvos, jf); a single-task benchmark's `miou` ->
    (default, miou)."""
    for prefix in sorted(GROUP_PREFIXES, key=len, reverse=True):
        if name.startswith(f"{prefix}_"):
            return prefix, name[len(prefix) + 1 :]
    return default, name


def is_judged(name: str) -> bool:
    return name in JUDGE_METRICS or any(name.endswith(f"_{m}") for m in JUDGE_METRICS)


def _default_task(doc: Mapping[str, Any]) -> str:
    return str(doc.get("task") or doc.get("benchmark") or "results")


def groups(doc: Mapping[str, Any]) -> list[TaskGroup]:
    """One group per task in the order the metrics come; judge metrics without a value are left to `judge_note`."""
    metrics: Mapping[str, float | None] = doc.get("metrics") or {}
    published: Mapping[str, float] = doc.get("published") or {}
    headline = list(doc.get("headline") or []) or list(metrics)[:1]
    default = _default_task(doc)
    by_task: dict[str, TaskGroup] = {}
    for name in [*metrics, *(k for k in published if k not in metrics)]:
        ours = metrics.get(name)
        if ours is None and is_judged(name):
            continue
        task, _ = split_name(name, default)
        group = by_task.setdefault(task, TaskGroup(task))
        if ours is None:
            group.not_computed.append(name)
            continue
        group.rows.append(MetricRow(name, ours, published.get(name), name in headline))
    for group in by_task.values():
        rank = {name: i for i, name in enumerate(headline)}
        group.rows.sort(key=lambda r: (not r.headline, rank.get(r.name, 0)))  # stable: the rest keep their order
    order = {task: i for i, task in enumerate(GROUP_PREFIXES)}
    found = [g for g in by_task.values() if g.rows or g.not_computed]
    return sorted(found, key=lambda g: order.get(g.task, -1))  # the curated task order (metrics.json is sorted)


def judge_note(doc: Mapping[str, Any]) -> str | None:
    """One sentence for every judge metric left uncomputed, grouped by task; None when there are none."""
    missing = [name for name, value in (doc.get("metrics") or {}).items() if value is None and is_judged(name)]
    if not missing:
        return None
    default = _default_task(doc)
    tasks = list(dict.fromkeys(split_name(name, default)[0] for name in missing))
    return (
        f"{len(missing)} metrics need a judge and were not computed (no judge endpoint configured: set "
        f"UFVIDEO_JUDGE_BASE_URL and UFVIDEO_JUDGE_MODEL): {', '.join(JUDGE_METRICS)} for {', '.join(tasks)}."
    )


def other_notes(doc: Mapping[str, Any]) -> list[str]:
    """The evaluation's notes minus the per-task "no judge" notes that `judge_note` replaces."""
    return [n for n in doc.get("notes") or [] if not n.startswith("judge metrics not computed")]
