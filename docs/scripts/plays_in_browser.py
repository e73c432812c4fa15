"""Whether a browser plays a video: headless Chromium loads each file in a <video>, decodes its first frame and says
its size and length, or the media error it gave (4: the format is not supported). How fer-predict's annotated copies
were checked:

    apt-get install chromium
    python docs/scripts/plays_in_browser.py outputs/predict/runs/<date_time>/annotated/clip.mp4.webm

It prints one line per file.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

PAGE = """<html><body><div id="out">waiting</div><script>
function probe(src) {
  return new Promise(resolve => {
    const v = document.createElement('video');
    v.muted = true;
    // Its first frame decoded. (Seeking further, or reading the frame back, waits on the media pipeline's real time,
    // which the page's virtual-time budget need not give it.)
    v.onloadeddata = () => resolve(`${src}: plays, ${v.videoWidth}x${v.videoHeight}, ${v.duration.toFixed(2)} s`);
    v.onerror = () => resolve(`${src}: media error ${v.error && v.error.code}`);
    v.src = src;
  });
}
Promise.all(SOURCES.map(probe)).then(r => { document.getElementById('out').textContent = r.join('\\n'); });
</script></body></html>"""


def main(videos: list[str]) -> None:
    sources = [Path(video).resolve().as_uri() for video in videos]
    with tempfile.TemporaryDirectory() as folder:
        page = Path(folder) / "play.html"
        page.write_text(PAGE.replace("SOURCES", json.dumps(sources)))
        for _ in range(3):  # the page is read at the end of a virtual-time budget, which video decoding, in real
            # time, sometimes outlasts (a fresh profile's first start, mostly): then the page still says "waiting"
            dom = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                                  "--allow-file-access-from-files", "--virtual-time-budget=30000", "--dump-dom",
                                  page.as_uri()], capture_output=True, text=True, timeout=120).stdout
            found = re.search(r"<div id=\"out\">([^<]*)</div>", dom)
            if found and found.group(1) != "waiting":
                break
    print(found.group(1) if found else "Chromium printed no result")


if __name__ == "__main__":
    main(sys.argv[1:])
