"""The production benchmark end to end at small sizes (`bench/production_bench.py --quick`): a synthetic Rasa
tracker store imported by the importer, production stores scored on DuckDB, and a results file with every row.

Spark is left out here (each Spark job starts a JVM and takes minutes on 2 shared cores); the engines' own tests
compare Spark with DuckDB on the same data. The figures the benchmark reports are checked against the stores it
wrote, counted here with pyarrow (`--keep`), not against numbers the benchmark computed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[2]
IMPORT_SIZES = (40, 150)
SCORE_TURNS = (3_000, 9_000)


def _count(store: Path) -> tuple[int, int]:
    """Turn rows and distinct conversations of a production store, read straight from its Parquet files."""
    files = sorted((store / "turns").rglob("*.parquet"))
    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    ids = ds.dataset([str(f) for f in files], format="parquet").to_table(columns=["conversation_id"]).column(0)
    return rows, len(set(ids.to_pylist()))


def test_quick_benchmark_writes_every_row(tmp_path: Path) -> None:
    out, scratch = tmp_path / "out", tmp_path / "scratch"
    command = [
        sys.executable,
        str(ROOT / "bench" / "production_bench.py"),
        "--quick",
        "--engines",
        "duckdb",
        "--import-sizes",
        ",".join(map(str, IMPORT_SIZES)),
        "--score-turns",
        ",".join(map(str, SCORE_TURNS)),
        "--scratch",
        str(scratch),
        "--out",
        str(out),
        "--keep",
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((out / "production.json").read_text())
    text = (out / "production.md").read_text()

    # every import size has a measured row, and what it says was stored is what the store holds
    assert [row["visits"] for row in result["imports"]] == list(IMPORT_SIZES)
    for row in result["imports"]:
        assert row["status"] == "ok" and row["import_seconds"] > 0 and row["peak_rss_mb"] > 0
        rows, conversations = _count(scratch / f"imported-{row['visits']}")
        assert row["turns_stored"] == rows
        assert row["conversations_stored"] == conversations
        assert row["customer_turns_generated"] >= rows  # conversations still open at the end are not stored
        assert f"| {row['visits']:,} | {row['events']:,} |" in text

    # every store was scored on DuckDB, with the turns and conversations the store holds
    expected = [f"direct-{n}" for n in SCORE_TURNS] + [f"imported-{IMPORT_SIZES[-1]}"]
    assert [row["store"] for row in result["scoring"]] == expected
    for row in result["scoring"]:
        rows, conversations = _count(scratch / row["store"])
        assert (row["engine"], row["turns"], row["conversations"]) == ("duckdb", rows, conversations)
        assert row["seconds"] > 0 and row["kpis"] > 0 and row["tree_peak_rss_mb"] >= row["peak_rss_mb"] * 0.5
        assert f"| {row['store']} | duckdb | {rows:,} | {conversations:,} |" in text
    # a directly built store holds about the turns asked for (whole conversations of ~5 turns)
    for n in SCORE_TURNS:
        assert abs(_count(scratch / f"direct-{n}")[0] - n) < 0.1 * n

    assert [g["engine"] for g in result["growth"]] == ["duckdb"]
    assert "| duckdb |" in text.split("## Growth")[1]
    assert f"{result['target']['turns']:,} turns scored on DuckDB" in text
    assert "Load average" in text and "Machine:" in text and "Rerun:" in text
