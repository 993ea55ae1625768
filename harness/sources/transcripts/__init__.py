"""Production transcripts: a Rasa bot's logged events (its SQL tracker store, tracker JSON exports, or the reference
bot's own stores) read into the production store (`harness.records.production`) as canonical turn rows.

Modules, in the order the data flows: `events` (raw events with their position), `sql_store` and `tracker_json`
(the readers), `reference` (the reference bot's stores), `splitting` (events -> conversations), `rows` (one
conversation -> production rows, masked), `importer` (`import_events`: incremental, chunked, with a report).
"""

from harness.sources.transcripts.importer import ImportSummary, import_events

__all__ = ["ImportSummary", "import_events"]
