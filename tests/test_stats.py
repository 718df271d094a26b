"""Intervals that respect the experiment's structure (lgvsc.sim.stats, summaries)."""

import math

import numpy as np
import pytest
from scipy.stats import binom
from scipy.stats import t as student_t

from conftest import small_link_scenario
from lgvsc.link import theory
from lgvsc.sim.scenario import validate
from lgvsc.sim.stats import (cluster_mean, clopper_pearson, clustered_proportion_ci,
                             design_effect, paired_difference)
from lgvsc.sim.summary import shown, summarize_link, summarize_video
from lgvsc.sim.units import plan_units, run_link_unit


def test_clopper_pearson_integer_and_effective_counts_agree():
    assert clopper_pearson(3, 10) == pytest.approx(clopper_pearson(3.0 + 1e-12, 10.0), abs=1e-9)
    lo, hi = clopper_pearson(0, 20)
    assert lo == 0 and hi == pytest.approx(1 - 0.025 ** (1 / 20))
    assert all(math.isnan(b) for b in clopper_pearson(0, 0))


def test_cluster_interval_is_as_wide_as_the_between_video_spread():
    # 5 videos, 4 identical trials each (the codec above its cliff): the naive i.i.d.
    # interval over 20 values is too narrow; the per-video interval is the t interval
    # of the 5 video means, exactly
    means = np.array([20.0, 23.0, 26.0, 21.0, 30.0])
    data = {f"v{i}": [m] * 4 for i, m in enumerate(means)}
    e = cluster_mean(data, bounds=(0, 100))
    half = student_t.ppf(0.975, 4) * means.std(ddof=1) / math.sqrt(5)
    assert e.over == "videos" and e.videos == 5 and e.trials == 20
    assert e.mean == pytest.approx(means.mean())
    assert e.hi - e.lo == pytest.approx(2 * half)
    pooled = np.repeat(means, 4)
    naive = 2 * student_t.ppf(0.975, 19) * pooled.std(ddof=1) / math.sqrt(20)
    assert e.hi - e.lo > 2 * naive  # the old interval was less than half as wide


def test_intervals_never_leave_the_metric_range():
    e = cluster_mean({"a": [0.99], "b": [0.4], "c": [0.98]}, bounds=(-1.0, 1.0))
    assert e.hi == 1.0 and -1.0 <= e.lo < e.mean
    e = cluster_mean({"a": [1.0, 90.0]}, bounds=(0.0, 100.0))  # one video: over its trials
    assert e.over == "trials" and e.lo == 0.0 and e.hi == 100.0
    e = cluster_mean({"a": [0.5], "b": [0.5]}, bounds=(0, 1))
    assert (e.lo, e.hi) == (0.5, 0.5)
    b = cluster_mean({f"v{i}": [x] for i, x in enumerate([0.9, 0.95, 0.97, 0.99, 0.999])},
                     method="bootstrap", bounds=(0.0, 1.0))
    assert b.hi <= 1.0 and b.lo <= b.mean <= b.hi


def test_single_value_has_no_interval_and_empty_is_empty():
    e = cluster_mean({"a": [3.0]})
    assert e.mean == 3.0 and math.isnan(e.lo) and e.over == ""
    e = cluster_mean({"a": [None, float("nan")]})
    assert e.videos == 0 and math.isnan(e.mean)


def test_paired_difference_has_the_known_answer():
    # strong video effects (0..40 dB), scheme A = B + 0.5 dB + small noise: the paired
    # interval is tight around 0.5 although the schemes' own intervals overlap widely
    rng = np.random.default_rng(4)
    base = {f"v{i}": 40.0 * i / 9 for i in range(10)}
    a = {v: list(m + 0.5 + rng.normal(0, 0.05, 3)) for v, m in base.items()}
    b = {v: list(m + rng.normal(0, 0.05, 3)) for v, m in base.items()}
    d, wins = paired_difference(a, b)
    assert d.over == "videos" and d.videos == 10 and wins == 10
    assert d.lo < 0.5 < d.hi and d.hi - d.lo < 0.2
    ea, eb = cluster_mean(a), cluster_mean(b)
    assert ea.lo < eb.hi  # unpaired intervals overlap: no claim possible without pairing
    # one shared video: Welch over the trials
    d1, w1 = paired_difference({"v": [1.0, 1.2, 1.1]}, {"v": [0.0, 0.2, 0.1], "w": [5.0]})
    assert d1.over == "trials" and d1.mean == pytest.approx(1.0) and d1.lo < 1.0 < d1.hi
    assert w1 == 1
    assert math.isnan(paired_difference({"v": [1.0]}, {"w": [1.0]})[0].mean)


def test_design_effect_and_clustered_proportion():
    # all-or-nothing clusters: deff = cluster size, the interval is that of 4 clusters
    k, n = np.array([0, 5, 0, 5]), np.array([5, 5, 5, 5])
    assert design_effect(k, n) == pytest.approx(20 / 3)  # above the cap of 5 (cluster size)
    n_eff, lo, hi = clustered_proportion_ci(k, n)
    assert n_eff == pytest.approx(4.0) and (lo, hi) == pytest.approx(clopper_pearson(2, 4))
    # independent-looking clusters: deff floors at 1 -> plain Clopper-Pearson
    n_eff, lo, hi = clustered_proportion_ci([1, 1, 1, 1], [4, 4, 4, 4])
    assert n_eff == 16 and (lo, hi) == pytest.approx(clopper_pearson(4, 16))
    # nothing failed: Korn-Graubard's deff = 1, or one count per cluster if asked
    assert clustered_proportion_ci([0, 0], [3, 3])[0] == 6
    assert clustered_proportion_ci([0, 0], [3, 3], unknown_deff="cluster")[0] == 2


def test_ber_interval_covers_the_truth_on_block_fading():
    # Uncoded QPSK on Rayleigh block fading, one fade per 32-symbol block: bit errors come
    # in bursts. Over R independent replications a 95% interval must cover the exact BER
    # about 95% of the time; the bound below fails a correct method with probability 1e-3.
    # Clopper-Pearson over bits (the old interval) covered it about half the time.
    reps, snr = 100, 10.0
    truth = float(theory.ber_uncoded("qpsk", np.array([snr]), "rayleigh")[0])
    covered = naive = 0
    for rep in range(reps):
        sc = validate(small_link_scenario(
            seed=rep, channel={"type": "rayleigh", "coherence": 32, "snr_db": [snr]},
            schemes=[{"name": "u", "type": "uncoded", "modulation": "qpsk", "k": 64}],
            monte_carlo={"batch_blocks": 50, "max_batches": 2, "target_block_errors": None}))
        blob = sc.model_dump_json()
        row = summarize_link(sc, [run_link_unit(blob, u) for u in plan_units(sc)])[0]
        assert row["ber_ci_over"] == "blocks"
        covered += row["ber_lo"] <= truth <= row["ber_hi"]
        lo, hi = clopper_pearson(row["bit_errors"], row["bits"])
        naive += lo <= truth <= hi
    floor = binom.ppf(1e-3, reps, 0.95)
    assert covered >= floor, (covered, floor)
    assert naive < floor  # the test can tell a wrong interval from a right one


def test_awgn_uncoded_qpsk_keeps_the_exact_bit_interval():
    sc = validate(small_link_scenario(schemes=[
        {"name": "u", "type": "uncoded", "modulation": "qpsk", "k": 64},
        {"name": "q", "type": "uncoded", "modulation": "qam16", "k": 64}]))
    blob = sc.model_dump_json()
    rows = summarize_link(sc, [run_link_unit(blob, u) for u in plan_units(sc)])
    over = {(r["scheme"], r["snr_db"]): r["ber_ci_over"] for r in rows}
    assert over[("u", 2.0)] == "bits" and over[("q", 2.0)] == "blocks"
    r = next(r for r in rows if r["scheme"] == "u" and r["snr_db"] == 2.0)
    assert (r["ber_lo"], r["ber_hi"]) == pytest.approx(clopper_pearson(r["bit_errors"], r["bits"]))


def _video_rows(cells):
    """Stored-row stand-ins: cells = {(video, trial): (failed, psnr)}."""
    rows = []
    for (video, trial), (failed, psnr) in cells.items():
        rows.append(dict(scheme="S", snr_db=4.0, video=video, trial=trial, failed=int(failed),
                         metrics={"psnr": psnr, "cbr": 1e-3}, extra={"failed_parts":
                         ["bitstream"] if failed else []}, bits=100, bit_errors=0, blocks=1,
                         block_errors=int(failed), raw_bits=200, raw_bit_errors=0,
                         channel_uses=100, wall_s=0.1))
    return rows


def _video_scenario(failure="drop"):
    return validate({"name": "t", "kind": "video", "failure": failure,
                     "videos": [{"source": "synthetic:pan", "name": "a"},
                                {"source": "synthetic:pan", "name": "b"}],
                     "channel": {"type": "awgn", "snr_db": [4.0]},
                     "schemes": [{"name": "S", "type": "softcast", "target_cbr": 1e-3}],
                     "metrics": ["psnr"], "monte_carlo": {"trials": 2}})


def test_mixed_cell_reports_outage_and_the_conditional_mean():
    # video a: one trial fails (concealed output scores 8 dB), one succeeds at 30 dB;
    # video b: both succeed at 20 and 22 dB
    rows = _video_rows({("a", 0): (True, 8.0), ("a", 1): (False, 30.0),
                        ("b", 0): (False, 20.0), ("b", 1): (False, 22.0)})
    r = summarize_video(_video_scenario(), rows)[0]
    assert r["failed_trials"] == 1 and r["trials"] == 4 and r["outage"] == 0.25
    assert r["outage_lo"] < 0.25 < r["outage_hi"] and r["failed_parts"] == "bitstream:1"
    assert r["psnr"] == pytest.approx((30.0 + 21.0) / 2)  # per-video means of successes
    assert r["psnr_concealed"] == pytest.approx((19.0 + 21.0) / 2)
    assert r["videos_ok"] == 2 and r["trials_ok"] == 3 and r["ci_over_ok"] == "videos"
    assert shown(r, "psnr", "drop")[0] == r["psnr"] and shown(r, "psnr", "drop")[3]
    r2 = summarize_video(_video_scenario("conceal"), rows)[0]
    assert shown(r2, "psnr", "conceal")[0] == r["psnr_concealed"]


def test_failed_cell_has_outage_one_and_no_quality():
    rows = _video_rows({("a", 0): (True, 11.6), ("a", 1): (True, 11.6),
                        ("b", 0): (True, 11.6), ("b", 1): (True, 11.6)})
    r = summarize_video(_video_scenario(), rows)[0]
    assert r["outage"] == 1.0 and r["outage_hi"] == 1.0 and r["outage_lo"] > 0
    assert math.isnan(r["psnr"]) and r["videos_ok"] == 0
    assert shown(r, "psnr", "drop")[0] is None
    assert r["psnr_concealed"] == pytest.approx(11.6)
