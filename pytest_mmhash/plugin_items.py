"""What every item the plugin collects shares: failures as readable text, the golden location."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


class ReportFailure(Exception):
    """A check failure whose message is the whole report (printed as is, without a traceback)."""


class ReadableItem(pytest.Item):
    """A plugin item: our failures and one-line errors as plain text, anything else (a bug in an
    implementation) with its traceback."""

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        """The report of a :class:`ReportFailure`, the one line of our errors, else pytest's."""
        from .errors import MmhashError

        if isinstance(excinfo.value, ReportFailure):
            return str(excinfo.value)
        if isinstance(excinfo.value, MmhashError):
            return f"{self.name}: {type(excinfo.value).__name__}: {excinfo.value}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, None, str]:
        """Location shown in reports: the golden file and the item's name."""
        return self.path, None, f"golden {self.name}"
