"""Helpers shared by the benchmarks: corpora spoken from ../shared/corpus-text, timing,
peak memory, and one-line results."""

from __future__ import annotations

import os
import platform
import re
import resource
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

SHARED_TEXT = os.path.join(HERE, "..", "..", "shared", "corpus-text")
TEXT_FILES = {"spanish": "es.txt", "maya": "quc.txt"}
# espeak-ng reads some word-initial ejective clusters as English letter names (SOURCE.md)
_MISREAD = re.compile(r"(^|\s)(ch'|tz')", re.IGNORECASE)


def shared_texts() -> dict[str, list[str]] | None:
    """Sentences per language, or None when ../shared/corpus-text is not beside the repo."""
    if not os.path.isdir(SHARED_TEXT):
        return None
    texts = {}
    for language, name in TEXT_FILES.items():
        with open(os.path.join(SHARED_TEXT, name), encoding="utf-8") as f:
            lines = [line.strip() for line in f if line.strip()]
        texts[language] = [line for line in lines if not _MISREAD.search(line)]
    return texts


def split_texts(training_share: float = 0.75) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(training sentences, held-out sentences) per language: benches never test on a
    sentence they trained on. Stops when ../shared/corpus-text is not beside the repo."""
    texts = shared_texts()
    if texts is None:
        raise SystemExit("../shared/corpus-text not found beside the repository")
    cut = {language: int(len(lines) * training_share) for language, lines in texts.items()}
    return ({language: lines[: cut[language]] for language, lines in texts.items()},
            {language: lines[cut[language]:] for language, lines in texts.items()})


def machine() -> str:
    """"2 cores of <CPU model> (AVX-512)": what a timing was measured on. The seed method's
    TensorFlow and langsort's ONNX Runtime gain differently from a CPU's vector width, so a
    ratio between them holds only for the CPU that gave it."""
    model, flags = platform.processor() or "unknown CPU", set()
    try:
        with open("/proc/cpuinfo") as f:
            first_cpu = [line.partition(":") for line in f.read().split("\n\n")[0].splitlines()]
        fields = {key.strip(): value.strip() for key, _, value in first_cpu}
        model = " ".join(fields.get("model name", model).split())
        flags = set(fields.get("flags", "").split())
    except OSError:
        pass  # not Linux: the model name platform gives
    vectors = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else None
    return f"{os.cpu_count()} cores of {model}" + (f" ({vectors})" if vectors else "")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Stopwatch:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


def out_dir(name: str) -> str:
    path = os.path.join(HERE, "out", name)
    os.makedirs(path, exist_ok=True)
    return path
