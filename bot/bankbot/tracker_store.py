"""The bot's conversation store: Rasa's SQL tracker store, configured by one SQLAlchemy URL, that opens handoff
tickets once the turn that created them is stored.

bot/endpoints.yml selects it with `type: bankbot.tracker_store.SQLTrackerStore` and `url: ${TRACKER_STORE_URL}`:
`sqlite:////abs/path/tracker.sqlite3` (the default `harness bot serve` and BotServer use) or
`postgresql://user:password@host:5432/db`. Rasa creates the `events` table itself. Conversations, their slots and
so their handoffs survive a restart of the bot.

Differences from Rasa's own `type: SQL` store (which also accepts a full URL as `url`):
- a bad or unreachable URL stops the Rasa server at start-up with a message naming it (password hidden), where Rasa
  would wait for the database forever, or, for a missing driver, silently keep conversations in memory;
- after saving a turn it calls `HandoffStore.settle` for the conversation: the ticket its tracker names becomes
  open for agents and pending tickets of failed turns are deleted; at start-up it does the same for every
  conversation with a pending ticket (a crash between writing the ticket and storing the turn);
- the harness's synthetic probe conversations (sender ids starting with `harness-probe:`, a few a minute for as long
  as a prober runs) are kept PROBE_TICKET_RETENTION, like their tickets: saving a probe conversation deletes the
  events of probe conversations older than that (at most once every PRUNE_EVERY per process), so a prober running
  for months does not grow the store. Customers' conversations are never touched.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from rasa.core.tracker_store import SQLTrackerStore as RasaSQLTrackerStore
from rasa.shared.exceptions import RasaException

from bankbot.handoff_store import (
    PROBE_SENDER_PREFIX,
    PROBE_TICKET_RETENTION,
    HandoffStore,
    HandoffStoreError,
    is_probe_conversation,
)

logger = logging.getLogger(__name__)

URL_ENV = "TRACKER_STORE_URL"
HANDOFF_SLOT = "handoff_ticket"
PRUNE_EVERY_S = 600.0
"""The least time between two deletions of old probe conversations by one store."""


class TrackerStoreConfigError(RasaException):
    """The tracker store's URL is missing, malformed or unreachable, or the ticket store cannot be opened."""


def sqlite_url(path: Path | str) -> str:
    """The SQLAlchemy URL of an SQLite file (made absolute)."""
    return f"sqlite:///{Path(path).resolve()}"


class SQLTrackerStore(RasaSQLTrackerStore):
    """Rasa's SQL tracker store from one URL (endpoints.yml `url:`), settling handoff tickets after every save."""

    def __init__(self, domain: Any = None, host: str | None = None, event_broker: Any = None, **kwargs: Any) -> None:
        url = _checked_url(host)
        try:
            super().__init__(domain=domain, host=url, event_broker=event_broker, **kwargs)
            self.handoffs = HandoffStore()
            self._next_prune = 0.0
        except (ImportError, AttributeError, HandoffStoreError) as exc:
            # Rasa answers ImportError and AttributeError from a custom store by keeping conversations in memory.
            raise TrackerStoreConfigError(f"tracker store {_shown(url)}: {type(exc).__name__}: {exc}") from exc
        for conversation_id in dict.fromkeys(self.handoffs.pending_conversations()):
            self._settle(conversation_id, self._stored_ticket(conversation_id))

    async def save(self, tracker: Any) -> None:
        """Store the turn's events, then open the ticket the tracker names (if pending) and drop stale pending ones."""
        await super().save(tracker)
        self._settle(tracker.sender_id, tracker.get_slot(HANDOFF_SLOT))
        if is_probe_conversation(tracker.sender_id) and time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + PRUNE_EVERY_S
            self.prune_probes(time.time() - PROBE_TICKET_RETENTION.total_seconds())

    def prune_probes(self, before: float) -> int:
        """Delete the events of probe conversations whose events are all older than `before` (Unix seconds);
        returns how many events were deleted. Errors are logged, never raised (the turn is stored)."""
        try:
            with self.session_scope() as session:
                event = self.SQLEvent
                probe = event.sender_id.startswith(PROBE_SENDER_PREFIX, autoescape=True)
                recent = session.query(event.sender_id).filter(probe, event.timestamp >= before).distinct()
                deleted = (
                    session.query(event)
                    .filter(probe, event.timestamp < before, event.sender_id.notin_(recent))
                    .delete(synchronize_session=False)
                )
                session.commit()
        except Exception:  # noqa: BLE001 - the turn is stored; the next prune tries again
            logger.exception("could not delete old probe conversations")
            return 0
        if deleted:
            logger.info("deleted %d events of probe conversations older than a day", deleted)
        return int(deleted)

    def _settle(self, conversation_id: str, ticket_id: str | None) -> None:
        try:
            opened, deleted = self.handoffs.settle(conversation_id, ticket_id)
        except Exception:  # noqa: BLE001 - the turn is stored; the next turn or restart settles again
            logger.exception("could not settle the handoff tickets of conversation %s", conversation_id)
            return
        if opened:
            logger.info("ticket %s of conversation %s is open", ticket_id, conversation_id)
        if deleted:
            logger.warning(
                "deleted %d pending ticket(s) of conversation %s: their turn failed", deleted, conversation_id
            )

    def _stored_ticket(self, conversation_id: str) -> str | None:
        """The handoff ticket the stored conversation names last, if any."""
        with self.session_scope() as session:
            rows = (
                session.query(self.SQLEvent.data)
                .filter(self.SQLEvent.sender_id == conversation_id, self.SQLEvent.type_name == "slot")
                .order_by(self.SQLEvent.id)
                .all()
            )
        value = None
        for (data,) in rows:
            event = json.loads(data)
            if event.get("name") == HANDOFF_SLOT:
                value = event.get("value")
        return value


def _checked_url(url: str | None) -> str:
    import sqlalchemy as sa

    if not url or not str(url).strip():
        raise TrackerStoreConfigError(
            f"no tracker store URL: set ${URL_ENV} (bot/endpoints.yml reads it), e.g. "
            f"sqlite:////path/to/tracker.sqlite3 or postgresql://user:password@host:5432/db"
        )
    url = str(url).strip()
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    try:
        parsed = sa.engine.make_url(url)
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy raises ArgumentError and ValueError for bad URLs
        raise TrackerStoreConfigError(
            f"${URL_ENV} is not an SQLAlchemy URL ({exc}); e.g. sqlite:////path/to/tracker.sqlite3 or "
            f"postgresql://user:password@host:5432/db"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise TrackerStoreConfigError(f"{_shown(url)}: name a file; an in-memory database forgets everything")
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = sa.create_engine(parsed)
        with engine.connect():
            pass
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any driver error: missing module, refused connection, bad password
        raise TrackerStoreConfigError(
            f"cannot connect to the tracker store {_shown(url)}: {type(exc).__name__}: {str(exc).strip()}"
        ) from None
    return url


def _shown(url: str) -> str:
    """The URL with its password hidden."""
    import sqlalchemy as sa

    try:
        return repr(sa.engine.make_url(url))
    except Exception:  # noqa: BLE001
        return "(unparseable URL)"
