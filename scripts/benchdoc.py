"""Writes one section of docs/benchmarks.md, keeping the rest of the file.

A section runs from its "## " heading to the next one; `replace` swaps its heading, intro
and table for new ones and keeps any prose written after the table by hand.
"""

import pathlib

DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def replace(head, section):
    """Puts `section` (starting with `head`, ending with its table) in place of the
    section under `head`, or appends it."""
    text = DOC.read_text()
    if head in text:
        start = text.index(head)
        lines = text[start:].split("\n")
        end = next((i for i, l in enumerate(lines) if i and l.startswith("## ")), len(lines))
        last = max(i for i, l in enumerate(lines[:end]) if l.startswith("|"))
        text = text[:start] + section + "\n".join(lines[last + 1:])
    else:
        text = text.rstrip() + "\n\n" + section
    DOC.write_text(text)
