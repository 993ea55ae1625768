"""The Spark session the production KPIs run on: started lazily on first use and reused by the process.

`local[*]` by default (every core of this machine, in-process; no cluster needed); a real cluster's master URL
(`spark://host:7077`, `yarn`, `k8s://...`) comes from the `master` argument or the environment variable
HARNESS_SPARK_MASTER. The web UI is off and, in local mode, the driver binds to 127.0.0.1 only.
"""

from __future__ import annotations

import os
from typing import Any

MASTER_ENV = "HARNESS_SPARK_MASTER"
SHUFFLE_ENV = "HARNESS_SPARK_SHUFFLE_PARTITIONS"
DEFAULT_MASTER = "local[*]"

_session: Any = None


def spark_session(master: str | None = None, config: dict[str, str] | None = None) -> Any:
    """The shared SparkSession (pyspark.sql.SparkSession), created on the first call with `master` (default: the
    HARNESS_SPARK_MASTER environment variable, else local[*]) and `config` (extra Spark settings); later calls
    return it as it is. Spark needs Java 17 on the PATH (or JAVA_HOME); pyspark raises its own error without it.
    Shuffle partitions: HARNESS_SPARK_SHUFFLE_PARTITIONS, default 8 in local mode (Spark's 200 is for clusters)."""
    global _session
    if _session is not None and not _session.sparkContext._jsc.sc().isStopped():
        return _session
    from pyspark.sql import SparkSession

    chosen = master or os.environ.get(MASTER_ENV) or DEFAULT_MASTER
    builder = (
        SparkSession.builder.appName("harness-production-kpis")
        .master(chosen)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
    )
    if chosen.startswith("local"):
        # Read when the JVM starts: without it Spark binds its block manager to the first non-loopback address.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = builder.config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1")
        builder = builder.config("spark.sql.shuffle.partitions", os.environ.get(SHUFFLE_ENV, "8"))
    elif os.environ.get(SHUFFLE_ENV):
        builder = builder.config("spark.sql.shuffle.partitions", os.environ[SHUFFLE_ENV])
    for key, value in (config or {}).items():
        builder = builder.config(key, value)
    _session = builder.getOrCreate()
    _session.sparkContext.setLogLevel("ERROR")
    return _session


def stop_spark_session() -> None:
    """Stop the shared session (if started); the next `spark_session` call starts a new one."""
    global _session
    if _session is not None:
        _session.stop()
        _session = None
