"""The peak memory of a command and every process it starts (fer-predict's photo workers, say), which
``/usr/bin/time``'s maximum resident size does not add up: Linux's proportional set size (PSS, each shared page
split among the processes sharing it), summed over the process tree every 0.2 s.

    python docs/scripts/tree_memory.py fer-predict ckpt=<checkpoint> inputs=/tmp/phone_photos progress=false show=0

It prints the command's wall seconds, the peak summed PSS and the most processes seen at once.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path


def descendants(root: int) -> list[int]:
    """``root`` and every living process below it, from /proc's parent links."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # a process that ended while it was read
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += children.get(pid, [])
    return tree


def pss_bytes(pid: int) -> int:
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    return next(int(line.split()[1]) * 1024 for line in rollup.splitlines() if line.startswith("Pss:"))


def main(command: list[str]) -> None:
    if not command:
        sys.exit(__doc__)
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    peak, most = 0, 0
    while process.poll() is None:
        tree = descendants(process.pid)
        peak, most = max(peak, sum(map(pss_bytes, tree))), max(most, len(tree))
        time.sleep(0.2)
    print(f"{time.perf_counter() - start:.1f} s, exit {process.returncode}; peak PSS of the process tree "
          f"{peak / 2**20:.0f} MB, at most {most} processes")


if __name__ == "__main__":
    main(sys.argv[1:])
