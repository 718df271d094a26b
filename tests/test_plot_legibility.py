"""Legible and truthful plots: bounded legends outside the axes on the shipped link
sweeps, SNR labels on quality-vs-CBR, quality-vs-BER only where the BER is the
video's, capacity limits that belong to the plotted channel, metric arrows from the
metric registry. Built from small synthetic summaries (no simulation)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from scipy.integrate import quad
from scipy.special import exp1

from lgvsc.link import theory
from lgvsc.link.channels import make_channel
from lgvsc.sim import figures
from lgvsc.sim.metrics import METRICS, Metric, axis_label
from lgvsc.sim.plots import MAX_PER_PANEL, _setup, plot_results, rate_figure
from lgvsc.sim.scenario import validate
from lgvsc.sim.schemes import SCHEMES
from lgvsc.sim.summary import FIELDS, scheme_objects, write_summary

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
LEGEND_MAX = 12


def _scenario(name: str, **channel):
    data = yaml.safe_load((SCENARIOS / name).read_text())
    data["channel"].update(channel)
    return validate(data, SCENARIOS)


def _link_rows(sc) -> list[dict]:
    """A measured point per scheme and SNR: errors at low SNR, none above 6 dB (so the
    zero-error bound is drawn too)."""
    rows = []
    for e in sc.schemes:
        for snr in sc.channel.snr_db:
            rate = 0.0 if snr > 6 else 10.0 ** (-1 - snr / 4)
            rows.append(dict(scheme=e["name"], type=e["type"], channel=sc.channel.type,
                             snr_db=float(snr), ber=rate, ber_lo=rate / 2, ber_hi=rate * 2 + 1e-4,
                             bler=min(1.0, rate * 10), bler_lo=rate,
                             bler_hi=min(1.0, rate * 20 + 1e-3)))
    return rows


def _drawn(fig):
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def _overlap(a, b) -> float:
    """Area (px^2) shared by two display bboxes."""
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(w, 0.0) * max(h, 0.0)


@pytest.fixture
def plt():
    p = _setup()
    yield p
    p.close("all")


@pytest.mark.parametrize("name", ["ber_awgn_ldpc.yaml", "ber_rayleigh.yaml", "ber_awgn_demo.yaml"])
@pytest.mark.parametrize("key", ["ber", "bler"])
def test_shipped_link_legends_are_short_and_outside_the_axes(plt, name, key):
    sc = _scenario(name)
    schemes = scheme_objects(sc)
    fig = rate_figure(plt, _link_rows(sc), key, sc, schemes)
    renderer = _drawn(fig)
    named = []
    for ax in fig.axes:
        legend = ax.get_legend()
        texts = [t.get_text() for t in legend.get_texts()]
        assert 0 < len(texts) <= LEGEND_MAX, texts
        assert _overlap(legend.get_window_extent(renderer), ax.get_window_extent(renderer)) == 0
        named += [t for t in texts if t in schemes]
    assert sorted(named) == sorted(schemes)  # every scheme in exactly one panel's legend
    assert max(len([t for t in ax.get_legend().get_texts() if t.get_text() in schemes])
               for ax in fig.axes) <= MAX_PER_PANEL


def test_the_big_sweep_is_split_by_modulation(plt):
    sc = _scenario("ber_awgn_ldpc.yaml")
    fig = rate_figure(plt, _link_rows(sc), "bler", sc, scheme_objects(sc))
    assert [ax.get_title(loc="left") for ax in fig.axes] == ["QPSK", "16-QAM", "64-QAM"]
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "paper 0dB 1/3 QPSK" in legend and "16QAM uncoded" not in legend
    assert "no errors seen: 95% upper bound" in legend
    assert "theory: normal approx., QAM input" in legend and "theory: exact" in legend


def test_a_crowded_modulation_gets_several_panels(plt):
    crowd = [{"name": f"QPSK k{k}", "type": "uncoded", "modulation": "qpsk", "k": k}
             for k in range(64, 64 * 11, 64)]
    sc = validate({"name": "crowd", "kind": "link",
                   "channel": {"type": "awgn", "snr_db": [0, 4, 8]},
                   "schemes": crowd + [{"name": "BPSK", "type": "uncoded", "modulation": "bpsk"}]})
    fig = rate_figure(plt, _link_rows(sc), "ber", sc, scheme_objects(sc))
    assert [ax.get_title(loc="left") for ax in fig.axes] == ["QPSK (1/2)", "QPSK (2/2)", "BPSK"]
    counts = [len(ax.get_legend().get_texts()) for ax in fig.axes]
    assert max(counts) <= LEGEND_MAX and counts[0] == MAX_PER_PANEL + 2  # + bound, theory


def test_plot_results_returns_every_file_it_writes(tmp_path):
    sc = _scenario("ber_awgn_demo.yaml")
    write_summary(tmp_path / "summary.csv", _link_rows(sc), FIELDS)
    paths = plot_results(tmp_path, sc)
    assert sorted(p.name for p in paths) == ["ber.pdf", "ber.png", "bler.pdf", "bler.png"]
    assert sorted(paths) == sorted((tmp_path / "plots").iterdir())


def _limit_lines(fig) -> list:
    return [ln for ax in fig.axes for ln in ax.get_lines() if "limit" in (ln.get_label() or "")]


def _legend_texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.get_legend().get_texts()]


def test_iid_rayleigh_bler_draws_the_ergodic_limit_not_the_awgn_one(plt):
    sc = _scenario("ber_rayleigh.yaml")
    schemes = scheme_objects(sc)
    fig = rate_figure(plt, _link_rows(sc), "bler", sc, schemes)
    lines = _limit_lines(fig)
    assert len(lines) == 2  # the two LDPC schemes
    for ln in lines:
        name = ln.get_label().split(":")[0]
        awgn = schemes[name].shannon_limit_db()
        x = ln.get_xdata()[0]
        assert "ergodic capacity limit, i.i.d. Rayleigh" in ln.get_label()
        assert x > awgn + 1.0 and x == pytest.approx(schemes[name]._limit_db("rayleigh"))
    assert not any("Shannon" in t for t in _legend_texts(fig) + [ln.get_label() for ln in lines])


@pytest.mark.parametrize("channel", [dict(type="rayleigh", coherence=16),
                                     dict(type="rician", k_factor=2.0)])
def test_fading_without_its_own_limit_labels_the_awgn_one_a_reference(plt, channel):
    sc = _scenario("ber_rayleigh.yaml", **channel)
    schemes = scheme_objects(sc)
    fig = rate_figure(plt, _link_rows(sc), "bler", sc, schemes)
    lines = _limit_lines(fig)
    assert lines
    for ln in lines:
        label = ln.get_label()
        name = label.split(":")[0]
        assert "AWGN Shannon limit" in label and "(reference)" in label
        assert ln.get_xdata()[0] == pytest.approx(schemes[name].shannon_limit_db())
        assert ln.get_linestyle() != ":"  # drawn unlike a channel's own limit
    shannon = [t for t in _legend_texts(fig) if "Shannon" in t]
    assert shannon and all(t.startswith("AWGN Shannon limit (reference)") for t in shannon)


def test_capacity_models_of_the_channels():
    assert make_channel("awgn").capacity_model() == "awgn"
    assert make_channel("rayleigh", coherence=1).capacity_model() == "rayleigh"
    assert make_channel("rayleigh", coherence=4).capacity_model() is None
    assert make_channel("rician", k_factor=1.0).capacity_model() is None


@pytest.mark.parametrize("snr_db", [-10.0, 0.0, 10.0, 30.0])
def test_ergodic_rayleigh_capacity_gaussian_input_closed_form(snr_db):
    s = 10 ** (snr_db / 10)
    exact = math.log2(math.e) * math.exp(1 / s) * exp1(1 / s)
    assert theory.capacity_rayleigh(snr_db) == pytest.approx(exact, rel=1e-4)


def test_ergodic_rayleigh_capacity_qpsk_by_direct_integration():
    snr_db = 5.0

    def inner(g):
        return theory.capacity(10 * math.log10(g) + snr_db, "qpsk") * math.exp(-g) if g > 0 else 0.0

    direct = quad(inner, 0, 40, limit=200, points=[0.01, 0.1, 1.0])[0]
    assert theory.capacity_rayleigh(snr_db, "qpsk") == pytest.approx(direct, abs=1e-4)
    eta = 1.0  # rate 1/2 QPSK: the ergodic limit needs more SNR than the AWGN one
    lim = theory.shannon_limit_db(0.5, "qpsk", channel="rayleigh")
    assert theory.capacity_rayleigh(lim, "qpsk") == pytest.approx(eta, abs=1e-3)
    assert lim > theory.shannon_limit_db(0.5, "qpsk") + 1.0


# -- video figures ---------------------------------------------------------------------
VIDEO = {
    "name": "legible", "kind": "video", "seed": 1,
    "videos": [{"source": "synthetic:pan", "frames": 8, "size": [64, 64]}],
    "channel": {"type": "awgn", "snr_db": [2, 6, 10]},
    "schemes": [
        {"name": "H.264+LDPC", "type": "codec-ldpc", "codec": "h264", "qp": 40, "gop": 4,
         "rate": 0.5, "modulation": "qam16"},
        {"name": "SoftCast", "type": "softcast", "target_cbr": 2.0e-3, "gop": 4},
        {"name": "SKIM+SFA", "type": "lgvsc", "preset": "skim-sfa", "target_cbr": 2.0e-2,
         "keyframes": 2},
    ],
    "monte_carlo": {"trials": 1},
    "metrics": ["psnr", "ssim"],
}
CBR = {"H.264+LDPC": 5e-2, "SoftCast": 2e-3, "SKIM+SFA": 2e-2}


def _video_rows(names) -> list[dict]:
    rows = []
    for i, name in enumerate(names):
        for snr in (2.0, 6.0, 10.0):
            q = 10 + 2 * i + snr
            rows.append(dict(scheme=name, snr_db=snr, outage=0.0, failed_trials=0, trials=1,
                             videos=1, videos_ok=1, trials_ok=1,
                             cbr=CBR[name], psnr=q, psnr_lo=q - 1, psnr_hi=q + 1, ssim=q / 40,
                             ssim_lo=q / 41, ssim_hi=q / 39, raw_ber=10 ** (-snr / 3),
                             ber=0.0))
    return rows


@pytest.fixture
def captured(monkeypatch):
    """{stem: figure} of every figure :mod:`lgvsc.sim.figures` saves (kept open)."""
    figs = {}

    def keep(fig, out_dir, stem):
        figs[stem] = fig
        return [Path(out_dir) / f"{stem}.png"]

    monkeypatch.setattr(figures, "save_figure", keep)
    yield figs
    _setup().close("all")


def test_quality_vs_cbr_labels_every_point_with_its_snr(tmp_path, captured):
    names = list(CBR)
    figures.quality_vs_cbr(_video_rows(names), names, ["psnr"], tmp_path, "t", "drop")
    fig = captured["quality_vs_cbr_psnr"]
    renderer = _drawn(fig)
    ax = fig.axes[0]
    labels = [t for t in ax.texts if t.get_gid() == "snr-label"]
    assert sorted(t.get_text() for t in labels) == sorted(["2 dB", "6 dB", "10 dB"] * 3)
    rows = {(r["scheme"], r["snr_db"]): r for r in _video_rows(names)}
    assert [t.get_text() for t in ax.get_legend().get_texts()] == names
    colors = {c.get_label(): c.lines[0].get_color() for c in ax.containers}  # the scheme lines
    for t in labels:
        x, y = t.xy
        name = next(n for n in names if CBR[n] == x)
        assert y == rows[(name, float(t.get_text().split()[0]))]["psnr"]
        assert t.get_color() == colors[name]
        # beside the vertical line of its scheme (one CBR), never across it
        box = t.get_window_extent(renderer)
        line_x = ax.transData.transform((x, y))[0]
        assert not box.x0 <= line_x <= box.x1
    legend = ax.get_legend().get_window_extent(renderer)
    assert _overlap(legend, ax.get_window_extent(renderer)) == 0


def test_quality_vs_ber_only_for_schemes_whose_ber_is_the_video(tmp_path, captured):
    sc = validate(VIDEO)
    ber_of = figures.measured_ber(sc)
    names = [e["name"] for e in sc.schemes]
    paths = figures.quality_vs_ber(_video_rows(names), names, ["psnr"], tmp_path, "t", "drop",
                                   ber_of)
    assert [p.name for p in paths] == ["quality_vs_ber_psnr.png"]
    fig = captured["quality_vs_ber_psnr"]
    drawn = {ln.get_label() for ax in fig.axes for ln in ax.get_lines()
             if not ln.get_label().startswith("_")}
    assert drawn == {"H.264+LDPC"}
    note = " ".join(t.get_text() for t in fig.texts).replace("\n", " ")
    assert "BER of the video payload (H.264+LDPC): the H.26x bitstream" in note
    assert "SoftCast: the chunk metadata" in note and "SKIM+SFA: captions, side info" in note
    assert fig.axes[0].get_ylabel() == "PSNR [dB] \u2191"


def test_quality_vs_ber_is_not_written_when_no_scheme_qualifies(tmp_path):
    sc = validate({**VIDEO, "schemes": VIDEO["schemes"][1:]})
    names = [e["name"] for e in sc.schemes]
    out = tmp_path / "plots"
    out.mkdir()
    paths = figures.video_figures(_video_rows(names), sc, out)
    assert not list(out.glob("quality_vs_ber_*")) and paths
    assert {p.name for p in out.iterdir()} <= {p.name for p in paths}
    assert (out / "quality_vs_cbr_psnr.png").is_file()


def test_each_video_scheme_says_what_its_ber_is_of():
    video = {n: SCHEMES.get(n).measured_ber for n in SCHEMES.names()
             if SCHEMES.get(n).kind == "video"}
    assert video["codec-ldpc"].video
    for name in ("softcast", "lgvsc", "text-only", "keyframe-jscc"):
        assert not video[name].video and video[name].part


class _LowerIsBetter(Metric):
    higher_is_better = False
    unit = "au"


def test_metric_arrows_come_from_the_metric_registry(tmp_path, captured, monkeypatch):
    monkeypatch.setitem(METRICS._items, "fakeloss", _LowerIsBetter)
    assert axis_label("fakeloss") == "FAKELOSS [au] \u2193"
    names = ["SoftCast"]
    rows = [dict(r, fakeloss=r["psnr"]) for r in _video_rows(names)]
    figures.fig3(rows, names, ["fakeloss", "psnr"], tmp_path, "t", "drop")
    assert captured["fig3_fakeloss"].axes[0].get_ylabel() == "FAKELOSS [au] \u2193"
    assert captured["fig3_psnr"].axes[0].get_ylabel() == "PSNR [dB] \u2191"
    figures.quality_vs_cbr(rows, names, ["fakeloss"], tmp_path, "t", "drop")
    assert captured["quality_vs_cbr_fakeloss"].axes[0].get_ylabel() == "FAKELOSS [au] \u2193"
    figures.quality_table(rows, names,
                          ["fakeloss", "psnr"], tmp_path / "plots", "drop")
    header = (tmp_path / "quality_table.md").read_text().splitlines()[0]
    assert "| FAKELOSS [au] \u2193 | PSNR [dB] \u2191 |" in header
    assert axis_label("lpips").endswith("\u2193") and axis_label("ssim") == "SSIM \u2191"
    assert "LOWER_IS_BETTER" not in vars(figures)  # no list of its own to forget a metric in
