"""report.html's sections that name files: every file in a sortable table linked to its
recording, the files that are not `ok` with their reasons, and a timeline strip for each
mixed file (from segments.parquet, or from the clips when label wrote no timeline)."""

from __future__ import annotations

import html
import math
import os
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from langsort import manifest, storage
from langsort.review import drawing

SORTABLE_JS = """<script>
document.querySelectorAll("table.sortable th").forEach(function (th, column) {
  th.addEventListener("click", function () {
    const body = th.closest("table").tBodies[0];
    const down = th.dataset.order !== "asc";
    th.dataset.order = down ? "asc" : "desc";
    const key = function (row) { const v = row.cells[column].dataset.v; return v === "" || isNaN(v) ? v : Number(v); };
    Array.from(body.rows).sort(function (a, b) {
      const x = key(a), y = key(b);
      return (x < y ? -1 : x > y ? 1 : 0) * (down ? 1 : -1);
    }).forEach(function (row) { body.appendChild(row); });
  });
});
</script>"""


def recording_link(input_root: str | None, path: str) -> str:
    """The recording's path as a link a browser opens (file:// for local archives)."""
    text = html.escape(path)
    if not input_root:
        return text
    target = storage.join(input_root, path) if storage.is_remote(input_root) else Path(input_root, path).as_uri()
    return f'<a href="{html.escape(target)}">{text}</a>'


def _cell(value, shown: str | None = None) -> str:
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    sort_value = "" if missing else value
    text = "" if missing else (shown if shown is not None else str(value))
    return f'<td data-v="{html.escape(str(sort_value))}">{html.escape(text)}</td>'


def files_table(files: pd.DataFrame, input_root: str | None, decided: dict[str, str]) -> str:
    has_mixed = "mixed" in files
    head = ["path", "status", "language", "confidence", "duration", *(["mixed"] if has_mixed else []), "reviewed"]
    rows = []
    for row in files.sort_values("path").to_dict("records"):
        cells = [f'<td data-v="{html.escape(row["path"])}">{recording_link(input_root, row["path"])}</td>',
                 _cell(row["status"]), _cell(row["language"]),
                 _cell(row["confidence"], None if pd.isna(row["confidence"]) else f"{row['confidence']:.2f}"),
                 _cell(row["duration_s"], drawing.clock(row["duration_s"]) if pd.notna(row["duration_s"]) else None)]
        if has_mixed:
            cells.append(_cell("mixed" if row["mixed"] else ""))
        cells.append(_cell(decided.get(row["path"])))
        rows.append(f"<tr>{''.join(cells)}</tr>")
    header = "".join(f"<th>{h}</th>" for h in head)
    return (f'<h2>Every file</h2><p>Click a column heading to sort.</p><table class="sortable"><thead><tr>{header}'
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def not_ok_table(files: pd.DataFrame, input_root: str | None) -> str:
    bad = files[files.status != manifest.STATUS_OK].sort_values(["status", "path"])
    rows = "".join(f"<tr><td>{html.escape(r.status)}</td><td>{recording_link(input_root, r.path)}</td>"
                   f"<td>{html.escape(str(r.error or ''))}</td></tr>" for r in bad.itertuples())
    return (f"<h2>Files that are not ok ({len(bad)})</h2><table><tr><th>status</th><th>path</th><th>why</th></tr>"
            f"{rows}</table>")


def _timeline_rows(manifests_dir: str, paths: list[str]) -> tuple[str, pd.DataFrame]:
    for name in (manifest.SEGMENTS_NAME, manifest.CLIPS_NAME):
        source = storage.join(manifests_dir, name)
        if storage.exists(source):
            return name, pq.read_table(source, filters=[("path", "in", paths)]).to_pandas()
    return "", pd.DataFrame(columns=["path", "start_s", "end_s", "language"])


def mixed_strips(files: pd.DataFrame, manifests_dir: str, input_root: str | None, labels: list[str]) -> str:
    """A coloured strip per mixed file; empty when files.parquet says nothing of mixing."""
    if "mixed" not in files:
        return ""
    mixed = files[files["mixed"].fillna(False).astype(bool)].sort_values("path")
    if mixed.empty:
        return "<h2>Mixed files</h2><p>None.</p>"
    source, rows = _timeline_rows(manifests_dir, list(mixed.path))
    palette = drawing.colours(labels)
    legend = " ".join(f'<span class="swatch" style="background:{c}"></span>{html.escape(label)}'
                      for label, c in palette.items())
    strips = []
    for file in mixed.itertuples():
        stretches = rows[rows.path == file.path].sort_values("start_s").to_dict("records")
        axis = drawing.axis_of(file.duration_s, stretches)
        bands = "".join(
            f'<span class="band" style="left:{b["left"]:.3f}%;width:{b["width"]:.3f}%;background:{b["colour"]}" '
            f'title="{html.escape(str(b["language"] or "no confident language"))} {drawing.clock(b["start_s"])}–'
            f'{drawing.clock(b["end_s"])}"></span>'
            for b in drawing.bands(stretches, axis, palette))
        strips.append(f'<div class="strip-row"><div class="strip-name">{recording_link(input_root, file.path)} '
                      f'<small>{drawing.clock(file.duration_s)}</small></div><div class="strip">{bands}</div></div>')
    return (f"<h2>Mixed files ({len(mixed)})</h2><p>Language over time, from {os.path.splitext(source)[0]}: "
            f"{legend}</p>{''.join(strips)}")


STYLE = """.sortable th{cursor:pointer;background:#f0f0f3} .strip-row{margin:.4em 0}
.strip{position:relative;height:18px;background:#eee;max-width:900px}
.strip .band{position:absolute;top:0;bottom:0}
.swatch{display:inline-block;width:.8em;height:.8em;margin:0 .3em 0 .8em}"""


def render(files: pd.DataFrame, manifests_dir: str, input_root: str | None, decided: dict[str, str]) -> str:
    """The HTML of all three sections, with the style and script they need."""
    labels = manifest.labels_in(files.columns)
    return (f"<style>{STYLE}</style>{mixed_strips(files, manifests_dir, input_root, labels)}"
            f"{not_ok_table(files, input_root)}{files_table(files, input_root, decided)}{SORTABLE_JS}")
