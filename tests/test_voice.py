import numpy as np
import soxr

from langsort import synth, voice


def at_vad_rate(samples):
    return soxr.resample(samples, synth.ESPEAK_RATE, voice.VAD_RATE)


def test_speech_scores_high_and_music_and_hiss_low(speech_cache):
    rng = np.random.default_rng(0)
    speech = at_vad_rate(speech_cache("maya", 6.0))[voice.VAD_RATE : voice.VAD_RATE * 5 // 2]  # 1.5 s
    music = at_vad_rate(synth.music(1.5, rng))
    hiss = 0.05 * rng.standard_normal(voice.VAD_RATE * 3 // 2).astype(np.float32)
    assert voice.speech_shares([speech], voice.VAD_RATE)[0] >= 0.5
    assert voice.speech_shares([music], voice.VAD_RATE)[0] < 0.2
    assert voice.speech_shares([hiss], voice.VAD_RATE)[0] < 0.2


def test_other_rates_are_resampled_and_tiny_excerpts_score_zero(speech_cache):
    speech = speech_cache("spanish", 4.0)[synth.ESPEAK_RATE : synth.ESPEAK_RATE * 5 // 2]
    assert voice.speech_shares([speech], synth.ESPEAK_RATE)[0] >= 0.5
    assert voice.speech_shares([np.zeros(100, np.float32)], voice.VAD_RATE)[0] == 0.0


def test_loudest_excerpt_finds_the_loud_part():
    energy = np.full(500, -60.0)
    energy[300:360] = -10.0
    start, end = voice.loudest_excerpt(energy, 50)
    assert 300 <= start and end <= 360 and end - start == 50
    assert voice.loudest_excerpt(energy[:30], 50) == (0, 30)


def test_excerpts_scored_together_score_as_they_do_alone(speech_cache):
    rng = np.random.default_rng(1)
    speech = at_vad_rate(speech_cache("spanish", 4.0))
    excerpts = [speech[: voice.VAD_RATE * 3 // 2], at_vad_rate(synth.music(1.0, rng)), speech[: voice.WINDOW * 3],
                np.zeros(10, np.float32)]
    alone = [voice.speech_shares([e], voice.VAD_RATE)[0] for e in excerpts]
    together = voice.speech_shares(excerpts, voice.VAD_RATE, batch=3)
    assert together == alone
    assert alone[0] >= 0.5 and alone[1] < 0.2 and alone[3] == 0.0


def test_settled_scores_decide_as_full_scores_at_every_threshold(speech_cache):
    rng = np.random.default_rng(2)
    speech = at_vad_rate(speech_cache("maya", 8.0))
    excerpts = [speech[i * 4000 : i * 4000 + 12000] for i in range(10)]
    excerpts += [at_vad_rate(synth.music(1.5, rng)) for _ in range(3)]
    excerpts += [0.05 * rng.standard_normal(12000).astype(np.float32), speech[: voice.WINDOW * 2]]
    full = voice.speech_shares(excerpts, voice.VAD_RATE)
    assert min(full) < 0.3 < max(full)
    for threshold in (0.05, 0.3, 0.6, 0.9, 1.0):
        settled = voice.speech_shares(excerpts, voice.VAD_RATE, settle_at=threshold)
        assert [s >= threshold for s in settled] == [s >= threshold for s in full], threshold
