"""`langsort report`: what a person reads after labelling — counts and hours per language,
unknown/error counts and reasons, the confidence distribution, how often the model agrees
with the people who reviewed files and, with a truth CSV (`file,language`), accuracy and a
confusion matrix. Printed to the terminal and written as a self-contained HTML page with
plots and every file named (MANIFESTS/report.html)."""

from __future__ import annotations

import html
import os

import numpy as np
import pandas as pd

from langsort import manifest, report_files, reviews
from langsort.errors import LangsortError
from langsort.metrics import summarize
from langsort.parts import input_root_of
from langsort.plots import figure_png

HTML_NAME = "report.html"
BINS = np.linspace(0.0, 1.0, 11)


def load(manifests_dir: str) -> pd.DataFrame:
    path = os.path.join(manifests_dir, manifest.FILES_NAME)
    if not os.path.isfile(path):
        raise LangsortError(f"no {manifest.FILES_NAME} in {manifests_dir}: run langsort label first")
    return pd.read_parquet(path)


def read_truth(path: str) -> dict[str, str]:
    truth = pd.read_csv(path)
    if not {"file", "language"} <= set(truth.columns):
        raise LangsortError(f"{path} needs the columns file,language")
    return dict(zip(truth.file.astype(str), truth.language.astype(str)))


def build(files: pd.DataFrame, truth: dict[str, str] | None = None, decisions: pd.DataFrame | None = None,
          segments: pd.DataFrame | None = None) -> dict:
    """Every figure of the report, as plain data (`decisions`: reviews.parquet's rows). With
    the timeline (segments), hours per language count the time each language is spoken, so
    a mixed file counts in both."""
    ok = files[files.status == manifest.STATUS_OK]
    per_language = (ok.groupby("language").agg(files=("path", "size"), hours=("duration_s", "sum"))
                    .assign(hours=lambda d: d.hours / 3600).sort_index())
    histogram, _ = np.histogram(ok.confidence.dropna(), bins=BINS)
    reasons = (files[files.status != manifest.STATUS_OK].groupby(["status", "error"]).size()
               .sort_values(ascending=False).head(10))
    report = dict(
        files=len(files), status=files.status.value_counts().to_dict(),
        hours=float(files.duration_s.fillna(0).sum() / 3600),
        per_language=per_language.reset_index().to_dict("records"),
        confidence_histogram=histogram.tolist(),
        reasons=[dict(status=s, reason=r, files=int(n)) for (s, r), n in reasons.items()],
    )
    if segments is not None and "mixed" in files:
        spoken = segments.dropna(subset=["language"]).assign(seconds=lambda d: d.end_s - d.start_s)
        report["speech_hours"] = (spoken.groupby("language").seconds.sum() / 3600).sort_index().to_dict()
        mixed = int(files.mixed.fillna(False).sum())
        report["mixed"] = dict(files=mixed, share=mixed / max(len(ok), 1))
    if decisions is not None and len(decisions):
        report["reviews"] = reviews.agreement(files, decisions)
    if truth:
        known = files[files.path.isin(truth)]
        labels = sorted(set(truth.values()) | set(ok.language.dropna()))
        predicted = known.language.fillna("(not ok)")
        labels_with_none = labels + (["(not ok)"] if (predicted == "(not ok)").any() else [])
        index = {label: i for i, label in enumerate(labels_with_none)}
        true_idx = np.array([index.get(truth[p], -1) for p in known.path])
        keep = true_idx >= 0
        pred_idx = np.array([index[p] for p in predicted])
        report["truth"] = dict(labels=labels_with_none, files=int(keep.sum()),
                               **summarize(true_idx[keep], pred_idx[keep], labels_with_none))
    return report


def render_text(report: dict) -> str:
    lines = [f"{report['files']} files, {report['hours']:.2f} h: " +
             ", ".join(f"{n} {s}" for s, n in sorted(report["status"].items()))]
    for row in report["per_language"]:
        lines.append(f"  {row['language']:<16} {row['files']:>6} files {row['hours']:>8.2f} h")
    if "speech_hours" in report:
        lines.append(f"mixed files: {report['mixed']['files']} ({report['mixed']['share']:.0%} of ok files); "
                     "hours spoken per language (timeline): "
                     + ", ".join(f"{language} {hours:.2f} h" for language, hours in report["speech_hours"].items()))
    peak = max(report["confidence_histogram"] + [1])
    lines.append("confidence of ok files:")
    for low, count in zip(BINS[:-1], report["confidence_histogram"]):
        lines.append(f"  {low:.1f}-{low + 0.1:.1f} {'#' * round(30 * count / peak):<30} {count}")
    if report["reasons"]:
        lines.append("not ok, commonest reasons:")
        lines += [f"  {r['status']:<8} {r['files']:>5}  {r['reason']}" for r in report["reasons"]]
    if "reviews" in report:
        r = report["reviews"]
        share = f" ({r['agree'] / r['files']:.0%})" if r["files"] else ""
        lines.append(f"reviewed by people: {r['files']} files, {r['segments']} stretches; "
                     f"the model agrees on {r['agree']} of {r['files']} files{share}")
        lines += [f"  model {d['model']:<12} reviewer {d['reviewer']:<12} {d['files']:>5} files" for d in r["disagreements"]]
    if "truth" in report:
        t = report["truth"]
        lines.append(f"against the truth ({t['files']} files): accuracy {t['accuracy']:.3f}, macro-F1 {t['macro_f1']:.3f}")
        lines.append("  confusion (rows truth, columns predicted): " + " | ".join(t["labels"]))
        lines += [f"  {label:<16} {' '.join(f'{v:>6}' for v in row)}" for label, row in zip(t["labels"], t["confusion"])]
    return "\n".join(lines)


def render_html(report: dict, title: str, files_html: str = "") -> str:
    languages = [r["language"] for r in report["per_language"]]
    plots = [
        figure_png(lambda ax: (ax.bar(languages, [r["hours"] for r in report["per_language"]]),
                               ax.set(title="hours per language", ylabel="hours"))),
        figure_png(lambda ax: (ax.bar(BINS[:-1] + 0.05, report["confidence_histogram"], width=0.09),
                               ax.set(title="confidence of ok files", xlabel="confidence", ylabel="files"))),
    ]
    if "truth" in report:
        t = report["truth"]

        def confusion(ax):
            matrix = np.asarray(t["confusion"])
            ax.imshow(matrix, cmap="Blues")
            ax.set_xticks(range(len(t["labels"])), t["labels"], rotation=30)
            ax.set_yticks(range(len(t["labels"])), t["labels"])
            ax.set(title=f"confusion, accuracy {t['accuracy']:.3f}", xlabel="predicted", ylabel="true")
            for (i, j), v in np.ndenumerate(matrix):
                ax.text(j, i, str(v), ha="center", va="center")

        plots.append(figure_png(confusion))
    rows = "".join(f"<tr><td>{html.escape(str(r['language']))}</td><td>{r['files']}</td><td>{r['hours']:.2f}</td></tr>"
                   for r in report["per_language"])
    reasons = "".join(f"<tr><td>{r['status']}</td><td>{r['files']}</td><td>{html.escape(str(r['reason']))}</td></tr>"
                      for r in report["reasons"])
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:4px 8px}}</style>
</head><body><h1>{html.escape(title)}</h1><pre>{html.escape(render_text(report))}</pre>
<h2>Per language</h2><table><tr><th>language</th><th>files</th><th>hours</th></tr>{rows}</table>
<h2>Not ok</h2><table><tr><th>status</th><th>files</th><th>reason</th></tr>{reasons}</table>
<h2>Plots</h2>{''.join(plots)}{files_html}</body></html>"""


def write(manifests_dir: str, truth_csv: str | None = None) -> tuple[str, str]:
    """(terminal text, path of the HTML report)."""
    segments_path = os.path.join(manifests_dir, manifest.SEGMENTS_NAME)
    segments = pd.read_parquet(segments_path) if os.path.isfile(segments_path) else None
    files, decisions = load(manifests_dir), reviews.load(manifests_dir)
    report = build(files, read_truth(truth_csv) if truth_csv else None, decisions, segments)
    try:
        input_root = input_root_of(manifests_dir)
    except LangsortError:
        input_root = None  # files are named without links
    files_html = report_files.render(files, manifests_dir, input_root, reviews.file_decisions(decisions))
    path = os.path.join(manifests_dir, HTML_NAME)
    with open(path, "w", encoding="utf-8") as f:
        f.write(render_html(report, f"langsort report: {os.path.abspath(manifests_dir)}", files_html))
    return render_text(report), path
