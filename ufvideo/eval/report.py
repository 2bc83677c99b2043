"""Render an evaluation directory (`metrics.json` + `details.json` + `gallery.json`) as PNG plots and a Markdown and a
self-contained HTML page: metrics grouped by task (headline first, the UFVideo paper's published numbers beside
ours, `ufvideo.eval.summary`), the controls, and the gallery of best and worst samples with their pictures.
Plots use matplotlib when it is installed and fall back to simple Pillow-drawn charts otherwise.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ufvideo.eval.control import format_value, summary_rows
from ufvideo.eval.gallery import GALLERY_FILE
from ufvideo.eval.summary import groups, judge_note, other_notes
from ufvideo.files import atomic_write, read_json

PLOTS_DIR = "plots"
CONTROLS_NOTE = (
    "blind prior: each task's most frequent training answer, no model; shuffled video: the same checkpoint with every "
    "sample's video taken from another sample of its task; video dependence: this run minus shuffled video."
)
MAX_BARS = 60  # J&F per video: the worst videos are the ones worth looking at


def _matplotlib_available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _save_matplotlib(path: Path, draw: Any, width: float) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, 3.6), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    draw(axes)
    figure.tight_layout()
    with atomic_write(path, "wb") as handle:
        figure.savefig(handle, format="png")


def bar_chart(
    path: Path,
    labels: Sequence[str],
    values: Sequence[float],
    title: str,
    reference: Sequence[float | None] | None = None,
    backend: str = "auto",
) -> Path:
    """Bars of `values` (with `reference` as a second, hatched bar per label where given)."""
    if backend == "matplotlib" or (backend == "auto" and _matplotlib_available()):

        def draw(ax: Any) -> None:
            xs = list(range(len(labels)))
            width = 0.4 if reference else 0.8
            ax.bar([x - (width / 2 if reference else 0) for x in xs], values, width, label="this run", color="#3b6ea8")
            if reference:
                ref_x = [x + width / 2 for x, r in zip(xs, reference) if r is not None]
                ref_v = [r for r in reference if r is not None]
                ax.bar(ref_x, ref_v, width, label="published", color="#c9a227", hatch="//")
                ax.legend(fontsize=8)
            ax.set_xticks(xs, labels, rotation=60, ha="right", fontsize=7)
            ax.set_title(title, fontsize=10)

        _save_matplotlib(path, draw, max(6.0, 0.3 * len(labels) + 2))
    else:
        _pillow_bars(path, labels, values, title, reference)
    return path


def histogram(path: Path, values: Sequence[float], title: str, bins: int = 20, backend: str = "auto") -> Path:
    """Histogram of values in [0, 1] (temporal IoUs) in `bins` equal bins."""
    counts = [0] * bins
    for v in values:
        counts[min(int(max(float(v), 0.0) * bins), bins - 1)] += 1
    labels = [f"{i / bins:.2f}" for i in range(bins)]
    if backend == "matplotlib" or (backend == "auto" and _matplotlib_available()):

        def draw(ax: Any) -> None:
            ax.bar([i / bins for i in range(bins)], counts, 1 / bins, align="edge", color="#3b6ea8", edgecolor="white")
            ax.set_xlim(0, 1)
            ax.set_xlabel("temporal IoU")
            ax.set_title(title, fontsize=10)

        _save_matplotlib(path, draw, 6.0)
    else:
        _pillow_bars(path, labels, [float(c) for c in counts], title, None)
    return path


def _pillow_bars(
    path: Path, labels: Sequence[str], values: Sequence[float], title: str, reference: Sequence[float | None] | None
) -> None:
    from PIL import Image, ImageDraw

    bar, gap, height, top, bottom = 14, 6, 300, 30, 90
    width = max(400, len(labels) * (2 * bar + gap) + 40)
    image = Image.new("RGB", (width, height + top + bottom), "white")
    draw = ImageDraw.Draw(image)
    draw.text((10, 8), title, fill="black")
    peak = max([*values, *(r for r in reference or [] if r is not None), 1e-9])
    for i, (label, value) in enumerate(zip(labels, values)):
        x = 20 + i * (2 * bar + gap)
        h = int(height * max(value, 0.0) / peak)
        draw.rectangle([x, top + height - h, x + bar, top + height], fill=(59, 110, 168))
        ref = reference[i] if reference else None
        if ref is not None:
            rh = int(height * max(ref, 0.0) / peak)
            draw.rectangle([x + bar, top + height - rh, x + 2 * bar, top + height], fill=(201, 162, 39))
        draw.text((x, top + height + 4), label[:12], fill="black")
    with atomic_write(path, "wb") as handle:
        image.save(handle, format="PNG")


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.2f}" if isinstance(value, int | float) else str(value)


def metric_rows(doc: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """(metric, this run, published, difference) for every metric, published-only ones included."""
    published = doc.get("published", {})
    rows = []
    for name in [*doc["metrics"], *(k for k in published if k not in doc["metrics"])]:
        ours, ref = doc["metrics"].get(name), published.get(name)
        diff = _fmt(ours - ref) if ours is not None and ref is not None else ""
        rows.append((name, _fmt(ours), _fmt(ref) if ref is not None else "", diff))
    return rows


def make_plots(doc: Mapping[str, Any], details: Mapping[str, Any], out: Path, backend: str = "auto") -> dict[str, Path]:
    plots: dict[str, Path] = {}
    folder = out / PLOTS_DIR
    per_task = details.get("per_task_accuracy") or {}
    if per_task:
        labels = list(per_task)
        published = doc.get("published", {})
        reference = [published.get(f"accuracy_{k}") for k in labels]
        plots["per_task_accuracy"] = bar_chart(
            folder / "per_task_accuracy.png",
            labels,
            [per_task[k] for k in labels],
            "accuracy per task (%)",
            reference if any(r is not None for r in reference) else None,
            backend,
        )
    per_video = details.get("jf_per_video") or {}
    if per_video:
        worst = sorted(per_video.items(), key=lambda kv: kv[1])[:MAX_BARS]
        title = "J&F per video (%)" + (f", worst {MAX_BARS}" if len(per_video) > MAX_BARS else "")
        plots["jf_per_video"] = bar_chart(
            folder / "jf_per_video.png", [k for k, _ in worst], [v for _, v in worst], title, None, backend
        )
    if details.get("ious"):
        plots["iou_histogram"] = histogram(
            folder / "iou_histogram.png", details["ious"], "temporal IoU", backend=backend
        )
    shared = [k for k, v in doc["metrics"].items() if v is not None and k in doc.get("published", {})]
    if shared:
        plots["vs_published"] = bar_chart(
            folder / "vs_published.png",
            shared,
            [doc["metrics"][k] for k in shared],
            "this run vs published",
            [doc["published"][k] for k in shared],
            backend,
        )
    return plots


def compat_label(doc: Mapping[str, Any]) -> str:
    """Which inference behaviour produced the numbers (eval.compat), spelled out for the reader."""
    compat = doc.get("compat") or "ours"
    if compat == "upstream":
        return "upstream (the public inference code's [SEG] quirks)"
    return f"{compat} (corrected [SEG] state; every [SEG] of a teacher-forced prompt gets its mask)"


def _num(value: float | None, signed: bool = False) -> str:
    if value is None:
        return ""
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def _gallery(out: Path) -> list[dict[str, Any]]:
    path = out / GALLERY_FILE
    return list(read_json(path)) if path.is_file() else []


def _markdown(doc: Mapping[str, Any], plots: Mapping[str, Path], out: Path) -> str:
    ckpt = doc.get("checkpoint") or {}
    lines = [
        f"# Evaluation: {doc['benchmark']}",
        "",
        f"- checkpoint: `{ckpt.get('uri') or 'n/a'}` (digest `{(ckpt.get('digest') or 'n/a')[:16]}`)",
        f"- samples: {doc['num_samples']}",
        f"- J/F aggregation: {doc.get('aggregation') or 'n/a'}",
        f"- mode: {compat_label(doc)}",
        "",
    ]
    for group in groups(doc):
        lines += [
            f"## {group.task}",
            "",
            "| metric | this run | published (UFVideo-7B) | difference |",
            "|---|---:|---:|---:|",
        ]
        for row in group.rows:
            name = f"**{row.name}**" if row.headline else row.name
            lines.append(f"| {name} | {_num(row.ours)} | {_num(row.published)} | {_num(row.difference, True)} |")
        if group.not_computed:
            lines.append(f"\nnot computed here: {', '.join(group.not_computed)}")
        lines.append("")
    if doc.get("controls"):
        lines += [
            "## Controls",
            "",
            CONTROLS_NOTE,
            "",
            "| metric | this run | blind prior | shuffled video | video dependence |",
            "|---|---:|---:|---:|---:|",
            *("| " + " | ".join([row[0], *map(format_value, row[1:])]) + " |" for row in summary_rows(dict(doc))),
            "",
        ]
    notes = [n for n in [judge_note(doc), *other_notes(doc)] if n]
    if notes:
        lines += ["## Notes", "", *(f"- {n}" for n in notes), ""]
    entries = _gallery(out)
    if entries:
        lines += ["## Gallery", ""]
        for e in entries:
            score = "" if e.get("score") is None else f", score {_fmt(e['score'])}"
            lines += [f"### {e['task']}: {e['kind']} ({e['id']}{score})", ""]
            if e.get("image"):
                lines += [f"![{e['id']}]({e['image']})", ""]
            lines += [
                f"- question: {e['question']}",
                f"- answer: {e['answer']}",
                f"- prediction: {e['prediction']}",
                "",
            ]
    for name, path in plots.items():
        lines += [f"![{name}]({path.relative_to(out).as_posix()})", ""]
    return "\n".join(lines)


def _data_uri(path: Path) -> str:
    return f"data:image/png;base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _html_groups(doc: Mapping[str, Any]) -> str:
    esc = html.escape
    parts = []
    for group in groups(doc):
        rows = "".join(
            f"<tr{' class=headline' if r.headline else ''}><td>{esc(r.name)}</td><td>{_num(r.ours)}</td>"
            f"<td>{_num(r.published)}</td><td>{_num(r.difference, True)}</td></tr>"
            for r in group.rows
        )
        missing = (
            f"<p class=muted>not computed here: {esc(', '.join(group.not_computed))}</p>" if group.not_computed else ""
        )
        parts.append(
            f"<section class=task><h2>{esc(group.task)}</h2><table><tr><th>metric</th><th>this run</th>"
            f"<th>published (UFVideo-7B)</th><th>difference</th></tr>{rows}</table>{missing}</section>"
        )
    return "".join(parts)


def _html_gallery(out: Path) -> str:
    esc = html.escape
    by_task: dict[str, list[dict[str, Any]]] = {}
    for entry in _gallery(out):
        by_task.setdefault(entry["task"], []).append(entry)
    if not by_task:
        return ""
    parts = [
        "<h2>Gallery</h2><p>green: ground truth; magenta: prediction; time line: truth above, prediction below</p>"
    ]
    for task, entries in by_task.items():
        cards = []
        for e in entries:
            image = ""
            if e.get("image") and (out / e["image"]).is_file():
                image = f'<img alt="{esc(e["id"])}" src="{_data_uri(out / e["image"])}">'
            score = "" if e.get("score") is None else f" (score {_fmt(e['score'])})"
            cards.append(
                f"<div class='card {esc(e['kind'])}'><h4>{esc(e['kind'])}: {esc(e['id'])}{esc(score)}</h4>{image}"
                f"<dl><dt>question</dt><dd>{esc(e['question'])}</dd>"
                f"<dt>answer</dt><dd>{esc(e['answer'])}</dd><dt>prediction</dt><dd>{esc(e['prediction'])}</dd>"
                f"</dl></div>"
            )
        parts.append(f"<section class=gallery><h3>{esc(task)}</h3>{''.join(cards)}</section>")
    return "".join(parts)


STYLE = (
    "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin-bottom:.5em}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child{text-align:left}"
    "tr.headline td{font-weight:bold;background:#eef4fb}.muted{color:#777;font-size:90%}"
    ".card{display:inline-block;vertical-align:top;border:1px solid #ccc;margin:6px;padding:6px;max-width:820px}"
    ".card.best{border-color:#3a3}.card.worst{border-color:#c33}.card img{max-width:800px;display:block}"
    "dt{font-weight:bold}dd{margin:0 0 4px 1em;white-space:pre-wrap}"
)


def _html(doc: Mapping[str, Any], plots: Mapping[str, Path], out: Path) -> str:
    esc = html.escape
    controls = ""
    if doc.get("controls"):
        cells = "".join(
            "<tr>" + "".join(f"<td>{esc(v)}</td>" for v in [row[0], *map(format_value, row[1:])]) + "</tr>"
            for row in summary_rows(dict(doc))
        )
        controls = (
            f"<h2>Controls</h2><p>{esc(CONTROLS_NOTE)}</p><table><tr><th>metric</th><th>this run</th>"
            f"<th>blind prior</th><th>shuffled video</th><th>video dependence</th></tr>{cells}</table>"
        )
    notes = "".join(f"<li>{esc(n)}</li>" for n in [judge_note(doc), *other_notes(doc)] if n)
    images = "".join(
        f'<h3>{esc(name)}</h3><img alt="{esc(name)}" src="{_data_uri(path)}">' for name, path in plots.items()
    )
    ckpt = doc.get("checkpoint") or {}
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>Evaluation: {esc(doc['benchmark'])}</title><style>{STYLE}</style></head><body>"
        f"<h1>Evaluation: {esc(doc['benchmark'])}</h1>"
        f"<p>checkpoint <code>{esc(ckpt.get('uri') or 'n/a')}</code>, {doc['num_samples']} samples, "
        f"J/F aggregation: {esc(str(doc.get('aggregation') or 'n/a'))}, mode: {esc(compat_label(doc))}</p>"
        f"{_html_groups(doc)}{controls}<h2>Notes</h2><ul>{notes}</ul>{_html_gallery(out)}"
        f"<h2>Plots</h2>{images}</body></html>\n"
    )


def render(out_dir: str | Path, backend: str = "auto") -> dict[str, str]:
    """Write `report.md`, `report.html` and `plots/*.png` into `out_dir`; returns their paths."""
    out = Path(out_dir)
    doc = read_json(out / "metrics.json")
    details = read_json(out / "details.json") if (out / "details.json").is_file() else {}
    plots = make_plots(doc, details, out, backend)
    with atomic_write(out / "report.md") as handle:
        handle.write(_markdown(doc, plots, out))
    with atomic_write(out / "report.html") as handle:
        handle.write(_html(doc, plots, out))
    return {
        "report_md": str(out / "report.md"),
        "report_html": str(out / "report.html"),
        **{f"plot_{k}": str(v) for k, v in plots.items()},
    }
