import numpy as np
import pytest

from langsort.segment import ClipCutter, SegmentParams, divide, speech_mask

RATE = 100.0  # frames per second


def cut(mask: np.ndarray, params=SegmentParams(), block: int = 3000):
    cutter = ClipCutter(params, RATE)
    clips = []
    for i in range(0, len(mask), block):
        clips += cutter.push(mask[i : i + block])
    return clips + cutter.finish(), cutter


def lengths_s(clips):
    return [(e - s) / RATE for s, e in clips]


@pytest.mark.parametrize("seconds", [3.0, 7.5, 15.0, 15.01, 29.9, 30.0, 44.0, 100.0, 3601.0])
def test_divide_keeps_every_clip_within_limits_and_covers_the_stretch(seconds):
    frames = round(seconds * RATE)
    clips = divide(0, frames, 300, 1500)
    assert all(3.0 <= n <= 15.0 for n in lengths_s(clips))
    assert clips[0][0] == 0 and clips[-1][1] == frames
    assert all(a[1] == b[0] for a, b in zip(clips, clips[1:]))


def test_divide_cuts_at_the_longest_pause_that_keeps_clips_within_limits():
    # 40 s with pauses at 6 s (0.3 s), 11 s (0.9 s, the longest) and 38.5 s (too near the end)
    pauses = [(600, 630), (1055, 1145), (3840, 3860)]
    clips = divide(0, 4000, 300, 1500, pauses)
    assert clips[0] == (0, 1100)
    assert all(3.0 <= n <= 15.0 for n in lengths_s(clips)) and clips[-1][1] == 4000
    assert all(a[1] == b[0] for a, b in zip(clips, clips[1:]))


def test_the_cutter_ends_clips_in_a_bridged_pause_whatever_the_block_size():
    """A speaker turn (0.8 s of silence, bridged) 8 s into 25 s of speech: the clip ends
    there rather than in the middle of the stretch, where a change of language would be
    inside a clip."""
    mask = np.zeros(3000, bool)
    mask[100:900] = mask[980:2600] = True
    for block in (3000, 777, 50):
        clips, _ = cut(mask, block=block)
        assert any(end == 940 for _, end in clips), (block, clips)


def test_divide_drops_stretches_below_the_minimum():
    assert divide(0, 299, 300, 1500) == []


def test_divide_with_narrow_limits_uses_max_length_clips():
    # 9 s with clips of 5-8 s cannot be split evenly: one 8 s clip, the tail dropped
    assert divide(0, 900, 500, 800) == [(0, 800)]


def test_leading_trailing_and_long_internal_silence_never_become_clips():
    mask = np.zeros(6000, bool)
    mask[500:1500] = True  # 10 s of speech after 5 s of silence
    mask[1550:1700] = True  # a 0.5 s pause is bridged
    mask[2200:2900] = True  # after 5 s of silence: a new stretch of 7 s
    clips, _ = cut(mask)
    pad = 15  # 0.15 s kept around speech
    assert clips == [(500 - pad, 1700 + pad), (2200 - pad, 2900 + pad)]


def test_a_fragment_too_short_for_a_clip_joins_the_speech_next_to_it():
    mask = np.zeros(6000, bool)
    mask[500:1200] = True  # 7 s
    mask[1350:1500] = True  # 1.5 s after a 1.5 s pause: joins the stretch before
    mask[3000:3100] = True  # 1 s fragment, 1.5 s before a 5 s stretch: joins it
    mask[3250:3750] = True
    clips, cutter = cut(mask)
    assert clips == [(485, 1515), (2985, 3765)] and cutter.longest_dropped == 0


def test_a_stretch_too_short_is_dropped_and_remembered():
    mask = np.zeros(1000, bool)
    mask[100:300] = True
    clips, cutter = cut(mask)
    assert clips == [] and cutter.longest_dropped == 200


def test_continuous_speech_of_an_hour_streams_in_bounded_clips():
    mask = np.ones(360_000, bool)
    clips, cutter = cut(mask)
    assert all(3.0 <= n <= 15.0 for n in lengths_s(clips))
    assert sum(e - s for s, e in clips) == 360_000


def test_block_size_does_not_change_the_clips():
    rng = np.random.default_rng(3)
    mask = np.repeat(rng.random(600) < 0.7, 50)  # 0.5 s pieces, 5 min
    assert cut(mask, block=3000)[0] == cut(mask, block=777)[0]


def test_speech_mask_ignores_silence_and_steady_hiss_but_finds_speech_over_hiss():
    params = SegmentParams()
    assert not speech_mask(np.full(1000, -100.0), params).any()  # digital silence
    hiss = np.random.default_rng(0).normal(-35.0, 1.0, 3000)
    assert speech_mask(hiss, params).mean() < 0.01
    speech = hiss.copy()
    speech[1000:2000] = -12.0
    mask = speech_mask(speech, params)
    assert mask[1000:2000].all() and mask[:1000].mean() < 0.01


def test_invalid_limits_are_refused_at_construction():
    with pytest.raises(ValueError, match="min_seconds"):
        SegmentParams(min_seconds=10, max_seconds=5)
