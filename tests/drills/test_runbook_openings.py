"""Every runbook opens with what an on-call engineer needs before the first command: "Before you
start" (credentials, which environment, `ops status` first) and "Where to look" (host logs, the
long-term logs in BetterStack, Sentry, the monitors). Parsed from the Markdown, so a new runbook
without them fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.drills.runbook import RUNBOOKS

pytestmark = pytest.mark.unit

SECTION = re.compile(r"^## (.+)$", re.M)

# What each block must name, as an engineer would look for it in the text.
BEFORE_YOU_START = {
    "credentials": re.compile(r"\*\*Credentials\*\*"),
    "the environment (ENV)": re.compile(r"\*\*Which environment\*\*.*`ENV`", re.S),
    "`ops status` first": re.compile(r"`ops status --env \"\$ENV\"`"),
}
WHERE_TO_LOOK = {
    "host logs (`ops logs`)": re.compile(r"`ops logs --env"),
    "the BetterStack logs source": re.compile(r"BetterStack Logs"),
    "Sentry": re.compile(r"Sentry"),
    "the monitors": re.compile(r"[Mm]onitors"),
}


def _runbooks() -> list[Path]:
    found = sorted(p for p in RUNBOOKS.glob("*.md") if p.name != "README.md")
    assert found, f"no runbooks under {RUNBOOKS}"
    return found


def _sections(text: str) -> list[tuple[str, str]]:
    """(heading, body) of each `## ` section, in order."""
    heads = list(SECTION.finditer(text))
    return [(m.group(1).strip(), text[m.end():heads[i + 1].start() if i + 1 < len(heads) else len(text)])
            for i, m in enumerate(heads)]


@pytest.mark.parametrize("runbook", _runbooks(), ids=lambda p: p.name)
def test_runbook_opens_with_before_you_start_and_where_to_look(runbook: Path) -> None:
    text = runbook.read_text()
    title, _, _ = text.partition("\n")
    assert title.startswith("# "), f"{runbook.name}: first line is not the title"
    sections = _sections(text)
    headings = [h for h, _ in sections[:2]]
    assert headings == ["Before you start", "Where to look"], (
        f"{runbook.name}: its first two sections are {headings}, not 'Before you start', 'Where to look'")
    # Nothing between the title and the first block: the blocks *open* the runbook.
    assert text[len(title) + 1:].lstrip().startswith("## Before you start"), (
        f"{runbook.name}: text before 'Before you start'")
    for (heading, body), wanted in zip(sections[:2], (BEFORE_YOU_START, WHERE_TO_LOOK), strict=True):
        missing = [name for name, pattern in wanted.items() if not pattern.search(body)]
        assert not missing, f"{runbook.name}: '{heading}' does not name {', '.join(missing)}"
        assert "```bash" not in body, f"{runbook.name}: '{heading}' holds a bash block (the runbook test would run it)"
