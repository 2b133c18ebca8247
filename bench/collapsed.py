"""Summaries of py-spy's collapsed stacks (`py-spy record --format raw`).

Each line is `frame;frame;…;leaf COUNT`, outermost frame first, a frame being
`function (path/to/file.py:line)`. Functions are aggregated without line numbers.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

_LINE_NUMBER = re.compile(r":\d+\)$")
_SITE_PACKAGES = re.compile(r"\(.*/(site-packages|lib/python3\.\d+)/")


@dataclass(frozen=True, slots=True)
class Summary:
    samples: int
    self_counts: Counter[str]  # samples with the function as the leaf
    total_counts: Counter[str]  # samples with the function anywhere on the stack

    def top_self(self, n: int) -> list[tuple[str, float]]:
        return [(name, count / self.samples) for name, count in self.self_counts.most_common(n)]

    def top_total(self, n: int) -> list[tuple[str, float]]:
        return [(name, count / self.samples) for name, count in self.total_counts.most_common(n)]


def frame_name(frame: str) -> str:
    """`render (gateway/x.py:12)` → `render (gateway/x.py)`, library paths shortened."""
    name = _LINE_NUMBER.sub(")", frame.strip())
    return _SITE_PACKAGES.sub("(", name)


def summarize(lines: Iterable[str]) -> Summary:
    self_counts: Counter[str] = Counter()
    total_counts: Counter[str] = Counter()
    samples = 0
    for line in lines:
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [frame_name(f) for f in stack.split(";") if f]
        if not frames:
            continue
        samples += count
        self_counts[frames[-1]] += count
        for name in set(frames):
            total_counts[name] += count
    return Summary(samples, self_counts, total_counts)


def format_summary(title: str, summary: Summary, n: int = 15) -> str:
    lines = [f"{title}: {summary.samples} samples", "  self%   function (leaf)"]
    lines += [f"  {share:6.1%}  {name}" for name, share in summary.top_self(n)]
    lines += ["  total%  function (anywhere on the stack)"]
    lines += [f"  {share:6.1%}  {name}" for name, share in summary.top_total(n)]
    return "\n".join(lines)
