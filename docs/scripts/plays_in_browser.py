"""Whether a browser plays a video: headless Chromium loads each file in a <video>, seeks to 1 s and says its size and
length, or the media error it gave (4: the format is not supported). How fer-predict's annotated copies were checked:

    apt-get install chromium
    python docs/scripts/plays_in_browser.py outputs/predict/runs/<date_time>/annotated/clip.mp4.webm

It prints one line per file and how many pixels of the frame at 1 s are the annotation's green.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PAGE = """<html><body><div id="out">waiting</div><script>
function probe(src) {
  return new Promise(resolve => {
    const v = document.createElement('video');
    v.muted = true;
    v.onloadeddata = () => { v.currentTime = Math.min(1.0, v.duration / 2); };
    v.onseeked = () => {
      const c = document.createElement('canvas'); c.width = v.videoWidth; c.height = v.videoHeight;
      const g = c.getContext('2d'); g.drawImage(v, 0, 0);
      const px = g.getImageData(0, 0, c.width, c.height).data;
      let green = 0; for (let i = 0; i < px.length; i += 4) if (px[i + 1] > 150 && px[i] < 80) green++;
      resolve(`${src}: plays, ${v.videoWidth}x${v.videoHeight}, ${v.duration.toFixed(2)} s, ${green} green pixels`);
    };
    v.onerror = () => resolve(`${src}: media error ${v.error && v.error.code}`);
    v.src = src;
  });
}
Promise.all(SOURCES.map(probe)).then(r => { document.getElementById('out').textContent = r.join('\\n'); });
</script></body></html>"""


def main(videos: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        # Each video copied beside the page: a frame read back from a file of another folder (or through a link)
        # would taint the canvas.
        sources = []
        for i, video in enumerate(videos):
            link = Path(folder) / f"{i}_{Path(video).name}"
            shutil.copy(video, link)
            sources.append(link.name)
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
