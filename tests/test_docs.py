"""The README's and docs' links lead somewhere: each relative link names a file that exists, and each #anchor a
heading of that file, as GitHub makes anchors from headings. Results move between sections as they are rewritten,
and a link to a heading that changed fails silently on GitHub. The README's commands are ones the commands take."""

from __future__ import annotations

import re
import shlex
from collections import Counter
from pathlib import Path

import pytest
from conftest import compose_config
from hydra.errors import OverrideParseException

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


def test_every_command_in_the_readme_composes() -> None:
    """Each fer-train, fer-tune, fer-stack and fer-predict line of the README's shell blocks, composed by Hydra as the
    command would: a renamed key, group or option fails here, not in a user's first try. A placeholder (``<run>``)
    stands for any path; a sweep (``-m``) is composed at the first value of each swept key."""
    commands = {"fer-train": "train", "fer-tune": "tune", "fer-stack": "stack", "fer-predict": "predict"}
    lines = [line for block in re.findall(r"```bash\n(.*?)```", (REPO / "README.md").read_text(), re.DOTALL)
             for line in block.splitlines()]
    composed: Counter[str] = Counter()
    for line in lines:
        words = shlex.split(re.sub(r"<[^>]*>", "x", line), comments=True)
        if not words or words[0] not in commands:
            continue
        overrides = [word for word in words[1:] if word != "-m"]
        if "-m" in words:
            overrides = [re.sub(r"^([\w.]+=[^,\[]+),.*", r"\1", word) for word in overrides]
        compose_config(commands[words[0]], overrides)
        composed[words[0]] += 1
    assert set(composed) == set(commands) and sum(composed.values()) >= 30, composed


def test_the_readmes_advice_on_quoting_paths_holds() -> None:
    """A path with parentheses or accents fails Hydra's grammar unquoted and reads whole in quotes."""
    readme = (REPO / "README.md").read_text()
    assert "'inputs=\"Photos (2024)/été.jpg\"'" in readme
    with pytest.raises(OverrideParseException):
        compose_config("predict", ["inputs=Photos (2024)/été.jpg"])
    assert compose_config("predict", ['inputs="Photos (2024)/été.jpg"']).inputs == "Photos (2024)/été.jpg"
