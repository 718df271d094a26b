"""``report.html``: every reference exists, text is escaped, failed cells show "–",
nothing points outside the results folder; and (``-m browser``) headless Chromium
renders it with every image and video loaded."""

import html
import json
import re
import shutil
import subprocess
from fractions import Fraction
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote, unquote, urlparse

import numpy as np
import pytest

from conftest import small_link_scenario
from lgvsc.sim.cli import main
from lgvsc.sim.html_report import REPORT_NAME, plot_caption, render, write_report
from lgvsc.sim.runner import finalize, run, stored_results
from lgvsc.sim.scenario import validate

DASH = "\u2013"
H264, SOFT = "H.264+LDPC <x>", "SoftCast & co"
VIDEO = "synthetic-pan"


def _scenario() -> dict:
    return {
        "name": "t-report", "kind": "video", "seed": 3, "description": "a <b>tiny</b> run",
        "videos": [{"source": "synthetic:pan", "frames": 8, "size": [64, 64]}],
        "channel": {"type": "awgn", "snr_db": [2, 10]},
        "schemes": [  # 16-QAM rate 1/2 fails at 2 dB (every trial: "–")
            {"name": H264, "type": "codec-ldpc", "codec": "h264", "qp": 35, "gop": 4,
             "rate": 0.5, "modulation": "qam16"},
            {"name": SOFT, "type": "softcast", "target_cbr": 2e-3, "gop": 4},
        ],
        "monte_carlo": {"trials": 1},
        "metrics": ["psnr", "ssim"],
    }


def write_mp4(path: Path, frames: int = 6, size: int = 64) -> None:
    """A tiny H.264 (libx264, yuv420p) mp4, as the runner saves them."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as box:
        stream = box.add_stream("libx264", rate=Fraction(10))
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            img = np.full((size, size, 3), 20 * i, np.uint8)
            img[:, : size // 2, 0] = 200
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                box.mux(packet)
        for packet in stream.encode():
            box.mux(packet)


def _item(path, scheme=None, snr=None, trial=None, failed=False, failure=None, kind="video"):
    return dict(kind=kind, path=path, video=VIDEO, scheme=scheme, snr_db=snr, trial=trial,
                frame=None, failed=failed, failure=failure)


def fake_media(out: Path) -> list[dict]:
    """``media/index.json`` with the original, a failed and a good received video and
    one listed video whose file is missing; returns its items."""
    items = [_item(f"media/{VIDEO}/SoftCast___co/10dB_t0.mp4", SOFT, 10.0, 0),
             _item(f"media/{VIDEO}/H.264+LDPC__x_/2dB_t0.mp4", H264, 2.0, 0, True,
                   "bitstream: 2 of 2 code blocks failed their CRC"),
             _item(f"media/{VIDEO}/SoftCast___co/2dB_t0.mp4", SOFT, 2.0, 0),  # missing
             _item(f"media/{VIDEO}/original/original.mp4"),
             _item(f"media/{VIDEO}/original/f00000.png", kind="frame")]
    for it in items[:2] + items[3:4]:
        write_mp4(out / it["path"])
    (out / items[2]["path"]).unlink(missing_ok=True)
    (out / "media" / "index.json").write_text(json.dumps({"version": 1, "items": items}))
    return items


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A tiny video run (seconds) with fake saved videos, its report rewritten."""
    tmp = tmp_path_factory.mktemp("report")
    sc = validate(_scenario(), base_dir=tmp)  # an absolute base_dir must not leak
    out = run(sc, tmp / "results" / "t-report", progress=False)
    return _with_fake_media(out)


def _with_fake_media(out: Path) -> Path:
    fake_media(out)
    sc, rows = stored_results(out)
    write_report(out, sc, rows)
    return out


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self.refs += [v for k, v in attrs if k in ("href", "src") and v is not None]


def _parse(page: str) -> _Refs:
    p = _Refs()
    p.feed(page)
    return p


def test_run_writes_the_report(folder):
    page = (folder / REPORT_NAME).read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page


def test_every_reference_exists_inside_the_folder(folder):
    page = (folder / REPORT_NAME).read_text(encoding="utf-8")
    refs = _parse(page).refs
    assert any(r.startswith("plots/fig3") for r in refs)
    assert any(r.startswith("media/") and r.endswith(".mp4") for r in refs)
    for ref in refs:
        url = urlparse(ref)
        assert not url.scheme and not url.netloc and not ref.startswith("/"), ref
        path = (folder / unquote(url.path)).resolve()
        assert path.is_file() and path.is_relative_to(folder.resolve()), ref
    assert "http" not in page.lower()
    for absolute in {str(folder.resolve()), str(folder.parents[1]), str(Path.cwd()),
                     str(Path.home())}:
        assert absolute not in page


def test_text_is_escaped(folder):
    page = (folder / REPORT_NAME).read_text(encoding="utf-8")
    assert "<x>" not in page and "<b>tiny" not in page
    assert "H.264+LDPC &lt;x&gt;" in page and "SoftCast &amp; co" in page
    assert "a &lt;b&gt;tiny&lt;/b&gt; run" in page


def test_tables_plots_and_scenario(folder):
    page = (folder / REPORT_NAME).read_text(encoding="utf-8")
    for title in ("<h3>PSNR</h3>", "<h3>SSIM</h3>", "<h3>outage (failed trials / trials)</h3>",
                  "<h3>CBR (channel uses / 3HWF)</h3>"):
        assert title in page
    # every trial of H.264 failed at 2 dB: no quality, "–" (PSNR and SSIM tables)
    assert page.count(f'<td class="dash" title="every trial failed">{DASH}</td>') == 2
    assert "1.00 (1/1)" in page
    png = sorted(p.name for p in (folder / "plots").glob("*.png"))
    assert all(f'src="plots/{quote(n)}"' in page for n in png)
    if (folder / "plots" / f"fig1_{VIDEO}.png").is_file():  # Fig. 1 first, own section
        assert page.index(f"plots/fig1_{VIDEO}.png") < page.index("plots/fig3.png")
    yaml_part = page[page.index("<h2>Scenario</h2>"):]
    assert "name: t-report" in yaml_part and "base_dir:" not in yaml_part.replace(
        "(base_dir,", "")


def test_saved_videos_grouped_originals_first_failed_marked(folder):
    page = (folder / REPORT_NAME).read_text(encoding="utf-8")
    videos = [a for t, a in _parse(page).tags if t == "video"]
    assert [v["src"] for v in videos] == [
        f"media/{VIDEO}/original/original.mp4", f"media/{VIDEO}/H.264%2BLDPC__x_/2dB_t0.mp4",
        f"media/{VIDEO}/SoftCast___co/10dB_t0.mp4"]  # original, then by SNR
    assert all(v["preload"] == "metadata" and "controls" in v for v in videos)
    section = page[page.index("<h2>Saved videos</h2>"):]
    assert section.count('class="clip failed"') == 1 and "FAILED" in section
    assert "2 of 2 code blocks failed their CRC" in section
    assert "video not saved" in section  # listed, file missing: no broken reference
    assert "1 video(s) listed in media/index.json are not there" in page


def test_partial_failure_star_and_footnote(folder):
    sc, rows = stored_results(folder)
    soft = next(r for r in rows if r["scheme"] == SOFT and r["snr_db"] == 10)
    extra = dict(soft, unit_id=soft["unit_id"] + "x", trial=1, failed=1, failure="test")
    page = render(folder, sc, rows + [extra])
    assert re.search(r"<td>[0-9.]+\*", page) and "* some trials failed" in page
    assert "0.50 (1/2)" in page


def test_warnings_for_missing_metrics_and_schemes(folder):
    sc, rows = stored_results(folder)
    kept = [dict(r, metrics={k: v for k, v in r["metrics"].items() if k != "ssim"})
            for r in rows if r["scheme"] == H264]
    page = render(folder, sc, kept)
    warn = page[page.index("<h2>Warnings</h2>"):page.index("<h2>Results</h2>")]
    assert "metric ssim: unavailable in 2 of 2 units" in warn
    assert "scheme &#x27;SoftCast &amp; co&#x27;: no stored units" in warn
    assert "2 of 4 planned units are not stored" in warn
    assert 'title="metric unavailable">n/a</td>' in page  # SSIM at 10 dB


def test_link_report_has_ber_bler_tables(tmp_path):
    out = run(validate(small_link_scenario(name="t-report-link")), tmp_path / "l",
              progress=False)
    page = (out / REPORT_NAME).read_text(encoding="utf-8")
    assert out / REPORT_NAME in finalize(out)  # rewritten with the outputs
    assert "<h3>BER</h3>" in page and "<h3>BLER</h3>" in page and "plots/ber.png" in page
    assert "QPSK uncoded" in page and "Saved videos" not in page
    for ref in _parse(page).refs:
        assert (out / unquote(ref)).is_file(), ref


def test_cli_report(folder, tmp_path, capsys):
    (folder / REPORT_NAME).unlink()
    assert main(["report", str(folder)]) == 0
    assert capsys.readouterr().out.strip() == str(folder / REPORT_NAME)
    assert (folder / REPORT_NAME).is_file()
    assert main(["report", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "not a results folder" in err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "results.sqlite").write_text("these are not results\n" * 9)
    assert main(["report", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not a usable results store" in err
    assert not (bad / REPORT_NAME).exists()


def test_captions_from_file_names():
    labels = {"synthetic-pan": "synthetic-pan"}
    assert plot_caption("fig3_psnr", labels) == "PSNR vs SNR (Fig. 3)"
    assert plot_caption("temporal_synthetic-pan_-2.5dB", labels).startswith(
        "synthetic-pan at -2.5 dB")
    assert plot_caption("fig1_synthetic-pan", labels).endswith("(Fig. 1)")
    assert plot_caption("odd_name", labels) == "odd name"


# -- the page in a browser --------------------------------------------------------------
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars")
#: appended to a copy of the page: once every video has its metadata (or an error),
#: a JSON verdict on every image and video goes into <pre id="verdict">
VERDICT_JS = """<script>
window.addEventListener('load', function () {
  var vids = Array.prototype.slice.call(document.querySelectorAll('video'));
  var tries = 0;
  function settled() { return vids.every(function (v) { return v.readyState >= 1 || v.error; }); }
  function finish() {
    var pre = document.createElement('pre');
    pre.id = 'verdict';
    pre.textContent = JSON.stringify({
      images: Array.prototype.map.call(document.images, function (i) {
        return {src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0}; }),
      videos: vids.map(function (v) {
        return {src: v.getAttribute('src'), ready: v.readyState, width: v.videoWidth,
                error: v.error ? v.error.code : null}; })});
    document.body.appendChild(pre);
  }
  (function wait() { if (settled() || tries++ > 200) { finish(); } else { setTimeout(wait, 50); } })();
});
</script>"""


def _chromium() -> str | None:
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else shutil.which("chromium")


def _browse(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.browser
def test_chromium_renders_images_and_plays_h264(folder, tmp_path):
    chromium = _chromium()
    if chromium is None:
        pytest.skip("Chromium not installed (/usr/bin/chromium, chromium on PATH): "
                    "browser test skipped")
    page = (folder / REPORT_NAME).read_text(encoding="utf-8")
    probe = folder / "report-probe.html"  # a sibling: the same relative paths
    probe.write_text(page.replace("</body>", VERDICT_JS + "</body>"), encoding="utf-8")
    try:
        done = _browse(chromium, tmp_path / "profile", "--virtual-time-budget=10000",
                       "--dump-dom", probe.as_uri())
    finally:
        probe.unlink()
    found = re.search(r'<pre id="verdict">(.*?)</pre>', done.stdout, re.S)
    assert done.returncode == 0 and found, f"Chromium did not render the page: {done.stderr[-2000:]}"
    verdict = json.loads(html.unescape(found.group(1)))
    assert verdict["images"] and verdict["videos"]
    assert [i for i in verdict["images"] if not i["ok"]] == []
    bad = [v for v in verdict["videos"] if v["ready"] < 1 or v["error"] is not None]
    assert bad == [], f"videos without metadata (H.264 mp4 not playable?): {bad}"
    assert all(v["width"] == 64 for v in verdict["videos"])
    shot = tmp_path / "page.png"
    done = _browse(chromium, tmp_path / "profile", f"--screenshot={shot}",
                   "--window-size=1280,2000", (folder / REPORT_NAME).as_uri())
    assert done.returncode == 0 and shot.stat().st_size > 10_000, done.stderr[-2000:]
