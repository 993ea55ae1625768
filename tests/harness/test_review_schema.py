"""The review database's schema is versioned with Alembic: on SQLite and PostgreSQL, a new database gets exactly
the models' schema, one made before migrations existed is upgraded with its reviews kept, and one made by a
newer harness is refused untouched."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from postgres_server import create_database, postgres  # noqa: F401 - postgres is a fixture
from sqlalchemy.orm import Session

from harness.errors import InputError
from harness.review.database import BASELINE, alembic_config, connect, database_url, migrate
from harness.review.store import Base, Dialog, Review


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path: Path) -> str:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'review.db'}"
    return create_database(request.getfixturevalue("postgres"), f"schema_{uuid.uuid4().hex[:12]}")


def revision(engine: sa.Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head() -> str:
    with sa.create_engine("sqlite://").connect() as connection:
        return str(ScriptDirectory.from_config(alembic_config(connection)).get_current_head())


def schema_differences(engine: sa.Engine) -> list[object]:
    with engine.connect() as connection:
        return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


def test_a_new_database_gets_exactly_the_models_schema_at_the_newest_revision(url: str) -> None:
    engine = connect(url)
    assert schema_differences(engine) == []
    assert revision(engine) == head() != BASELINE
    connect(url)  # opening it again changes nothing
    assert revision(engine) == head()


def test_every_migration_goes_down_to_the_baseline_and_up_again(url: str) -> None:
    engine = connect(url)
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), BASELINE)
    assert revision(engine) == BASELINE and schema_differences(engine) != []
    with engine.begin() as connection:
        migrate(connection)
    assert revision(engine) == head() and schema_differences(engine) == []


def test_a_database_made_before_migrations_is_upgraded_with_its_reviews_kept(url: str) -> None:
    # The first release created its tables with create_all: the baseline schema, and no version table.
    old = sa.create_engine(database_url(url))
    with old.begin() as connection:
        migrate(connection, BASELINE)
        connection.execute(sa.text("DROP TABLE alembic_version"))
        tables = sa.MetaData()
        tables.reflect(connection)
        when = datetime(2026, 11, 20, 9, 30)
        connection.execute(
            tables.tables["runs"].insert(),
            {"id": 1, "run_id": "r1", "source": "runs/r1", "conversations": 2, "selection": {}, "loaded_at": when},
        )
        dialog = {
            "run_pk": 1,
            "actual_outcome": "self_served",
            "priority": 4,
            "sampled": False,
            "turns": [],
        }
        flags = [
            {"rule": "fallback", "reason": "turn 0: the bot did not understand (fallback)"},
            {"rule": "repetition", "reason": "turns 0 and 1: the customer repeated themselves (similarity 1.00)"},
            {"rule": "fallback", "reason": "turn 2: the bot did not understand (fallback)"},
        ]
        connection.execute(
            tables.tables["dialogs"].insert(),
            [
                {**dialog, "id": 1, "conversation_id": "c1", "flags": flags},
                {**dialog, "id": 2, "conversation_id": "c2", "flags": [], "sampled": True},
            ],
        )
        connection.execute(
            tables.tables["users"].insert(),
            {"id": 1, "username": "ann", "password_hash": "x", "role": "analyst", "active": True, "created_at": when},
        )
        connection.execute(
            tables.tables["reviews"].insert(),
            {
                "dialog_id": 1,
                "analyst_id": 1,
                "reference": False,
                "ratings": {"understood": "no"},
                "critical_errors": [],
                "corrected_intents": {"0": "block_card"},
                "correct_outcome": "self_served",
                "note": "kept across the upgrade",
                "created_at": when,
                "updated_at": when,
            },
        )
    assert revision(old) is None

    engine = connect(url)
    assert revision(engine) == head() and schema_differences(engine) == []
    with Session(engine) as session:
        first, second = session.scalars(sa.select(Dialog).order_by(Dialog.id)).all()
        assert sorted(flag.rule for flag in first.flag_rows) == ["fallback", "repetition"]
        assert second.flag_rows == [] and first.flag_rules == ["fallback", "repetition"]
        review = session.scalar(sa.select(Review))
        assert review is not None and review.note == "kept across the upgrade"
        assert review.corrected_intents == {"0": "block_card"}


def test_a_database_from_a_newer_harness_is_refused_untouched(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'review.db'}"
    engine = connect(url)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(InputError, match="made by a newer version of the harness") as refused:
        connect(url)
    assert "schema revision 9999" in str(refused.value)
    assert revision(engine) == "9999"


def test_a_database_shared_with_another_application_gets_the_review_tables_beside_its_own(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    with sa.create_engine(url).begin() as connection:
        connection.execute(sa.text("CREATE TABLE invoices (id integer primary key)"))
    engine = connect(url)
    assert revision(engine) == head() and "invoices" in sa.inspect(engine).get_table_names()
