"""Render an evaluation directory (`metrics.json` + `details.json`) as PNG plots and a Markdown and a self-contained
HTML page, with the UFVideo paper's published numbers alongside. Plots use matplotlib when it is installed and
fall back to simple Pillow-drawn charts otherwise.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ufvideo.eval.control import format_value, summary_rows
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


def _markdown(doc: Mapping[str, Any], plots: Mapping[str, Path], out: Path) -> str:
    ckpt = doc.get("checkpoint") or {}
    lines = [
        f"# Evaluation: {doc['benchmark']}",
        "",
        f"- checkpoint: `{ckpt.get('uri') or 'n/a'}` (digest `{(ckpt.get('digest') or 'n/a')[:16]}`)",
        f"- samples: {doc['num_samples']}",
        f"- J/F aggregation: {doc.get('aggregation') or 'n/a'}",
        "",
        "| metric | this run | published (UFVideo-7B) | difference |",
        "|---|---:|---:|---:|",
        *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in metric_rows(doc)),
        "",
    ]
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
    if doc.get("notes"):
        lines += ["## Notes", "", *(f"- {n}" for n in doc["notes"]), ""]
    for name, path in plots.items():
        lines += [f"![{name}]({path.relative_to(out).as_posix()})", ""]
    return "\n".join(lines)


def _html(doc: Mapping[str, Any], plots: Mapping[str, Path]) -> str:
    esc = html.escape
    rows = "".join(f"<tr><td>{esc(a)}</td><td>{b}</td><td>{c}</td><td>{d}</td></tr>" for a, b, c, d in metric_rows(doc))
    notes = "".join(f"<li>{esc(n)}</li>" for n in doc.get("notes", []))
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
    images = "".join(
        f'<h3>{esc(name)}</h3><img alt="{esc(name)}" src="data:image/png;base64,'
        f'{base64.b64encode(path.read_bytes()).decode("ascii")}">'
        for name, path in plots.items()
    )
    ckpt = doc.get("checkpoint") or {}
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>Evaluation: {esc(doc['benchmark'])}</title><style>"
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child{text-align:left}"
        "</style></head><body>"
        f"<h1>Evaluation: {esc(doc['benchmark'])}</h1>"
        f"<p>checkpoint <code>{esc(ckpt.get('uri') or 'n/a')}</code>, {doc['num_samples']} samples, "
        f"J/F aggregation: {esc(str(doc.get('aggregation') or 'n/a'))}</p>"
        "<table><tr><th>metric</th><th>this run</th><th>published (UFVideo-7B)</th><th>difference</th></tr>"
        f"{rows}</table>{controls}<h2>Notes</h2><ul>{notes}</ul>{images}</body></html>\n"
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
        handle.write(_html(doc, plots))
    return {
        "report_md": str(out / "report.md"),
        "report_html": str(out / "report.html"),
        **{f"plot_{k}": str(v) for k, v in plots.items()},
    }
