"""Run the examples of a Markdown page in order, as a reader would type them.

A fenced block right after ``<!-- file: NAME -->`` is written to NAME; one right after
``<!-- expect file: NAME -->`` must equal NAME's content then. In a ``sh`` block every line
that starts with ``openmeg`` is run (a trailing ``#`` comment and ``\\`` continuations are
understood); the ``text`` block that follows, if any, lists lines that must appear in what
those commands printed (a line ending in `` ...`` only up to there). A block whose expected
lines include ``error:`` expects its last command to fail (non-zero exit), every other command
must succeed."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

FENCE = re.compile(r"^(?:<!-- (file|expect file): (\S+) -->\n)?```(\w*)\n(.*?)^```$", re.S | re.M)


@dataclass(kw_only=True)
class Step:
    """Commands of one ``sh`` block and the lines they must print."""

    commands: list[list[str]]
    expected: list[str] = field(default_factory=list)


def blocks(page: str) -> list[tuple[str, str, str]]:
    """``(kind, name, body)`` of each fenced block: kind ``file``, ``expect file`` or the
    block's language."""
    out = []
    for m in FENCE.finditer(page):
        marker, name, lang, body = m.groups()
        out.append((marker or lang, name or "", body))
    return out


def commands(body: str) -> list[list[str]]:
    """The ``openmeg`` command lines of a ``sh`` block, as argument lists."""
    joined = body.replace("\\\n", " ")
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line.startswith("openmeg "):
            out.append(shlex.split(line, comments=True)[1:])
    return out


def run_page(
    page: str,
    cwd: Path,
    *,
    extra: tuple[str, ...] = (),
    timeout: float = 600,
    log: list[tuple[list[str], str]] | None = None,
) -> int:
    """Run the page's examples in ``cwd``; the number of commands run (AssertionError naming
    the first that did not do what the page says); ``log`` gets each command and what it
    printed."""
    pending: Step | None = None
    ran = 0

    def finish(step: Step) -> None:
        nonlocal ran
        printed = ""
        for i, argv in enumerate(step.commands):
            done = subprocess.run(
                [sys.executable, "-m", "openmeg", *argv, *extra],
                capture_output=True,
                text=True,
                cwd=cwd,
                timeout=timeout,
            )
            ran += 1
            printed += done.stdout + done.stderr
            if log is not None:
                log.append((argv, done.stdout + done.stderr))
            failing = i == len(step.commands) - 1 and any(
                e.startswith("error:") for e in step.expected
            )
            assert (done.returncode != 0) == failing, (
                f"openmeg {shlex.join(argv)}: exit {done.returncode}\n{done.stdout}{done.stderr}"
            )
        for line in step.expected:
            line = line.removesuffix(" ...")
            assert line in printed, f"{line!r} not printed by {step.commands}:\n{printed}"

    for kind, name, body in blocks(page):
        if kind == "text" and pending is not None:
            pending.expected = [x for x in body.splitlines() if x.strip()]
            continue
        if pending is not None:
            finish(pending)
            pending = None
        if kind == "file":
            (cwd / name).write_text(body)
        elif kind == "expect file":
            assert (cwd / name).read_text().strip() == body.strip(), name
        elif kind == "sh" and commands(body):
            pending = Step(commands=commands(body))
    if pending is not None:
        finish(pending)
    return ran
