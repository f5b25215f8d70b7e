"""Logging for drc's processes: every decision is a structured line (design notes §8 habit).

On a terminal, lines read as text; otherwise (a log file, a collector) each line is one JSON
object carrying the fields the code attached: ``drc`` on decisions (service, replica, action,
reason, severity, incident, workflow and run id: ``workflows/telemetry.py``), and
``temporal_workflow``/``temporal_activity`` from the Temporal SDK.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(stream: TextIO | None = None, json_lines: bool | None = None) -> None:
    """Log to ``stream`` (stderr): JSON lines unless it is a terminal (or as ``json_lines`` says).

    Idempotent: calling it again replaces the handler it installed before.
    """
    stream = stream or sys.stderr
    if json_lines is None:
        json_lines = not stream.isatty()
    handler = logging.StreamHandler(stream)
    handler.set_name("drc")
    if json_lines:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                datefmt="%Y-%m-%dT%H:%M:%S%z",
            )
        )
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if h.get_name() != "drc"] + [handler]
    root.setLevel(logging.INFO)
