"""The review app (SPEC.md, "Review app"): its HTTP routes in-process, and the whole flow in
a real headless Chromium — list, recording, a clicked stretch that plays, a correction that
lands in reviews.parquet and in `sort --dry-run`'s plan."""

from __future__ import annotations

import http.client
import os
import shutil
import threading
import time

import pyarrow as pa
import pytest
import soundfile
from starlette.testclient import TestClient
from typer.testing import CliRunner

import review_corpus
from langsort import manifest, reviews
from langsort.review.app import create_app

LOCAL = dict(base_url="http://127.0.0.1:8765", client=("127.0.0.1", 50000))
MIXED = review_corpus.MIXED


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The archive (shared, read-only) and pristine manifests with one row that is a
    symbolic link out of the archive and 250 more rows so the list has pages."""
    root = tmp_path_factory.mktemp("review")
    archive, manifests = review_corpus.build(str(root), extra_rows=250)
    outside = root / "outside.wav"
    shutil.copy(os.path.join(archive, MIXED), outside)
    os.symlink(outside, os.path.join(archive, "escape.wav"))
    (root / "archive" / "not-listed.wav").write_bytes(outside.read_bytes())
    files = manifest.read(os.path.join(manifests, manifest.FILES_NAME))
    link_row = files.slice(1, 1).to_pylist()[0] | dict(path="escape.wav")  # a plain maya row
    manifest.write_atomic(pa.concat_tables([files, pa.Table.from_pylist([link_row], files.schema)]),
                          os.path.join(manifests, manifest.FILES_NAME))
    return archive, manifests


@pytest.fixture
def manifests(corpus, tmp_path):
    """A fresh copy of the manifests for each test (reviews are written there)."""
    copy = tmp_path / "manifests"
    shutil.copytree(corpus[1], copy)
    return str(copy)


@pytest.fixture
def client(manifests):
    return TestClient(create_app(manifests), **LOCAL)


# ---------------------------------------------------------------- the list and a recording


def test_list_puts_the_most_doubtful_first_and_filters_and_pages(client):
    first = client.get("/api/files").json()
    assert first["total"] == 255 and len(first["rows"]) == 100 and first["pages"] == 3
    order = [r["path"] for r in first["rows"]]
    assert order[:2] == ["radio/jingle-04.wav", MIXED]  # unknown, then mixed
    ok = [r["confidence"] for r in first["rows"][2:]]
    assert ok == sorted(ok)
    assert len(client.get("/api/files?page=3").json()["rows"]) == 55
    assert [r["path"] for r in client.get("/api/files?status=unknown").json()["rows"]] == ["radio/jingle-04.wav"]
    assert {r["language"] for r in client.get("/api/files?language=maya").json()["rows"]} == {"maya"}
    assert [r["path"] for r in client.get("/api/files?q=PHONE").json()["rows"]] == ["phone/call-03.wav"]
    assert [r["path"] for r in client.get("/api/files?mixed=1").json()["rows"]] == [MIXED]

    page = client.get("/?status=ok&page=2")
    assert page.status_code == 200
    assert f'href="/files/{MIXED}"' not in page.text  # the mixed file is on page 1
    assert 'rel="prev"' in page.text and "page 2 of 3" in page.text


def test_a_reviewed_file_moves_below_the_files_still_to_decide(client):
    assert client.post("/api/reviews", json=dict(path=MIXED, language="maya")).status_code == 201
    rows = client.get("/api/files").json()["rows"]
    assert MIXED not in [r["path"] for r in rows]
    decided = client.get("/api/files?reviewed=yes").json()["rows"]
    assert [(r["path"], r["reviewed"]) for r in decided] == [(MIXED, "maya")]


def test_recording_page_shows_timeline_clip_probabilities_spectrogram_and_player(client):
    page = client.get(f"/files/{MIXED}")
    assert page.status_code == 200
    assert page.text.count('class="band"') == 2  # spanish then maya, from segments.parquet
    assert 'data-start="9.0"' in page.text
    assert page.text.count("<polyline") == len(review_corpus.LABELS)  # one line per label
    assert f'src="/audio/{MIXED}"' in page.text and f'src="/spectrogram/{MIXED}"' in page.text
    twin = client.get(f"/api/files/{MIXED}").json()
    assert [s["language"] for s in twin["segments"]] == ["spanish", "maya"]
    assert len(twin["clips"]) == twin["file"]["n_clips"] == 4

    png = client.get(f"/spectrogram/{MIXED}")
    assert png.headers["content-type"] == "image/png" and png.content.startswith(b"\x89PNG")
    assert client.get("/files/no/such.wav").status_code == 404


def test_without_segments_the_timeline_is_drawn_from_the_clips(manifests):
    os.remove(os.path.join(manifests, manifest.SEGMENTS_NAME))
    page = TestClient(create_app(manifests), **LOCAL).get(f"/files/{MIXED}")
    assert page.status_code == 200 and page.text.count('class="band"') == 4


# ---------------------------------------------------------------- audio


def test_audio_answers_range_requests(client, corpus):
    original = open(os.path.join(corpus[0], "interviews/maya-02.flac"), "rb").read()
    url = "/audio/interviews/maya-02.flac"
    whole = client.get(url)
    assert whole.status_code == 200 and whole.content == original
    assert whole.headers["content-type"] == "audio/flac" and whole.headers["accept-ranges"] == "bytes"

    part = client.get(url, headers={"Range": "bytes=100-1099"})
    assert part.status_code == 206 and part.content == original[100:1100]
    assert part.headers["content-range"] == f"bytes 100-1099/{len(original)}"
    assert client.get(url, headers={"Range": "bytes=-10"}).content == original[-10:]
    assert client.get(url, headers={"Range": f"bytes={len(original) - 5}-"}).content == original[-5:]
    beyond = client.get(url, headers={"Range": f"bytes={len(original)}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{len(original)}"


def test_telephone_ulaw_is_transcoded_to_a_wav_browsers_play(client, tmp_path):
    answer = client.get("/audio/phone/call-03.wav")
    assert answer.status_code == 200 and answer.headers["content-type"] == "audio/wav"
    (tmp_path / "got.wav").write_bytes(answer.content)
    info = soundfile.info(str(tmp_path / "got.wav"))
    assert (info.subtype, info.samplerate) == ("PCM_16", 8000) and abs(info.duration - 10.0) < 0.05
    tail = client.get("/audio/phone/call-03.wav", headers={"Range": "bytes=1000-"})
    assert tail.status_code == 206 and tail.content == answer.content[1000:]


@pytest.mark.parametrize("url, status", [
    ("/audio/%2e%2e%2f%2e%2e%2fetc%2fpasswd", 400),
    ("/audio/interviews/%2e%2e/%2e%2e/manifests/files.parquet", 400),
    ("/audio/%2Fetc%2Fpasswd", 400),
    ("/audio//etc/passwd", 400),
    ("/spectrogram/%2e%2e%2foutside.wav", 400),
    ("/audio/escape.wav", 403),  # in files.parquet, but a symbolic link out of the archive
    ("/spectrogram/escape.wav", 403),
    ("/audio/not-listed.wav", 404),  # in the archive, not in the manifests
    ("/audio/no/such.wav", 404),
])
def test_audio_outside_the_manifests_or_the_archive_is_refused(client, url, status):
    assert client.get(url).status_code == status


# ---------------------------------------------------------------- decisions


def test_a_review_is_stored_and_the_latest_decision_wins_with_history_kept(client, manifests):
    first = client.post("/api/reviews", json=dict(path=MIXED, language="maya", reviewer="ana", note="listened"))
    assert first.status_code == 201 and first.json()["reviewed_at"].endswith("+00:00")
    stretch = client.post("/api/reviews", json=dict(path=MIXED, language="spanish", start_s=0.0, end_s=9.0))
    assert stretch.status_code == 201
    assert client.post("/api/reviews", json=dict(path=MIXED, language="not speech")).status_code == 201

    stored = reviews.load(manifests)
    assert list(stored.language) == ["maya", "spanish", "not speech"]
    assert stored.reviewer.iloc[0] == "ana" and str(stored.reviewed_at.dt.tz) == "UTC"
    assert reviews.file_decisions(stored) == {MIXED: "not speech"}
    history = client.get(f"/api/files/{MIXED}").json()["history"]
    assert [h["language"] for h in history] == ["not speech", "spanish", "maya"]


@pytest.mark.parametrize("body, status", [
    (dict(path=MIXED, language="klingon"), 422),
    (dict(path=MIXED, language=""), 422),
    (dict(path="no/such.wav", language="maya"), 404),
    (dict(path=MIXED, language="maya", start_s=5.0), 422),  # a stretch needs both ends
    (dict(path=MIXED, language="maya", start_s=9.0, end_s=3.0), 422),
    (dict(path=MIXED, language="maya", start_s=9.0, end_s=300.0), 422),  # past the recording
    (dict(path=MIXED), 422),
])
def test_a_review_that_cannot_be_right_is_refused_and_nothing_is_written(client, manifests, body, status):
    assert client.post("/api/reviews", json=body).status_code == status
    assert not os.path.exists(os.path.join(manifests, manifest.REVIEWS_NAME))


# ---------------------------------------------------------------- who may ask


def test_other_hosts_need_the_token_which_then_travels_as_a_cookie(manifests):
    app = create_app(manifests, token="s3cret")
    remote = dict(base_url="http://192.168.1.20:8765", client=("192.168.1.33", 50000))
    assert TestClient(app, **remote).get("/").status_code == 403
    assert TestClient(app, **remote).get("/?token=wrong").status_code == 403
    assert TestClient(app, **remote).get(f"/audio/{MIXED}").status_code == 403
    browser = TestClient(app, **remote)
    assert browser.get("/?token=s3cret").status_code == 200
    assert browser.get(f"/files/{MIXED}").status_code == 200  # the cookie set by the first answer
    assert browser.post("/api/reviews", json=dict(path=MIXED, language="maya"),
                        headers={"Origin": "http://192.168.1.20:8765"}).status_code == 201


def test_without_a_token_only_this_machine_under_a_loopback_name_is_answered(manifests):
    app = create_app(manifests)
    assert TestClient(app, base_url="http://127.0.0.1:8765", client=("10.0.0.5", 50000)).get("/").status_code == 403
    rebound = TestClient(app, base_url="http://attacker.example:8765", client=("127.0.0.1", 50000))
    assert rebound.get("/api/files").status_code == 403  # DNS rebinding: a foreign name for 127.0.0.1
    assert TestClient(app, base_url="http://localhost:8765", client=("::1", 50000)).get("/").status_code == 200


def test_a_write_from_another_site_is_refused(client, manifests):
    cross = client.post("/api/reviews", json=dict(path=MIXED, language="maya"), headers={"Origin": "http://evil.example"})
    assert cross.status_code == 403
    assert not os.path.exists(os.path.join(manifests, manifest.REVIEWS_NAME))
    same = client.post("/api/reviews", json=dict(path=MIXED, language="maya"), headers={"Origin": "http://127.0.0.1:8765"})
    assert same.status_code == 201


# ---------------------------------------------------------------- a real server and browser


@pytest.fixture
def served(manifests):
    """The app on a free loopback port in this process, as `langsort review` runs it."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(create_app(manifests), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the review server did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", port
    server.should_exit = True
    thread.join(10)


def test_raw_dot_dot_paths_never_reach_the_disk(served):
    """What a client that does not tidy URLs sends (browsers and httpx remove `..` first)."""
    _, port = served
    for raw in ["/audio/../../etc/passwd", "/audio/interviews/../../outside.wav", "/files/../manifests/files.parquet"]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", raw)
        answer = connection.getresponse()
        assert 400 <= answer.status < 500 and b"root:" not in answer.read(), raw
        connection.close()


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for needed in ("/usr/bin/chromium", "/usr/bin/chromedriver"):  # a missing browser is a failed setup, not a pass
        assert os.path.exists(needed), f"{needed} is missing: scripts/setup installs Debian's chromium and chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000",
                     "--autoplay-policy=no-user-gesture-required", "--mute-audio"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    yield driver
    driver.quit()


def test_in_a_browser_a_clicked_stretch_plays_and_a_correction_reaches_sort(served, browser, manifests, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    base, _ = served
    wait = WebDriverWait(browser, 20)
    browser.get(base + "/")
    browser.find_element(By.LINK_TEXT, MIXED).click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".band"))
    assert browser.current_url == f"{base}/files/{MIXED}"

    maya = browser.find_elements(By.CSS_SELECTOR, ".band")[1]
    assert maya.get_attribute("data-language") == "maya"
    maya.click()
    player = "return document.getElementById('player')"
    wait.until(lambda d: d.execute_script(player + ".currentTime") > 9.3)  # moving, from the stretch's start
    assert browser.execute_script(player + ".paused") is False
    assert browser.execute_script(player + ".error") is None

    browser.find_element(By.CSS_SELECTOR, "input[name=scope][value=file]").click()
    browser.find_element(By.ID, "reviewer").send_keys("ana")
    # the model's third language, which it gave no file: every language it knows is offered
    browser.find_element(By.CSS_SELECTOR, ".choice[data-language=nahuatl]").click()
    wait.until(lambda d: d.find_element(By.ID, "saved").text.startswith("Saved"))
    maya = browser.find_elements(By.CSS_SELECTOR, ".band")[1]
    maya.click()  # and the stretch on its own
    browser.find_element(By.CSS_SELECTOR, ".choice[data-language=spanish]").click()
    wait.until(lambda d: "selected stretch" in d.find_element(By.ID, "saved").text)

    stored = reviews.load(manifests)
    assert stored[["path", "language", "reviewer"]].values.tolist() == [[MIXED, "nahuatl", "ana"], [MIXED, "spanish", "ana"]]
    assert stored.start_s.isna().tolist() == [True, False] and stored.start_s.iloc[1] == 9.0

    from langsort.cli import app

    plan = CliRunner().invoke(app, ["sort", manifests, "--dest", str(tmp_path / "sorted"), "--dry-run"])
    assert plan.exit_code == 0, plan.output
    line = next(line for line in plan.output.splitlines() if line.endswith(MIXED))
    assert line.endswith(os.path.join(str(tmp_path / "sorted"), "nahuatl", MIXED))  # the model said spanish


def test_the_app_works_the_same_on_s3_manifests(s3, corpus):
    archive, manifests = corpus
    for folder, prefix in ((archive, "tapes"), (manifests, "manifests")):
        for directory, _, names in os.walk(folder):
            for name in names:
                full = os.path.join(directory, name)
                if not os.path.islink(full):
                    s3.upload_file(full, "archive", f"{prefix}/{os.path.relpath(full, folder)}")
    s3.put_object(Bucket="archive", Key="manifests/.langsort/run.json", Body=b'{"input_root": "s3://archive/tapes"}')
    client = TestClient(create_app("s3://archive/manifests"), **LOCAL)

    assert client.get("/api/files").json()["total"] == 255
    assert client.get(f"/files/{MIXED}").text.count('class="band"') == 2
    original = open(os.path.join(archive, MIXED), "rb").read()
    part = client.get(f"/audio/{MIXED}", headers={"Range": "bytes=44-143"})
    assert part.status_code == 206 and part.content == original[44:144]
    assert client.get("/audio/phone/call-03.wav").headers["content-type"] == "audio/wav"
    assert client.post("/api/reviews", json=dict(path=MIXED, language="maya")).status_code == 201
    assert reviews.file_decisions(reviews.load("s3://archive/manifests")) == {MIXED: "maya"}


def test_the_review_command_serves_other_hosts_only_with_its_printed_token(manifests):
    """`langsort review` as a person runs it: bound to all addresses, it prints a URL with a
    token, and the token is what lets a request in."""
    import re
    import socket
    import subprocess
    import sys
    import urllib.error
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "langsort", "review", manifests, "--host", "0.0.0.0", "--port", str(port), "--no-open"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        printed = process.stdout.readline()
        token = re.search(r"\?token=(\S+)", printed).group(1)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/?token={token}", timeout=5) as answer:
                    assert answer.status == 200 and b"langsort review" in answer.read()
                break
            except urllib.error.URLError as exc:
                if isinstance(exc, urllib.error.HTTPError) or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/files", timeout=5)
        assert refused.value.code == 403
    finally:
        process.terminate()
        process.wait(10)


def test_an_archive_that_moved_is_found_with_input(corpus, manifests, tmp_path):
    moved = tmp_path / "moved"
    shutil.copytree(corpus[0], moved, symlinks=True)
    os.remove(os.path.join(manifests, ".langsort", "run.json"))
    from langsort.cli import app

    result = CliRunner().invoke(app, ["review", manifests, "--no-open"])
    assert result.exit_code == 2 and "--input" in result.output
    client = TestClient(create_app(manifests, input_root=str(moved)), **LOCAL)
    assert client.get(f"/audio/{MIXED}").content == (moved / MIXED).read_bytes()
