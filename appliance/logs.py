"""Log observers: one plain line per event on a terminal, JSON lines when asked."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from typing import IO, Any

from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    formatEvent,
    globalLogBeginner,
)
from zope.interface import implementer

LEVELS = {"debug": LogLevel.debug, "info": LogLevel.info, "warn": LogLevel.warn, "error": LogLevel.error}
_HIDDEN = {"log_logger", "log_source", "log_format", "log_level", "log_namespace", "log_time",
           "log_system", "log_flattened", "log_trace", "log_io", "log_failure", "log_text",
           "log_observer", "log_legacy", "message", "format", "isError", "system", "time"}


@implementer(ILogObserver)
class LineObserver:
    def __init__(self, stream: IO[str], as_json: bool, fields: Mapping[str, str]) -> None:
        self._stream = stream
        self._json = as_json
        self._fields = dict(fields)

    def __call__(self, event: dict[str, Any]) -> None:
        level = event.get("log_level", LogLevel.info).name
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(event.get("log_time", time.time())))
        text = formatEvent(event)
        failure = event.get("log_failure")
        if self._json:
            record = {"time": stamp, "level": level, "logger": event.get("log_namespace"), "msg": text}
            record.update(self._fields)
            record.update({k: _plain(v) for k, v in event.items() if k not in _HIDDEN and not k.startswith("log_")})
            if failure is not None:
                record["traceback"] = failure.getTraceback()
            line = json.dumps(record, default=str)
        else:
            line = f"{stamp} {level:<5} {text}"
            if failure is not None:
                line += "\n" + failure.getTraceback()
        self._stream.write(line + "\n")
        self._stream.flush()


def _plain(value: Any) -> Any:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def start_logging(level: str, formatter: str, fields: Mapping[str, str], stream: IO[str] = sys.stderr) -> None:
    predicate = LogLevelFilterPredicate(defaultLogLevel=LEVELS.get(level, LogLevel.info))
    observer = LineObserver(stream, formatter in ("json", "logstash"), fields)
    globalLogBeginner.beginLoggingTo(
        [FilteringLogObserver(observer, [predicate])], redirectStandardIO=False
    )
