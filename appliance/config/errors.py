"""The one error the config package raises, listing every problem found."""

from __future__ import annotations


class ConfigError(Exception):
    """The config cannot be used. Each problem starts with the dotted key (or file) at fault,
    and all problems are collected, so one edit-and-retry round fixes them all."""

    def __init__(self, problems: tuple[str, ...]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
