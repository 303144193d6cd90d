"""Accessibility check of an evaluator report: axe-core's rules in headless Chromium.

    .venv/bin/python benchmarks/report_accessibility.py [REPORT_HTML] [--axe PATH] [--all]

Without REPORT_HTML it builds the demo (``mentorbot demo``) into a temporary folder and checks
its ``evaluator/report.html``. It needs two things the project does not install (neither is a
Python package): Chromium (Debian: ``apt-get install chromium``) and axe-core's
``axe.min.js`` (``npm install axe-core@4`` in any folder, then ``--axe
that/node_modules/axe-core/axe.min.js``). Nothing is fetched at run time: the page is copied
with axe injected, Chromium loads it from disk with the network off, runs axe and the DOM it
dumps carries the results.

Prints one line per violated rule (id, impact, nodes) and, for colour contrast, each failing
element's colours; exits 1 when ``color-contrast`` (WCAG 2 AA) fails, or with ``--all`` when
any rule does. It also loads the page 1280 px wide and lists what lies beyond the right edge
(the navigation bar must wrap); anything there exits 1 too.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RUNNER = """<script>{axe}</script>
<script>
axe.run(document, {{resultTypes: ["violations"]}}).then(function (r) {{
  var out = r.violations.map(function (v) {{
    return {{id: v.id, impact: v.impact, nodes: v.nodes.map(function (n) {{
      return {{target: n.target.join(" "), summary: n.failureSummary}};
    }})}};
  }});
  var pre = document.createElement("pre");
  pre.id = "axe-results";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
}});
</script>
"""


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit("Chromium is not installed (Debian: apt-get install chromium)")


# What lies beyond the right edge of a 1280 px wide window (the page must wrap, not make the
# reader scroll sideways or lose the end of the navigation bar)
LAYOUT = """<script>
window.addEventListener("load", function () {
  var width = document.documentElement.clientWidth, out = [];
  document.querySelectorAll("nav a, h1, h2, h3, p, li, table, img, .chain").forEach(
    function (el) {
      var box = el.getBoundingClientRect();
      if (box.width && box.right > width + 1 && !el.closest(".scroll")) {
        out.push({tag: el.tagName.toLowerCase(), text: (el.textContent || "").slice(0, 40),
                  right: Math.round(box.right)});
      }
    });
  var pre = document.createElement("pre");
  pre.id = "layout-results";
  pre.textContent = JSON.stringify({width: width, page: document.documentElement.scrollWidth,
                                    beyond: out});
  document.body.appendChild(pre);
});
</script>
"""


def layout(report: Path, width: int = 1280) -> dict[str, Any]:
    """The page at ``width`` px in headless Chromium: its width, the width it scrolls to, and
    the elements whose right edge lies beyond the window (none, when the layout wraps)."""
    page = report.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "report.html"
        probe.write_text(page.replace("</body>", LAYOUT + "</body>", 1), encoding="utf-8")
        done = subprocess.run(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--hide-scrollbars", "--proxy-server=127.0.0.1:9", f"--window-size={width},900",
             "--virtual-time-budget=30000", "--dump-dom", probe.as_uri()],
            capture_output=True, text=True, timeout=300, check=False,
        )
    found = re.search(r'<pre id="layout-results">(.*?)</pre>', done.stdout, re.S)
    if found is None:
        raise SystemExit("the layout probe did not report (Chromium's output had no results)")
    result: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    return result


def check(report: Path, axe: Path) -> list[dict[str, object]]:
    page = report.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "report.html"
        script = RUNNER.format(axe=axe.read_text(encoding="utf-8"))
        probe.write_text(page.replace("</body>", script + "</body>", 1), encoding="utf-8")
        done = subprocess.run(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--proxy-server=127.0.0.1:9", "--window-size=1280,2000",
             "--virtual-time-budget=60000", "--dump-dom", probe.as_uri()],
            capture_output=True, text=True, timeout=300, check=False,
        )
    found = re.search(r'<pre id="axe-results">(.*?)</pre>', done.stdout, re.S)
    if found is None:
        raise SystemExit("axe did not report (Chromium's output had no results)")
    results: list[dict[str, object]] = json.loads(html.unescape(found.group(1)))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("report", nargs="?", type=Path)
    parser.add_argument("--axe", type=Path, default=Path("node_modules/axe-core/axe.min.js"))
    parser.add_argument("--all", action="store_true", help="fail on any axe rule, not only "
                        "colour contrast")
    args = parser.parse_args()
    if not args.axe.is_file():
        raise SystemExit(f"no axe-core at {args.axe} (npm install axe-core@4; pass --axe)")
    with tempfile.TemporaryDirectory() as tmp:
        report = args.report
        if report is None:
            from bot.demo import run_demo

            asyncio.run(run_demo(Path(tmp) / "demo"))
            report = Path(tmp) / "demo" / "evaluator" / "report.html"
        violations = check(report, args.axe)
        fits = layout(report)
    for v in violations:
        nodes = v["nodes"]
        assert isinstance(nodes, list)
        print(f"{v['id']:<28} {v['impact']:<9} {len(nodes)} element(s)")
        if v["id"] == "color-contrast":
            for n in nodes[:20]:
                summary = " ".join(str(n["summary"]).split())
                print(f"    {n['target']}: {summary[:160]}")
    contrast = sum(len(v["nodes"]) for v in violations  # type: ignore[arg-type]
                   if v["id"] == "color-contrast")
    print(f"axe-core: {len(violations)} rule(s) violated; colour-contrast failures: {contrast}")
    beyond = fits["beyond"]
    for el in beyond[:20]:
        print(f"    beyond {fits['width']} px: <{el['tag']}> {el['text']!r} to {el['right']} px")
    print(f"layout at {fits['width']} px: page {fits['page']} px wide, "
          f"{len(beyond)} element(s) beyond the right edge")
    return 1 if contrast or beyond or (args.all and violations) else 0


if __name__ == "__main__":
    raise SystemExit(main())
