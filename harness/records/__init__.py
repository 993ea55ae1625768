"""The turn table (columns, statuses, observations; `table`) and the run folder that holds it (`run_folder`)."""

from harness.records.table import (
    ALL_OBSERVATIONS,
    COLUMNS,
    FAILED_STATUSES,
    RECORDS_VERSION,
    Observation,
    TurnStatus,
    read,
    to_frame,
    write,
)

__all__ = [
    "ALL_OBSERVATIONS",
    "COLUMNS",
    "FAILED_STATUSES",
    "RECORDS_VERSION",
    "Observation",
    "TurnStatus",
    "read",
    "to_frame",
    "write",
]
