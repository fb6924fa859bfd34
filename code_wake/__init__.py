"""code_wake: record what a Python program does and what goes wrong into a SQL database.

The public API is what this module exports; everything else may change.
"""

from ._version import __version__
from .config import Config
from .errors import CodeWakeError, ConfigError, StoreError, StoreUnavailableError
from .event import EventPolicy, PendingEvent
from .logging import CodeWakeHandler
from .process import Process
from .query import BucketCount, DailyCount, EventFilter, ProcessFilter, PruneReport, TraceGroup
from .queue_store import QueueSettings, QueueStats, QueueStore
from .records import (
    AppRecord,
    AppVsnRecord,
    DataItem,
    EnvironmentRecord,
    EventRecord,
    ProcessInfo,
    ProcessRecord,
    StackframeRecord,
    StacktraceRecord,
)
from .store import AbstractStore, Store

__all__ = [
    "AbstractStore",
    "AppRecord",
    "AppVsnRecord",
    "BucketCount",
    "CodeWakeError",
    "CodeWakeHandler",
    "Config",
    "ConfigError",
    "DailyCount",
    "DataItem",
    "EnvironmentRecord",
    "EventFilter",
    "EventPolicy",
    "EventRecord",
    "PendingEvent",
    "Process",
    "ProcessFilter",
    "ProcessInfo",
    "ProcessRecord",
    "PruneReport",
    "QueueSettings",
    "QueueStats",
    "QueueStore",
    "StackframeRecord",
    "StacktraceRecord",
    "Store",
    "StoreError",
    "StoreUnavailableError",
    "TraceGroup",
    "__version__",
]
