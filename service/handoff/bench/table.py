"""The benchmark's report: sections of (what, figure) rows, and the line a script reads."""

from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["Section", "ratio_line", "render"]


@dataclass
class Section:
    title: str
    rows: list[tuple[str, str]] = field(default_factory=list)

    def add(self, what: str, figure: str) -> None:
        self.rows.append((what, figure))


def ratio_line(ratio: float) -> str:
    """The report's last line: `handoff/pipe throughput ratio: R`, R with two decimals."""
    return f"handoff/pipe throughput ratio: {ratio:.2f}"


def render(title: str, sections: Sequence[Section], ratio: float) -> str:
    """The table: a title, each section with its rows aligned (a figure that runs over
    several lines keeps its indent), and `ratio_line` last."""
    width = max([len(what) for s in sections for what, _ in s.rows] or [0])
    lines = [title, "=" * len(title)]
    for section in sections:
        lines += ["", section.title, "-" * len(section.title)]
        for what, figure in section.rows:
            first, *more = figure.splitlines() or [""]
            lines.append(f"  {what:<{width}}  {first}".rstrip())
            lines += [f"  {'':<{width}}  {line}".rstrip() for line in more]
    lines += ["", ratio_line(ratio)]
    return "\n".join(lines)
