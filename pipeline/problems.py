"""Warnings and errors found while reading one transcript, each with the line it belongs to."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    """One warning or error; `line` is 1-based in the file, None when not bound to a line."""

    line: int | None
    message: str


@dataclass
class Problems:
    """The warnings and errors collected by one reading step."""

    warnings: list[Problem] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)

    def warn(self, message: str, line: int | None = None) -> None:
        """Add a warning."""
        self.warnings.append(Problem(line, message))

    def error(self, message: str, line: int | None = None) -> None:
        """Add an error."""
        self.errors.append(Problem(line, message))

    def extend(self, other: Problems) -> None:
        """Add everything `other` collected."""
        self.warnings.extend(other.warnings)
        self.errors.extend(other.errors)


def snippet(text: str, width: int = 60) -> str:
    """`text` shortened for a message."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
