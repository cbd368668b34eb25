import numpy as np

from langsort.timeline import (TimelineParams, language_shares, languages_present, segments, smooth,
                               windows_of_clip)


def windows(spec: list[tuple[float, float, float | np.ndarray]]):
    """[(start, end, p)] -> starts, ends, probs: p is label 0's probability of two labels, or
    every label's."""
    starts = np.array([s for s, _, _ in spec])
    ends = np.array([e for _, e, _ in spec])
    probs = np.array([[p, 1 - p] if np.isscalar(p) else p for _, _, p in spec], np.float64)
    return starts, ends, probs


def steady(start: float, end: float, p0: float, step: float = 2.0):
    edges = np.arange(start, end + 1e-9, step)
    return [(a, b, p0) for a, b in zip(edges[:-1], edges[1:])]


def test_one_short_confident_window_does_not_split_a_monolingual_recording():
    spec = steady(0, 30, 0.8)
    spec[7] = (14.0, 16.0, 0.02)  # two seconds, as sure as a window can be, of the other language
    found = segments(*windows(spec))
    assert [(s.start_s, s.end_s, s.language) for s in found] == [(0.0, 30.0, 0)]


def test_sustained_evidence_switches_language_near_the_true_boundary():
    spec = steady(0, 20, 0.85) + steady(20, 40, 0.2) + steady(40, 56, 0.9)
    found = segments(*windows(spec))
    assert [s.language for s in found] == [0, 1, 0]
    assert abs(found[0].end_s - 20) <= 2 and abs(found[1].end_s - 40) <= 2
    assert all(a.end_s <= b.start_s for a, b in zip(found, found[1:]))


def test_three_languages_each_need_sustained_evidence_and_share_the_speech():
    """A trilingual recording (0, then 2, then 1) with one confident window of language 1 inside
    language 0's stretch: three segments, near the true changes, and the stray window ignored."""
    def stretch(start, end, language, p=0.8):
        return [(a, b, np.roll([p, (1 - p) / 2, (1 - p) / 2], language)) for a, b, _ in steady(start, end, 0.0)]

    spec = stretch(0, 20, 0) + stretch(20, 36, 2) + stretch(36, 50, 1)
    spec[4] = (8.0, 10.0, np.array([0.01, 0.98, 0.01]))
    found = segments(*windows(spec))
    assert [s.language for s in found] == [0, 2, 1]
    assert abs(found[0].end_s - 20) <= 2 and abs(found[1].end_s - 36) <= 2
    shares = language_shares(found, 3)
    np.testing.assert_allclose(shares, np.array([20, 14, 16]) / 50, atol=2 / 50)
    assert languages_present(shares, ["maya", "nahuatl", "spanish"], 0.1) == ["maya", "spanish", "nahuatl"]


def test_a_boundary_snaps_to_a_pause():
    # the evidence turns a window early; the pause between clips sits at 21.5 s
    spec = steady(0, 18, 0.9) + [(18.0, 20.0, 0.6), (20.0, 21.5, 0.3)] + steady(22.5, 40.5, 0.1)
    found = segments(*windows(spec))
    assert [s.language for s in found] == [0, 1]
    assert found[0].end_s == 21.5 and found[1].start_s == 22.5


def test_a_boundary_moves_to_the_pause_that_splits_the_evidence_not_the_longest():
    # language 0 until 20 s, then 1; a long sentence pause at 18 s, the turn's shorter pause at 20 s
    spec = steady(0, 20, 0.9) + steady(20, 30, 0.1)
    pauses = np.array([[17.5, 18.5], [19.8, 20.2]])
    found = segments(*windows(spec), TimelineParams(), pauses)
    assert [s.language for s in found] == [0, 1]
    assert found[0].end_s == found[1].start_s == 20.0


def test_a_pause_cut_by_a_clip_edge_counts_whole():
    # two touching clips; the pause at the turn is split by their edge, 0.3 s on each side
    spec = steady(0, 20, 0.9) + steady(20, 30, 0.1)
    pauses = np.array([[17.0, 17.5], [19.7, 20.0], [20.0, 20.3]])
    found = segments(*windows(spec), TimelineParams(), pauses)
    assert found[0].end_s == found[1].start_s == 20.0


def test_a_change_across_long_silence_stays_in_the_silence():
    # 4 s of silence between the languages; the next clip opens with an unsure second and a
    # pause that would split the evidence a little better, but lies beyond the silence
    spec = steady(0, 10, 0.9) + [(14.0, 15.0, 0.6)] + steady(15.2, 25.2, 0.1)
    found = segments(*windows(spec), TimelineParams(), np.array([[15.0, 15.2]]))
    assert [(s.start_s, s.end_s, s.language) for s in found] == [(0.0, 10.0, 0), (14.0, 25.2, 1)]


def test_long_silence_ends_a_segment_of_the_same_language():
    spec = steady(0, 10, 0.9) + steady(30, 40, 0.9)
    found = segments(*windows(spec), TimelineParams(merge_gap_seconds=3.0))
    assert [(s.start_s, s.end_s) for s in found] == [(0.0, 10.0), (30.0, 40.0)]
    assert all(s.language == 0 for s in found)


def test_segment_probabilities_are_duration_weighted_means():
    found = segments(*windows([(0, 3, 0.9), (3, 4, 0.6)]))
    np.testing.assert_allclose(found[0].probabilities, [(3 * 0.9 + 0.6) / 4, 1 - (3 * 0.9 + 0.6) / 4])


def test_shares_languages_and_mixed_threshold():
    spec = steady(0, 36, 0.9) + steady(36, 40, 0.05)
    found = segments(*windows(spec), TimelineParams(switch_cost=2.0))
    shares = language_shares(found, 2)
    np.testing.assert_allclose(shares, [0.9, 0.1])
    assert languages_present(shares, ["maya", "spanish"], 0.1) == ["maya", "spanish"]
    assert languages_present(shares, ["maya", "spanish"], 0.2) == ["maya"]


def test_unsure_segments_hold_no_language_but_count_as_speech():
    """A stretch near 50/50 is speech with no language: it cannot make the file mixed."""
    spec = steady(0, 30, 0.9) + steady(30, 40, 0.45)
    found = segments(*windows(spec), TimelineParams(switch_cost=2.0))
    assert [s.language for s in found] == [0, 1]
    np.testing.assert_allclose(language_shares(found, 2), [0.75, 0.25])
    np.testing.assert_allclose(language_shares(found, 2, threshold=0.6), [0.75, 0.0])
    assert languages_present(language_shares(found, 2, threshold=0.6), ["maya", "spanish"], 0.1) == ["maya"]


def test_windows_of_a_clip_split_it_evenly_and_viterbi_handles_one_window():
    cut = windows_of_clip(3.0, 9.0, np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]]))
    assert [(a, b) for a, b, _ in cut] == [(3.0, 5.0), (5.0, 7.0), (7.0, 9.0)]
    assert list(smooth(np.array([0.0]), np.array([2.0]), np.array([[0.3, 0.7]]))) == [1]


def test_windows_follow_the_columns_measured_centres():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]])
    cut = windows_of_clip(0.0, 10.0, probs, centres=(0.3, 0.5, 0.7))
    np.testing.assert_allclose([(a, b) for a, b, _ in cut], [(0, 4), (4, 6), (6, 10)])
    assert [(a, b) for a, b, _ in windows_of_clip(0.0, 9.0, probs, centres=(0.5,))] == [(0, 3), (3, 6), (6, 9)]
