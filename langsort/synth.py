"""Synthesized speech corpora (espeak-ng) for the demo, the tests and the benchmarks.

Nothing is committed: recordings are spoken on the fly from generated pseudo-text (or from
sentence files given by the caller, as the benchmarks do with ../shared/corpus-text), in
several voice variants, speeds and pitches, and written in the formats, sample rates and
channel counts an archive really holds.

Spanish uses espeak-ng's Latin American voice (es-419). espeak-ng has no Yucatec voice:
K'iche' (quc), another Mayan language, stands in for the Maya class. Classical Nahuatl (nci)
is a third language, for checking that nothing assumes two.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

import numpy as np
import soundfile
import soxr

from langsort.errors import LangsortError

ESPEAK_RATE = 22050

# label -> espeak-ng voice: the first users' pair (K'iche' stands in for Yucatec Maya), which
# the demo and the benches synthesize
LANGUAGES = {"spanish": "es-419", "maya": "quc"}
# every language this module can speak: the pair and a third language of Mexico, for the tests
# that check a model of more than two languages works end to end
VOICES = {**LANGUAGES, "nahuatl": "nci"}
VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m7", "f1", "f2", "f3", "f4", "f5"]

_SYLLABLES = {
    # Spanish-like syllables and the commonest function words.
    "spanish": dict(
        onsets="b c d f g l m n p r s t v ch ll br tr pl gr cr", vowels="a e i o u ue ia io a e o",
        codas="- - - - n s r l", words="el la de que y en los se por con una para del como más",
    ),
    # K'iche'-like syllables: ejectives and uvulars inside words only (espeak-ng reads some
    # word-initial ch'/tz' clusters as English letter names).
    "maya": dict(
        onsets="k q t x j l m n r s w y b' ch tz k' q' t'", vowels="a e i o u aa ii a i",
        codas="- - - j q k' l m n x b' k", words="ri are chi xa man pa rech kumal ruk' wa",
    ),
    # Classical Nahuatl-like syllables in its colonial spelling, which espeak-ng's nci voice reads.
    "nahuatl": dict(
        onsets="t tl tz ch c qu cu hu m n p x y z", vowels="a e i o a i o",
        codas="- - - n l tl c z", words="in ihuan amo ca nican tlen ye huel mochi",
    ),
}
_INNER_ONLY = {"k'", "q'", "t'"}


class SynthesisError(LangsortError):
    """espeak-ng is missing or failed."""


@dataclass(frozen=True)
class Voice:
    language: str  # a key of VOICES
    variant: str = "m3"
    speed: int = 160  # words per minute
    pitch: int = 50  # 0..99

    @property
    def espeak_name(self) -> str:
        return f"{VOICES[self.language]}+{self.variant}"


def require_espeak() -> str:
    path = shutil.which("espeak-ng")
    if not path:
        raise SynthesisError("espeak-ng is not installed: run scripts/setup (or apt-get install espeak-ng)")
    return path


def speak(text: str, voice: Voice) -> np.ndarray:
    """Mono float32 at ESPEAK_RATE."""
    espeak = require_espeak()
    with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
        cmd = [espeak, "-v", voice.espeak_name, "-s", str(voice.speed), "-p", str(voice.pitch), "-w", tmp.name, text]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise SynthesisError(f"espeak-ng failed: {done.stderr.strip()}")
        samples, _ = soundfile.read(tmp.name, dtype="float32")
    return samples


def pseudo_words(language: str, n: int, rng: np.random.Generator) -> list[str]:
    """Words that follow the language's syllable shapes, for corpora without real text."""
    inventory = {k: v.split() for k, v in _SYLLABLES[language].items()}
    words = []
    for _ in range(n):
        if rng.random() < 0.25:
            words.append(str(rng.choice(inventory["words"])))
            continue
        syllables = []
        for position in range(int(rng.integers(1, 4))):
            onsets = [o for o in inventory["onsets"] if position > 0 or o not in _INNER_ONLY]
            coda = str(rng.choice(inventory["codas"]))
            syllables.append(str(rng.choice(onsets)) + str(rng.choice(inventory["vowels"])) + ("" if coda == "-" else coda))
        words.append("".join(syllables))
    return words


def sentences(language: str, n: int, rng: np.random.Generator) -> list[str]:
    out = []
    for _ in range(n):
        words = pseudo_words(language, int(rng.integers(5, 12)), rng)
        out.append(" ".join(words).capitalize() + ".")
    return out


def random_voice(language: str, rng: np.random.Generator, variants: list[str] = VARIANTS) -> Voice:
    return Voice(language, str(rng.choice(variants)), int(rng.integers(130, 185)), int(rng.integers(30, 71)))


def recording(
    language: str, seconds: float, rng: np.random.Generator, voice: Voice | None = None,
    lines: list[str] | None = None, pause_s: tuple[float, float] = (0.2, 0.8),
) -> np.ndarray:
    """About `seconds` of speech at ESPEAK_RATE: sentences in one voice with short pauses.
    Sentences come from `lines` (drawn at random) or are generated."""
    voice = voice or random_voice(language, rng)
    parts, total = [], 0
    while total < seconds * ESPEAK_RATE:
        text = " ".join(rng.choice(lines, 3)) if lines else " ".join(sentences(language, 3, rng))
        speech = speak(text, voice)
        pause = np.zeros(int(rng.uniform(*pause_s) * ESPEAK_RATE), np.float32)
        parts += [speech, pause]
        total += len(speech) + len(pause)
    return np.concatenate(parts)[: int(seconds * ESPEAK_RATE)]


def music(seconds: float, rng: np.random.Generator, sample_rate: int = ESPEAK_RATE) -> np.ndarray:
    """Instrumental-like sound without speech: plucked harmonic notes, one after another, as
    loud and as busy as speech (the case the energy rule alone cannot tell from speech)."""
    out = np.zeros(int(seconds * sample_rate), np.float32)
    position = 0
    while position < len(out):
        length = min(int(rng.uniform(0.2, 0.6) * sample_rate), len(out) - position)
        t = np.arange(length) / sample_rate
        pitch = 110.0 * 2 ** (int(rng.integers(0, 24)) / 12)
        note = sum(np.sin(2 * np.pi * pitch * k * t) / k for k in range(1, 6)) * np.exp(-3.0 * t)
        out[position : position + length] = note
        position += length
    return (0.3 * out / max(float(np.abs(out).max()), 1e-9)).astype(np.float32)


def write(path: str, samples: np.ndarray, sample_rate: int = ESPEAK_RATE, target_rate: int | None = None,
          channels: int = 1) -> str:
    """Write in the format the extension names (wav, flac, mp3, ogg), resampled and with
    `channels` channels (the extra ones slightly attenuated copies)."""
    if target_rate and target_rate != sample_rate:
        samples = soxr.resample(samples, sample_rate, target_rate)
        sample_rate = target_rate
    if channels > 1:
        samples = np.stack([samples * (1.0 - 0.1 * c) for c in range(channels)], axis=1)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    if peak > 0.99:
        samples = samples * (0.99 / peak)
    # libsndfile's Vorbis encoder crashes on very large single writes: write in blocks
    with soundfile.SoundFile(path, "w", sample_rate, channels) as f:
        for start in range(0, len(samples), 16384):
            f.write(samples[start : start + 16384])
    return path


@dataclass(frozen=True)
class FileSpec:
    seconds: float
    ext: str = "wav"
    rate: int = 16000
    channels: int = 1


FORMAT_MIX = [
    FileSpec(0, "wav", 16000, 1), FileSpec(0, "flac", 44100, 2), FileSpec(0, "mp3", 22050, 1),
    FileSpec(0, "ogg", 48000, 2), FileSpec(0, "wav", 8000, 1), FileSpec(0, "flac", 32000, 1),
]


def labelled_corpus(
    root: str, files_per_language: int, seconds: tuple[float, float] = (20, 40), seed: int = 0,
    languages: tuple[str, ...] = tuple(LANGUAGES), variants: list[str] = VARIANTS,
    texts: dict[str, list[str]] | None = None, formats: list[FileSpec] = FORMAT_MIX,
) -> list[str]:
    """root/<language>/<nn>.<ext>: each recording one random voice, format cycling through
    `formats`. Returns the written paths."""
    rng = np.random.default_rng(seed)
    paths = []
    for language in languages:
        for i in range(files_per_language):
            fmt = formats[i % len(formats)]
            samples = recording(language, float(rng.uniform(*seconds)), rng,
                                random_voice(language, rng, variants), (texts or {}).get(language))
            path = os.path.join(root, language, f"{language}-{i:03d}.{fmt.ext}")
            paths.append(write(path, samples, ESPEAK_RATE, fmt.rate, fmt.channels))
    return paths
