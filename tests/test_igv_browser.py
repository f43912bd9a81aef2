"""The report's igv.js view in a real headless Chromium over file://: loads offline with no console error,
and its screenshot shows relevance at the planted sites and little elsewhere.

Chromium is driven through the DevTools protocol over a pipe (``--remote-debugging-pipe``: fd 3 in, fd 4
out, messages NUL-terminated), so no package beyond the standard library is needed. Debian's ``chromium``
(``apt-get install -y chromium``) is found on PATH or via ``$CHROMIUM``.
"""

import base64
import contextlib
import fcntl
import gzip
import io
import json
import math
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time

import numpy as np
import pytest
from test_hub import SITES, make_run

from lrp.genomics.tracks import read_bigwig_values
from lrp.report.colours import METHOD_COLOURS
from lrp.report.html import external_references
from lrp.report.igv import IGV_VERSION, NA
from lrp.steps.cli import main

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
    "--window-size=1300,1000",
]


def chromium_binary():
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


class Chrome:
    """A headless Chromium with one page, driven over the DevTools pipe; records every event."""

    def __init__(self, binary, timeout=30):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="plrp-chromium.")

        def high(fd):  # away from 3 and 4, which the child gets
            new = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
            os.close(fd)
            return new

        to_r, to_w = map(high, os.pipe())
        from_r, from_w = map(high, os.pipe())
        flags = [
            *FLAGS,
            f"--user-data-dir={self.profile}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        redirect = f'exec "$@" 3<&{to_r} 4>&{from_w} {to_r}<&- {from_w}>&-'
        self.log = open(os.path.join(self.profile, "stderr.log"), "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            ["bash", "-c", redirect, "bash", binary, *flags],
            pass_fds=(to_r, from_w),
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        os.close(to_r)
        os.close(from_w)
        self.out = os.fdopen(to_w, "wb", buffering=0)
        self.inp = os.fdopen(from_r, "rb", buffering=0)
        self.messages, self.events, self.next_id = queue.Queue(), [], 0
        threading.Thread(target=self._read, daemon=True).start()
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Runtime", "Log", "Network", "Page"):
            self.send(f"{domain}.enable", session=True)
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1300, "height": 1000, "deviceScaleFactor": 1, "mobile": False},
            session=True,
        )

    def _read(self):
        buf = b""
        while chunk := self.inp.read(1 << 16):
            buf += chunk
            *done, buf = buf.split(b"\0")
            for msg in done:
                self.messages.put(json.loads(msg))
        self.messages.put(None)

    def send(self, method, params=None, session=False):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = self.session
        self.out.write(json.dumps(msg).encode() + b"\0")
        end = time.monotonic() + self.timeout
        while True:
            m = self.messages.get(timeout=max(0.1, end - time.monotonic()))
            if m is None:
                with open(self.log.name, "rb") as handle:
                    raise RuntimeError(f"chromium exited: {handle.read()[-2000:].decode()}")
            if m.get("id") == msg["id"]:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def js(self, expression, await_promise=False):
        r = self.send(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": await_promise, "returnByValue": True},
            session=True,
        )
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait_for(self, expression, timeout=20):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.js(expression):
                return
            time.sleep(0.1)
        raise TimeoutError(expression)

    def screenshot(self):
        from PIL import Image

        data = self.send("Page.captureScreenshot", {"format": "png"}, session=True)["data"]
        return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))

    def problems(self):
        """Console errors and warnings, uncaught exceptions, log errors, and requests off this
        machine (anything but file: and data: URLs)."""
        out = []
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.consoleAPICalled" and p["type"] in ("error", "warning", "assert"):
                out.append(
                    f"console.{p['type']}: {[a.get('value', a.get('description')) for a in p['args']]}"
                )
            elif m == "Runtime.exceptionThrown":
                out.append(
                    f"exception: {p['exceptionDetails'].get('exception', {}).get('description')}"
                )
            elif m == "Log.entryAdded" and p["entry"]["level"] in ("error", "warning"):
                out.append(f"log: {p['entry']['text']} {p['entry'].get('url', '')}")
            elif m == "Network.requestWillBeSent":
                url = p["request"]["url"]
                if not url.startswith(("file:", "data:")):
                    out.append(f"request: {url[:100]}")
            elif m == "Network.loadingFailed":
                out.append(f"failed load: {p.get('errorText')}")
        return out

    def close(self):
        with contextlib.suppress(RuntimeError, OSError, queue.Empty):
            self.send("Browser.close")
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    run = make_run(tmp_path_factory.mktemp("igv"))
    out = run["fasta"].parent / "report" / "report.html"
    args = ["report", "--out", str(out), "--igv-fasta", str(run["fasta"])]
    args += ["--igv-bigwigs", *map(str, run["bw"].values())]
    args += ["--igv-calls", str(run["bb"]["lrp"]), f"plrp={run['fasta'].parent / 'plrp/calls.bed'}"]
    args += ["--igv-known-sites", str(run["known"]), "--igv-regions", str(run["regions"])]
    assert main(args) == 0
    return run, out


def _view_data(text):
    m = re.search(
        r'<script type="application/gzip\+base64" id="plrp-igv-data">(.*?)</script>',
        text,
        re.DOTALL,
    )
    return json.loads(gzip.decompress(base64.b64decode(m.group(1))))


def test_report_embeds_the_view(report):
    run, out = report
    text = out.read_text()
    assert external_references(text) == []
    assert f"igv.js {IGV_VERSION}" in text and "The MIT License" in text  # licence header kept
    view = _view_data(text)
    # The reference: gzipped FASTA slices with the contig lengths, equal to the genome.
    fasta = gzip.decompress(base64.b64decode(view["fasta"].split(",", 1)[1])).decode()
    genome = {}
    for block in fasta.split(">")[1:]:
        head, *lines = block.splitlines()
        name, span = head.split()[0].split(":")
        a, b = map(int, span.split("-"))
        assert head.split()[1] == f"@len={run['sizes'][name]}"
        genome[(name, a - 1, b)] = "".join(lines)
    seqs = {}
    for line in run["fasta"].read_text().splitlines():
        if line.startswith(">"):
            name = line[1:].split()[0]
            seqs[name] = ""
        else:
            seqs[name] += line
    assert {(c, 0, n) for c, n in run["sizes"].items()} == set(genome)
    for (c, a, b), seq in genome.items():
        assert seq == seqs[c][a:b].upper()
    # Relevance: the decoded wig equals the bigWig (int16 quantisation), by base around the sites.
    lrp = next(w for w in view["wigs"] if w["name"] == "lrp")
    checked = 0
    for chrom, a, b, step, b64 in lrp["segments"]:
        q = np.frombuffer(base64.b64decode(b64), "<i2").astype(float)
        if step != 1:
            continue
        expect = read_bigwig_values(run["bw"]["lrp"], chrom, a, b)
        assert np.all(q != NA)
        np.testing.assert_allclose(q * lrp["scale"], expect, atol=lrp["scale"])
        checked += b - a
    assert checked > 0
    # Top loci: the strongest calls first, each on a known site.
    assert [x["names"] for x in view["loci"]] == [s[3] for s in SITES]
    assert all(x["known"] for x in view["loci"])
    assert [a["name"] for a in view["annotations"]] == ["lrp calls", "plrp calls", "known sites"]
    assert view["annotations"][0]["features"][0][6].startswith("rgb(")


def test_embedded_size_is_limited(report, tmp_path):
    run, _ = report
    from lrp.report.igv import build_view

    named = [(m, run["bw"][m]) for m in ("lrp", "plrp")]
    calls = [("lrp", run["bb"]["lrp"])]
    view = build_view(
        run["fasta"],
        named,
        calls,
        regions=run["regions"],
        max_bases=12_000,
        max_values=6_000,
        top=2,
    )
    assert view["bases"] == 10_000  # whole 10 kb chunks, not over the limit
    # the chunks of the two strongest calls come first: chr1:0-10000 holds site 0 but not site 1
    assert [x["site"] for x in view["loci"]] == ["chr1:5001-5020"]
    fine = 20 + 2 * view["detail_flank"]  # per track, at base resolution
    assert view["bin"] == math.ceil(2 * (10_000 - fine) / (6_000 - 2 * fine))
    n = sum(len(base64.b64decode(s[4])) // 2 for w in view["wigs"] for s in w["segments"])
    assert n <= 6_000  # values over all tracks


def _columns(img, box, colour, tol=30):
    """Per pixel column of a track's box, the number of pixels within ``tol`` of ``colour``."""
    x0, y0 = round(box["left"]), round(box["top"])
    crop = img[y0 : y0 + int(box["height"]), x0 : x0 + int(box["width"])].astype(int)
    return (np.abs(crop - np.array(colour)).max(axis=2) <= tol).sum(axis=0)


@pytest.mark.skipif(
    chromium_binary() is None,
    reason="Debian's chromium is not installed (apt-get install -y chromium; make test installs it)",
)
def test_igv_view_in_chromium(report):
    _, out = report
    chrome = Chrome(chromium_binary())
    try:
        chrom, start, end, tf = SITES[1]
        centre = (start + end) // 2
        locus = f"{chrom}:{centre - 100 + 1}-{centre + 100}"
        chrome.send("Page.navigate", {"url": f"{out.as_uri()}#locus={locus}"}, session=True)
        chrome.wait_for("window.plrpIgv !== undefined && window.plrpIgv.ready !== undefined")
        assert chrome.js("plrpIgv.ready.then(() => true)", await_promise=True)
        chrome.wait_for("plrpIgv.idle()")
        status = chrome.js("document.getElementById('plrp-igv-status').dataset.state")
        assert status == "ready"
        names = chrome.js("plrpIgv.browser.trackViews.map(v => v.track.name)")
        assert {"lrp", "plrp", "lrp calls", "plrp calls", "known sites"} <= set(names)
        chrome.js("document.getElementById('plrp-igv').scrollIntoView()")
        time.sleep(0.5)  # one more frame after the scroll
        chrome.wait_for("plrpIgv.idle()")
        img = chrome.screenshot()
        if os.environ.get("PLRP_SCREENSHOT"):
            from PIL import Image

            Image.fromarray(img).save(os.environ["PLRP_SCREENSHOT"])
        for i, method in enumerate(("lrp", "plrp")):
            g = chrome.js(f"plrpIgv.geometry('{method}')")
            assert g["chr"] == chrom and abs(g["start"] - (centre - 100)) <= 2
            cols = _columns(img, g, [int(c) for c in METHOD_COLOURS[i].split(",")])
            x = (np.arange(len(cols)) + 0.5) * g["bpPerPixel"] + g["start"]  # genome position
            site = (x >= start + 2) & (x < end - 2)
            far = (x < start - 20) | (x >= end + 20)
            assert site.sum() > 10 and far.sum() > 100
            # bars of at least a third of the track (lrp: the positive half) on most site columns
            # (igv.js leaves a gap column between bases)
            assert np.mean(cols[site] >= g["height"] / 3) >= 0.7, (method, cols[site])
            assert np.mean(cols[far]) <= 3 and np.quantile(cols[far], 0.95) <= 5, method
        # The known-sites track shows the site in its TF colour, centred where the relevance is.
        g = chrome.js("plrpIgv.geometry('known sites')")
        from lrp.report.colours import tf_colour

        cols = _columns(img, g, [int(c) for c in tf_colour(tf).split(",")], tol=10)
        x = (np.arange(len(cols)) + 0.5) * g["bpPerPixel"] + g["start"]
        assert (
            cols[(x >= start + 1) & (x < end - 1)].min() > 0
            and cols[(x < start - 5) | (x > end + 5)].max() == 0
        )
        # A click on a top locus moves the view there.
        chrome.js("document.querySelector('#plrp-igv-loci a').click()")
        c0, s0, e0, _ = SITES[0]
        chrome.wait_for(
            f"(g => g.chr === '{c0}' && g.start < {s0} && "
            f"g.start + g.width * g.bpPerPixel > {e0})(plrpIgv.geometry('lrp'))"
        )
        chrome.wait_for("plrpIgv.idle()")
        problems = chrome.problems()
    finally:
        chrome.close()
    assert problems == [], problems


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    """The whole report of the small run: comparison (real call accuracy of each method's calls against
    the known sites, through ``plrp evaluate --compare``), summary, plots and the igv.js view."""
    from lrp.evaluation.metrics import call_accuracy
    from lrp.genomics.regions import read_bed
    from lrp.report.igv import read_features

    run = make_run(tmp_path_factory.mktemp("full"))
    root = run["fasta"].parent
    sites = read_features(run["known"], run["sizes"])
    regions = read_bed(run["regions"], run["sizes"])
    calls = {"lrp": run["bb"]["lrp"], "plrp": root / "plrp/calls.bed"}
    metrics = []
    for m, path in calls.items():
        acc = call_accuracy(read_features(path, run["sizes"]), sites, regions)
        doc = {"method": m, "family": m, "p_pos": 0.0, "scalars": acc["overall"]}
        doc["per_tf"] = acc["per_tf"]
        metrics.append(root / f"{m}.metrics.json")
        metrics[-1].write_text(json.dumps(doc))
    comparison = root / "comparison"
    args = ["evaluate", "--compare", *map(str, metrics), "--plots-dir", str(comparison)]
    args += ["--out-json", str(comparison / "c.json"), "--out-tsv", str(comparison / "c.tsv")]
    assert main(args) == 0
    out = root / "report" / "report.html"
    args = ["report", "--out", str(out), "--comparison", str(comparison / "c.tsv")]
    args += ["--comparison-json", str(comparison / "c.json"), "--igv-fasta", str(run["fasta"])]
    args += ["--plots", *(str(p) for p in sorted(comparison.glob("*.png")))]
    args += ["--igv-bigwigs", *map(str, run["bw"].values())]
    args += ["--igv-calls", *(f"{m}={p}" for m, p in calls.items())]
    args += ["--igv-known-sites", str(run["known"]), "--igv-regions", str(run["regions"])]
    assert main(args) == 0
    return out, json.loads((comparison / "c.json").read_text())


@pytest.mark.skipif(chromium_binary() is None, reason="Debian's chromium is not installed")
def test_report_summary_first_and_no_sideways_scroll(full_report):
    out, doc = full_report
    chrome = Chrome(chromium_binary())
    try:
        width, height = 1280, 900
        chrome.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=True,
        )
        chrome.send("Page.navigate", {"url": out.as_uri()}, session=True)
        chrome.wait_for("window.plrpIgv !== undefined && window.plrpIgv.ready !== undefined")
        assert chrome.js("plrpIgv.ready.then(() => true)", await_promise=True)
        chrome.wait_for("plrpIgv.idle()")
        chrome.js("window.scrollTo(0, 0)")
        time.sleep(0.3)
        img = chrome.screenshot()
        if os.environ.get("PLRP_SCREENSHOT"):
            from PIL import Image

            Image.fromarray(img).save(os.environ["PLRP_SCREENSHOT"])
        box = chrome.js(
            "(() => { const r = e => { const b = document.querySelector(e).getBoundingClientRect();"
            " return {left: b.left, top: b.top, bottom: b.bottom, right: b.right}; };"
            " return {summary: r('#summary'), verdict: r('#verdict'), known: r('#known-tfs'),"
            " toc: r('#toc'), scroll: document.documentElement.scrollWidth,"
            " client: document.documentElement.clientWidth}; })()"
        )
        # No sideways scroll of the page at 1280 px; the summary and its TF table in the first screen.
        assert box["scroll"] <= box["client"] == width
        assert box["known"]["bottom"] <= height and box["summary"]["top"] < height / 4
        # The screenshot shows the verdict box there: its blue left border (#1a5fb4) down its height.
        v = box["verdict"]
        x, y0, y1 = round(v["left"]) + 1, round(v["top"]) + 2, round(v["bottom"]) - 2
        border = np.abs(img[y0:y1, x].astype(int) - [0x1A, 0x5F, 0xB4]).max(axis=1) <= 12
        assert y1 - y0 > 20 and border.mean() > 0.95
        # The recovered TFs in the page are those of comparison.json.
        got = chrome.js(
            "Object.fromEntries([...document.querySelectorAll('#known-tfs tr[data-tf]')]"
            ".map(r => [r.dataset.tf, r.dataset.recoveredBy]))"
        )
        expect = {}
        for method in doc["methods"]:
            for tf, m in doc["per_tf"][method].items():
                if m["n_sites"]:
                    expect.setdefault(tf, set())
                    if m["n_correct"]:
                        expect[tf].add(method)
        assert {k: set(filter(None, v.split(","))) for k, v in got.items()} == expect
        assert any(expect.values())
        # The sticky table of contents stays at the top after a scroll to the browser.
        chrome.js("document.getElementById('plrp-igv').scrollIntoView()")
        time.sleep(0.3)
        assert abs(chrome.js("document.getElementById('toc').getBoundingClientRect().top")) < 1
        names = chrome.js("plrpIgv.browser.trackViews.map(v => v.track.name)")
        assert {"lrp", "plrp", "lrp calls", "plrp calls", "known sites"} <= set(names)
        problems = chrome.problems()
    finally:
        chrome.close()
    assert problems == [], problems
