"""Configuration of `harness probe` (experiments/probe.yml): which bot to probe, with which probe set, how often,
within which latency budgets, and where results and metrics go. Flags override single values, as for `harness run`.

```yaml
version: 1
target: reference-bot          # the monitored bot's name in the probe log and on the metrics
bot: {kind: reference, url: ..., token_env: REFERENCE_CHANNEL_TOKEN}   # as eval.yml's bot section
probes: experiments/probes/reference.yml   # an eval-set file (format version 1) or folder: the probe set
schedule: {interval_s: 60, jitter_s: 5}    # a cycle every interval_s, each start moved by up to jitter_s
retry_delay_s: 2               # wait before the single retry of a failed probe
turn_timeout_s: 10             # per customer turn
latency_budget_ms: 3000        # the slowest turn of a probe must be within it; per probe: latency_budgets
latency_budgets: {probe-id: 5000}
stale_after_s: null            # how long a result stands; default: outlasts a cycle against a hanging bot
store: sqlite:///experiments/probes.sqlite3   # the probe log (relative sqlite paths: from the repository root)
metrics: {host: 127.0.0.1, port: 9464}        # the Prometheus endpoint
tracking: {uri: sqlite:///experiments/mlflow.db, experiment: reference-bot}
```

The probe set is read with the eval-set loader (harness.project.eval_set): each conversation is one probe, its id
the probe's id, its expected outcome, queue and reply checks what the probe checks.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from harness.errors import InputError
from harness.project.config import BOT_PATHS, BotConfig, ReplayConfig, RunConfig, TrackingConfig, with_overrides
from harness.project.eval_set import Conversation, Outcome, load_eval_sets
from harness.project.paths import ProjectPaths, project_root
from harness.project.problems import load_yaml_model, unknown
from harness.project.validation import check_observable

MAX_SENDER_CHARS = 128
"""The longest sender id the reference channel accepts (bot/bankbot/channel.py); a probe's sender id,
`harness-probe:<target>:<probe id>:<8 hex>` (harness.sources.probes), must fit."""
SENDER_OVERHEAD = len("harness-probe:") + 1 + 1 + 8
"""Characters of a probe's sender id besides the target and the probe id."""
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
"""A target name: no `:`, so a probe's sender id splits back into its parts."""


def _problem(message: str) -> PydanticCustomError:
    return PydanticCustomError("probe_config", message)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


MAX_SECONDS = 86_400.0
"""The longest interval, jitter, delay or timeout accepted (a day; stale_after up to a week): beyond it a value is a
typo, and `inf` would overflow the clock."""


class ScheduleConfig(Section):
    """When cycles run: every `interval_s` seconds, each start moved by a random 0..`jitter_s` seconds (so several
    probers, or several probes of one bot, do not fall into step)."""

    interval_s: float = Field(60.0, gt=0, le=MAX_SECONDS)
    jitter_s: float = Field(5.0, ge=0, le=MAX_SECONDS)

    @model_validator(mode="after")
    def _jitter_below_interval(self) -> ScheduleConfig:
        if self.jitter_s >= self.interval_s:
            raise _problem(
                f"jitter_s ({self.jitter_s:g}) must be less than interval_s ({self.interval_s:g}), or cycles could "
                "start out of order; lower jitter_s"
            )
        return self


class MetricsConfig(Section):
    """Where the Prometheus endpoint listens (loopback by default; port 0 picks a free port)."""

    host: str = "127.0.0.1"
    port: int = Field(9464, ge=0, le=65535)
    allow_remote: bool = False
    """True to listen on a non-loopback address (Prometheus on another machine); the endpoint has no authentication,
    so put it behind your network's controls."""


class ProbeConfig(Section):
    """A validated probe configuration (see the module docstring). Times in seconds, budgets in milliseconds."""

    version: Literal[1]
    target: str
    """The monitored bot's name: the probe log's and the metrics' `target`."""
    bot: BotConfig
    """The bot, as a run configuration's `bot:` section (validated by its kind when connected)."""
    probes: Path
    """The probe set: an eval-set file or folder (relative to the repository root)."""
    schedule: ScheduleConfig = ScheduleConfig()
    retry_delay_s: float = Field(2.0, ge=0, le=MAX_SECONDS)
    """Seconds to wait before the single retry of a failed probe; less than schedule.interval_s."""
    turn_timeout_s: float = Field(10.0, gt=0, le=MAX_SECONDS)
    """Per customer turn: a turn without a reply by then is a `timeout` (the probe fails on `status`)."""
    latency_budget_ms: float = Field(3000.0, gt=0, le=MAX_SECONDS * 1000)
    """The slowest answered turn of a probe must take at most this (milliseconds)."""
    latency_budgets: dict[str, Annotated[float, Field(gt=0)]] = {}
    """Per probe id, a budget replacing `latency_budget_ms` (milliseconds, > 0; ids must be in the probe set)."""
    stale_after_s: float | None = Field(None, gt=0, le=MAX_SECONDS * 7)
    """How long a result stands when no newer result of its probe arrives. Must exceed interval_s + jitter_s here;
    `harness probe` also requires it to outlast the longest cycle against a hanging bot and, when None, sets it
    (harness.sources.probes.with_stale_after); `stale_after` reads None as 3 * interval_s + jitter_s."""
    store: str = "sqlite:///experiments/probes.sqlite3"
    """The probe log's database URL (`sqlite:///path`, relative to the repository root, or `postgresql+psycopg://`)."""
    metrics: MetricsConfig = MetricsConfig()
    tracking: TrackingConfig = TrackingConfig()
    _source: Path | None = PrivateAttr(default=None)

    @field_validator("target")
    @classmethod
    def _plain_name(cls, target: str) -> str:
        if not re.fullmatch(NAME_PATTERN, target) or len(target) > 40:
            raise _problem(
                f"{target!r} is not a target name: up to 40 letters, digits, '_', '.' or '-', starting with a letter "
                "or digit (no ':', which separates the parts of a probe's sender id)"
            )
        return target

    @field_validator("retry_delay_s")
    @classmethod
    def _retry_before_next_cycle(cls, delay: float, info: ValidationInfo) -> float:
        schedule = info.data.get("schedule")
        if schedule is not None and delay >= schedule.interval_s:
            raise _problem(
                f"retry_delay_s ({delay:g}) must be less than schedule.interval_s ({schedule.interval_s:g}): the retry "
                "comes before the next cycle"
            )
        return delay

    @field_validator("stale_after_s")
    @classmethod
    def _outlives_a_cycle(cls, stale: float | None, info: ValidationInfo) -> float | None:
        schedule = info.data.get("schedule")
        if stale is not None and schedule is not None and stale <= schedule.interval_s + schedule.jitter_s:
            raise _problem(
                f"stale_after_s ({stale:g}) must exceed schedule.interval_s + schedule.jitter_s "
                f"({schedule.interval_s + schedule.jitter_s:g}), or results expire between cycles that run on time; "
                "leave it out for 3 * interval_s + jitter_s"
            )
        return stale

    @property
    def source(self) -> Path | None:
        """The file the configuration was read from (None when built in code)."""
        return self._source

    @property
    def stale_after(self) -> timedelta:
        """How long a result stands: `stale_after_s`, else 3 * interval_s + jitter_s."""
        seconds = self.stale_after_s
        if seconds is None:
            seconds = 3 * self.schedule.interval_s + self.schedule.jitter_s
        return timedelta(seconds=seconds)

    def budget_ms(self, probe: str) -> float:
        """The latency budget of probe `probe` in milliseconds: its own, else `latency_budget_ms`."""
        return self.latency_budgets.get(probe, self.latency_budget_ms)

    def resolved(self, root: Path | None = None) -> ProbeConfig:
        """Paths made absolute against `root` (default: the project root): the probe set, relative sqlite URLs
        (store, tracking) and the bot's file settings (BOT_PATHS), as RunConfig.resolved."""
        root = root if root is not None else project_root()
        bot = self.bot.model_copy(
            update={
                key: str((root / value).resolve())
                for key in BOT_PATHS
                if isinstance(value := getattr(self.bot, key, None), str)
            }
        )
        return self.model_copy(
            update={
                "bot": bot,
                "probes": (root / self.probes).resolve(),
                "store": absolute_sqlite(self.store, root),
                "tracking": self.tracking.model_copy(update={"uri": absolute_sqlite(self.tracking.uri, root)}),
            }
        )

    def run_config(self) -> RunConfig:
        """The run configuration the bot kinds take (`harness.bots.kinds.connect`): this bot section, the turn
        timeout, no retries of the HTTP client (the probe's own single retry is the retry: a bot refusing
        connections fails the attempt at once), one conversation at a time."""
        return RunConfig(
            version=1,
            bot=self.bot,
            eval_sets=self.probes,
            replay=ReplayConfig(concurrency=1, turn_timeout_s=self.turn_timeout_s, retries=0),
            tracking=self.tracking,
        )


def absolute_sqlite(url: str, root: Path) -> str:
    """`url` with a relative `sqlite:///path` made absolute against `root` (other URLs unchanged)."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        return "sqlite:///" + str((root / url.removeprefix("sqlite:///")).resolve())
    return url


def load_probe_config(path: Path | None = None, overrides: dict[str, Any] | None = None) -> ProbeConfig:
    """The probe configuration at `path` (default: the project's, harness.yml `probe`) with dotted-key
    `overrides` (`{"schedule.interval_s": 30}`; None values ignored), not yet resolved (call `resolved(root)`).

    Raises InputError naming the file and every problem's location (unknown keys, out-of-range values, jitter_s not
    below interval_s, retry_delay_s not below interval_s, stale_after_s not above interval_s + jitter_s)."""

    def apply_overrides(raw: Any) -> Any:
        return with_overrides(raw, overrides or {}) if isinstance(raw, dict) else raw

    if path is None:
        from harness.project.project import load_project

        path = load_project().probe
    config = load_yaml_model(path, ProbeConfig, "probe configuration", apply_overrides)
    config._source = path
    return config


def load_probe_set(
    config: ProbeConfig,
    *,
    vocabulary: Any = None,
    observes: frozenset[str] | None = None,
    root: Path | None = None,
) -> tuple[Conversation, ...]:
    """The probes of `config.probes` (resolved or relative to `root`), in file order.

    Checked with the eval-set loader against `vocabulary` (a harness.bots.base.Vocabulary, or anything with
    `intents`, `queues` and `rules`; None: the reference bot's, from intents/ and bot/escalation.yml under `root`)
    and, when `observes` is given, against what the bot reports (reply checks it cannot judge, escalated probes
    for a bot that does not report handoffs). Also checked: the ids in `latency_budgets` are probes of the set (with
    a did-you-mean) and each probe's sender id fits MAX_SENDER_CHARS.
    harness.sources.probes.load_probes passes the configured bot's vocabulary and observations.

    Raises InputError listing every problem with its file and location.
    """
    root = root if root is not None else project_root()
    location = config.probes if config.probes.is_absolute() else root / config.probes
    if vocabulary is None:
        from harness.project.bot_config import load_queue_config
        from harness.project.intents import load_catalog

        paths = ProjectPaths(root)
        queues = load_queue_config(paths.escalation_policy)
        intents: tuple[str, ...] = tuple(load_catalog(paths.intents, known_queues=queues.queues).names())
        queue_names, rules = tuple(queues.queues), tuple(queues.rules)
    else:
        intents, queue_names, rules = tuple(vocabulary.intents), tuple(vocabulary.queues), tuple(vocabulary.rules)
    suite = load_eval_sets(location, intents=intents, queues=queue_names, rules=rules)
    if observes is not None:
        check_observable(suite, observes, config.bot.kind)
    where = str(config.source or "probe configuration")
    ids = [item.conversation.id for item in suite.conversations]
    problems = [
        f"{where}: latency_budgets.{probe}: {unknown('probe', probe, ids)}"
        for probe in config.latency_budgets
        if probe not in ids
    ]
    for item in suite.conversations:
        probe = item.conversation
        length = SENDER_OVERHEAD + len(config.target) + len(probe.id)
        if length > MAX_SENDER_CHARS:
            problems.append(
                f"{item.source}: {probe.id}: id: the probe's sender id would be {length} characters, over the "
                f"{MAX_SENDER_CHARS} a bot channel accepts; shorten the probe id or the target"
            )
        if observes is not None and "handoff" not in observes and probe.expected.outcome is Outcome.escalated:
            problems.append(
                f"{item.source}: {probe.id}: expected.outcome: a {config.bot.kind} bot does not report handoffs, so "
                "an escalated probe cannot be judged; map the bot's handoffs in its configuration or drop the probe"
            )
    if problems:
        raise InputError(f"{len(problems)} problem(s) in the probe set", problems)
    return tuple(item.conversation for item in suite.conversations)
