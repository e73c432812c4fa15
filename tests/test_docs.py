"""The README's and docs' links lead somewhere: each relative link names a file that exists, and each #anchor a
heading of that file, as GitHub makes anchors from headings. Results move between sections as they are rewritten,
and a link to a heading that changed fails silently on GitHub."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(markdown: str) -> set[str]:
    """GitHub's anchors for a file's headings: lower case, punctuation other than - and _ dropped, spaces as -,
    a repeated heading numbered -1, -2, ..."""
    seen: Counter[str] = Counter()
    found = set()
    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if in_code or not line.startswith("#"):
            continue
        text = line.lstrip("#").strip().lower()
        slug = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
        found.add(f"{slug}-{seen[slug]}" if seen[slug] else slug)
        seen[slug] += 1
    return found


def test_anchors_follow_githubs_rule() -> None:
    headings = "# Results\n## A time budget: `fit_minutes` against Lightning's `max_time` (2026-12-04)\n## Results\n"
    assert anchors(headings) == {"results", "a-time-budget-fit_minutes-against-lightnings-max_time-2026-12-04",
                                 "results-1"}


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_relative_links_lead_to_files_and_headings(document: Path) -> None:
    broken = []
    for target in LINK.findall(document.read_text()):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        linked = (document.parent / path).resolve() if path else document
        if not linked.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked.read_text()):
            broken.append(f"{target} (no such heading)")
    assert not broken, f"{document.name}: " + "; ".join(broken)
