import os

import pandas as pd
import pytest
import review_corpus
from typer.testing import CliRunner

from langsort import manifest
from langsort.annotate import AnnotationFormat, annotate
from langsort.cli import app
from langsort.sort import MIXED_DIR, plan


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    root = tmp_path_factory.mktemp("annotate")
    return review_corpus.build(str(root), recordings=review_corpus.RECORDINGS[:2])


def expected(manifests: str, path: str) -> list[tuple[float, float, str]]:
    segments = pd.read_parquet(os.path.join(manifests, manifest.SEGMENTS_NAME))
    rows = segments[segments.path == path].sort_values("segment_index")
    return [(r.start_s, r.end_s, r.language) for r in rows.itertuples()]


def test_the_eaf_opens_in_pympi_with_the_segments_and_the_recording_linked(labelled, tmp_path):
    from pympi.Elan import Eaf

    archive, manifests = labelled
    written = annotate(manifests, AnnotationFormat.eaf, str(tmp_path / "eaf"))
    assert len(written) == 2
    eaf = Eaf(str(tmp_path / "eaf" / f"{review_corpus.MIXED}.eaf"))
    got = sorted(eaf.get_annotation_data_for_tier("language"))
    want = expected(manifests, review_corpus.MIXED)
    assert [(start, end, value) for start, end, value in got] == [
        (round(s * 1000), round(e * 1000), language) for s, e, language in want]
    assert len({language for _, _, language in want}) == 2
    assert eaf.get_linked_files()[0]["MEDIA_URL"].endswith(os.path.join(archive, review_corpus.MIXED))


def test_the_textgrid_opens_in_praatio_with_the_segments(labelled, tmp_path):
    from praatio import textgrid

    _, manifests = labelled
    annotate(manifests, AnnotationFormat.textgrid, str(tmp_path / "tg"))
    grid = textgrid.openTextgrid(str(tmp_path / "tg" / f"{review_corpus.MIXED}.TextGrid"), includeEmptyIntervals=False)
    entries = [(round(e.start, 3), round(e.end, 3), e.label) for e in grid.getTier("language").entries]
    assert entries == [(round(s, 3), round(e, 3), language) for s, e, language in expected(manifests, review_corpus.MIXED)]


def test_vtt_and_csv_through_the_command(labelled, tmp_path):
    _, manifests = labelled
    for to, extension in (("vtt", "vtt"), ("csv", "csv")):
        result = CliRunner().invoke(app, ["annotate", manifests, "--to", to, "--out", str(tmp_path / to)])
        assert result.exit_code == 0, result.output
        text = (tmp_path / to / f"{review_corpus.MIXED}.{extension}").read_text()
        for _, _, language in expected(manifests, review_corpus.MIXED):
            assert language in text
    cues = (tmp_path / "vtt" / f"{review_corpus.MIXED}.vtt").read_text()
    assert cues.startswith("WEBVTT") and "-->" in cues


def test_an_unknown_format_is_a_one_line_error(labelled, tmp_path):
    _, manifests = labelled
    result = CliRunner().invoke(app, ["annotate", manifests, "--to", "docx", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "docx" in result.output


def test_sort_puts_mixed_files_in_their_own_folder_unless_asked_for_the_dominant_language(labelled, tmp_path):
    archive, manifests = labelled
    files = pd.read_parquet(os.path.join(manifests, manifest.FILES_NAME))
    assert files.set_index("path").mixed[review_corpus.MIXED]
    folders = {os.path.relpath(s.source, archive): s.folder for s in plan(files, archive, str(tmp_path / "d"))[0]}
    assert folders[review_corpus.MIXED] == MIXED_DIR and folders["interviews/maya-02.flac"] == "maya"
    dominant = {os.path.relpath(s.source, archive): s.folder
                for s in plan(files, archive, str(tmp_path / "d"), mixed="dominant")[0]}
    assert dominant[review_corpus.MIXED] == files.set_index("path").language[review_corpus.MIXED]
