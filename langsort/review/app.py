"""The review app's routes (SPEC.md, "Review app"): thin views over catalog.py and media.py.

Every page has a JSON twin under /api/ with the same data, for scripts and tests:
`/` and `/api/files`, `/files/<path>` and `/api/files/<path>`.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from urllib.parse import quote, urlencode

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from langsort import audio, manifest, reviews, storage
from langsort.review import drawing, media
from langsort.review.catalog import Catalog, Query
from langsort.review.guard import Guard

HERE = Path(__file__).parent
STATUSES = (manifest.STATUS_OK, manifest.STATUS_UNKNOWN, manifest.STATUS_ERROR)


def create_app(manifests_dir: str, token: str | None = None, input_root: str | None = None) -> FastAPI:
    """The app over one MANIFESTS folder; `token` None answers loopback only (see guard.py);
    `input_root` is the labelled folder when it is not where run.json says."""
    catalog = Catalog(manifests_dir, input_root)
    palette = drawing.colours(catalog.labels)
    cache = tempfile.TemporaryDirectory(prefix="langsort-review-")  # transcoded audio

    app = FastAPI(title="langsort review", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.catalog, app.state.cache = catalog, cache
    app.add_middleware(Guard, token=token)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters.update(urlpath=lambda path: quote(path), clock=drawing.clock)
    common = dict(manifests=manifests_dir, labels=catalog.labels, palette=palette, statuses=STATUSES,
                  has_mixed="mixed" in catalog.files)

    def query_of(status: str, language: str, q: str, mixed: bool, reviewed: str, page: int) -> Query:
        return Query(status=status or None, language=language or None, text=q.strip() or None, mixed=mixed,
                     reviewed={"yes": True, "no": False}.get(reviewed), page=page)

    @app.get("/", response_class=HTMLResponse)
    def file_list(request: Request, status: str = "", language: str = "", q: str = "", mixed: bool = False,
                  reviewed: str = "", page: int = 1):
        table = catalog.page(query_of(status, language, q, mixed, reviewed, page))
        args = dict(status=status, language=language, q=q, reviewed=reviewed, **({"mixed": "1"} if mixed else {}))
        link = lambda p: "?" + urlencode({**{k: v for k, v in args.items() if v}, "page": p})  # noqa: E731
        return templates.TemplateResponse(request, "list.html", dict(
            common, table=table, args=args, link=link, reviewed_count=len(catalog.decided),
            file_count=len(catalog.files), json_url="/api/files" + link(table["page"])))

    @app.get("/api/files")
    def file_list_json(status: str = "", language: str = "", q: str = "", mixed: bool = False,
                       reviewed: str = "", page: int = 1):
        return catalog.page(query_of(status, language, q, mixed, reviewed, page))

    def recording_or_404(path: str) -> dict:
        found = catalog.recording(path)
        if found is None:
            raise HTTPException(404, f"{path!r} is not in {manifest.FILES_NAME}")
        return found

    @app.get("/files/{path:path}", response_class=HTMLResponse)
    def recording_page(request: Request, path: str):
        found = recording_or_404(path)
        timeline = found["segments"] if found["segments"] is not None else found["clips"]
        axis = drawing.axis_of(found["file"]["duration_s"], found["clips"], timeline)
        return templates.TemplateResponse(request, "file.html", dict(
            common, **found, axis=axis, choices=catalog.choices,
            probabilities=[(label, found["file"].get(manifest.prob_column(label))) for label in catalog.labels],
            timeline_kind="segments" if found["segments"] is not None else "clips",
            bands=drawing.bands(timeline, axis, palette), ticks=drawing.ticks(axis),
            lines=drawing.probability_lines(found["clips"], catalog.labels, axis, palette)))

    @app.get("/api/files/{path:path}")
    def recording_json(path: str):
        return recording_or_404(path)

    def source_of(path: str) -> str:
        try:
            return media.locate(catalog.input_root, path, catalog.paths)
        except media.BadPath as exc:
            raise HTTPException(400, str(exc)) from None
        except media.NotARecording:
            raise HTTPException(404, f"{path!r} is not in {manifest.FILES_NAME}") from None
        except media.Escapes as exc:
            raise HTTPException(403, str(exc)) from None

    @app.get("/audio/{path:path}")
    def recording_audio(request: Request, path: str):
        try:
            play = media.playable(source_of(path), cache.name)
        except (audio.AudioError, OSError) as exc:
            raise HTTPException(404, f"cannot play {path!r}: {exc}") from None
        size = storage.size(play.source)
        headers = {"Accept-Ranges": "bytes", "Cache-Control": "no-cache"}
        try:
            wanted = media.byte_range(request.headers.get("range"), size)
        except media.RangeNotSatisfiable:
            return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
        start, end = wanted or (0, size)
        if wanted:
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        headers["Content-Length"] = str(end - start)
        return StreamingResponse(media.read_range(play.source, start, end), status_code=206 if wanted else 200,
                                 media_type=play.media_type, headers=headers)

    @functools.lru_cache(maxsize=64)
    def spectrogram(source: str) -> bytes:
        return media.spectrogram_png(source)

    @app.get("/spectrogram/{path:path}")
    def recording_spectrogram(path: str):
        try:
            png = spectrogram(source_of(path))
        except (audio.AudioError, OSError) as exc:
            raise HTTPException(404, f"no spectrogram for {path!r}: {exc}") from None
        return Response(png, media_type="image/png")

    @app.post("/api/reviews", status_code=201)
    def add_review(body: reviews.Review):
        try:
            row = catalog.record(body)
        except reviews.UnknownRecording as exc:
            raise HTTPException(404, str(exc)) from None
        except reviews.ReviewError as exc:
            raise HTTPException(422, str(exc)) from None
        return dict(row, reviewed_at=row["reviewed_at"].isoformat(timespec="seconds"))

    return app
