"""The base stream: what a Maesn list request carries, and one read per partition.

The stream answers what the SDK asks of it: the request's shape (``url_base``, the
keys, ``get_url_params``), ``post_process``, and ``get_records``, which has its table
(table.py) open the partition's :class:`~read.PartitionRead` and passes its records up. Everything a read
knows lives in that object; below the stream, modules get values and a few small
collaborators and never call back into it: fetch.py (one request), plan.py (where a
read starts), read.py (the read), table.py (the reads of one table: plans, bookmarks,
line rows, reconcile).
"""

from __future__ import annotations

import datetime as dt
import typing as t
from functools import cached_property

from singer_sdk import RESTStream, StreamSchema
from singer_sdk.authenticators import SimpleAuthenticator
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import RemoveRecordTransform
from singer_sdk.singerlib import ActivateVersionMessage
from singer_sdk.singerlib.catalog import REPLICATION_FULL_TABLE
from singer_sdk.streams.rest import PageContext

from tap_maesn_qonto import numbers, reconcile
from tap_maesn_qonto.fetch import Fetcher
from tap_maesn_qonto.lineitems import LineBuffer, LineItemsStream
from tap_maesn_qonto.pages import PageRequest, record_keys
from tap_maesn_qonto.plan import Planner
from tap_maesn_qonto.read import PartitionRead
from tap_maesn_qonto.retries import RetryPolicy
from tap_maesn_qonto.schemas import SCHEMAS_DIR
from tap_maesn_qonto.sdk_compat import PlainRecordMessages, carry_version, partition_states
from tap_maesn_qonto.shaping import ShapeIssues, Shaper
from tap_maesn_qonto.table import Readers, TableSync
from tap_maesn_qonto.timestamps import filter_timestamp, parse_timestamp

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    import requests
    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context

    from tap_maesn_qonto.runtime import RunContext

#: A STATE message every this many records ...
RESUMABLE_STATE_EVERY = 1000
#: ... or every this many per account, if more: a STATE holds every account's partition,
#: so its size (and the SDK's deep copy of it) grows with accounts; this keeps STATE
#: bytes per record flat (1 000 accounts: 3 STATE messages of ~2 MB, not 30).
STATE_RECORDS_PER_ACCOUNT = 10


class MaesnStream(PlainRecordMessages, RESTStream[PageRequest]):
    """A Maesn accounting list endpoint, one state partition per connected account."""

    schema = StreamSchema(SCHEMAS_DIR)
    primary_keys: t.ClassVar[tuple[str, ...]] = ("id",)
    replication_key = "updatedDate"
    # A window read emits records in updatedDate order (window.py); its bookmark is
    # set by the read (read.py), never past a record not yet written.
    is_sorted = True
    check_sorted = False
    reads_own_bookmarks = True
    # post_process emits exactly the schema's shape, so the SDK's conformance pass
    # (its costliest per-record step) has nothing left to do.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    #: Other names the API has used for ``id`` on this resource; emitted beside it.
    id_aliases: t.ClassVar[tuple[str, ...]] = ()

    def __init__(self, tap: Tap, *, run: RunContext) -> None:
        self.run = run
        super().__init__(tap)
        self.STATE_MSG_FREQUENCY = max(
            RESUMABLE_STATE_EVERY, STATE_RECORDS_PER_ACCOUNT * len(run.accounts)
        )
        self._shape_issues = ShapeIssues()
        self._shaper = Shaper(self.schema, self._shape_issues)
        self._sync: TableSync | None = None  # this run's sync of the stream's table
        self.keys = record_keys(self.path, self.id_aliases)

    # --- what every request carries -----------------------------------------------------

    @property
    def url_base(self) -> str:
        return str(self.config["api_url"]).rstrip("/")

    @property
    def authenticator(self) -> SimpleAuthenticator:
        # The tenant key; the account key depends on the partition (get_http_request).
        return SimpleAuthenticator(auth_headers={"X-API-KEY": self.config["api_key"]})

    @property
    def http_headers(self) -> dict[str, str]:
        return {"Accept": "application/json", "User-Agent": self.user_agent}

    @property
    def requests_session(self) -> requests.Session:
        return self.run.session

    @property
    def partitions(self) -> list[dict]:
        # One state partition per connected account, keyed by its non-secret label.
        return [{"account_label": label} for label in self.run.accounts]

    def get_http_request(self, *, page: PageContext[PageRequest]) -> t.Any:
        request = super().get_http_request(page=page)
        label = (page.stream_context or {})["account_label"]
        request.headers["X-ACCOUNT-KEY"] = self.run.accounts[label].key
        return request

    def get_url_params(self, context: Context | None, next_page_token: PageRequest | None) -> dict:
        del context
        query = next_page_token or PageRequest(page=1, limit=int(self.config["page_size"]))
        params: dict[str, t.Any] = {"page": query.page, "limit": query.limit}
        if query.since is not None:
            params["lastModifiedAt"] = filter_timestamp(query.since)
        if query.order_field is not None:
            params["orderField"] = query.order_field
            params["orderDir"] = "DESC" if query.descending else "ASC"
        return params

    def get_replication_key_signpost(self, context: Context | None = None) -> None:
        # No cap from this machine's clock: the read caps bookmarks at the server's.
        del context

    def prepare(self, label: str, request: PageRequest) -> requests.PreparedRequest:
        """The HTTP request for ``request`` of account ``label``, from the SDK's hooks."""
        context = {"account_label": label}
        http = self.get_http_request(
            page=PageContext(stream_context=context, next_page_token=request)
        )
        return self.build_prepared_request(
            method=http.method, url=http.url, params=http.encode_params(), headers=http.headers
        )

    @cached_property
    def fetcher(self) -> Fetcher:
        return Fetcher(
            run=self.run,
            stream=self.name,
            path=self.path,
            api_url=self.url_base,
            api_key=str(self.config["api_key"]),
            timeout=float(self.config["request_timeout"]),
            policy=RetryPolicy(
                max_retries=int(self.config["max_retries"]),
                max_retry_seconds=float(self.config["max_retry_seconds"]),
            ),
            prepare=self.prepare,
            logger=self.logger,
        )

    @cached_property
    def planner(self) -> Planner:
        return Planner(
            self.run.ahead,
            lambda label, request, retries: self.fetcher.page(label, request, retries=retries),
            stream=self.name,
            page_size=int(self.config["page_size"]),
            max_concurrency=self.run.max_concurrency,
        )

    # --- the table and its partitions -------------------------------------------------

    def table(self) -> TableSync:
        """This sync's table: its version and reconcile, planned before any partition."""
        if self._sync is None:
            states = partition_states(self, "account_label")  # one per account
            started = dt.datetime.now(dt.UTC)
            plan = reconcile.plan(
                states.values(), every_days=reconcile.interval_days(self.config), now=started
            )
            children = [c for c in self.child_streams if isinstance(c, LineItemsStream)]
            for stream in (self, *children):
                carry_version(stream, plan.version)
            self._sync = TableSync(
                name=self.name,
                run=self.run,
                table=reconcile.TableRun(plan, states, started),
                readers=Readers(
                    fetcher=self.fetcher,
                    planner=self.planner,
                    keys=self.keys,
                    page_size=int(self.config["page_size"]),
                    details=str(self.config.get("fetch_details", "auto")),
                    records_keep_lines=bool(
                        self.selected and self.mask.get(("properties", "lineItems"), True)
                    ),
                ),
                lines=LineBuffer([c for c in children if c.selected]),
                replication_key=(
                    None
                    if self.replication_method == REPLICATION_FULL_TABLE
                    else self.replication_key
                ),
                lookback=dt.timedelta(seconds=int(self.config["lookback_window"])),
                start_date=parse_timestamp(str(start))
                if (start := self.config.get("start_date"))
                else None,
                logger=self.logger,
                state_every=self.STATE_MSG_FREQUENCY,
            )
            if plan.reconciling:
                self.logger.info(
                    "%s: reconciling (table version %d): every account is read whole, and "
                    "rows this pipeline loaded that Maesn no longer lists are retired, if "
                    "every read proves them gone.",
                    self.name,
                    plan.version,
                )
        return self._sync

    def plan_ahead(self, context: Context, order: int) -> None:
        """Have the partition's first requests fetched ahead of its turn (prefetch.py)."""
        self.table().plan_ahead(context["account_label"], order)

    def get_records(self, context: Context | None) -> Iterable[dict]:
        """One account's records, read by its own :class:`~read.PartitionRead`."""
        if not context:
            return  # no account in this shard: nothing to read
        sync, label = self.table(), context["account_label"]
        read = sync.open(label)
        try:
            if label in self.run.failed:
                read.skip(f"account {label} failed earlier in this run")
            else:
                for batch in read.batches():
                    yield from batch
        finally:  # what was fetched ahead for this partition and not read is not needed
            self.run.ahead.discard((self.name, label))
        last = label == self.partitions[-1]["account_label"]
        sync.end(read, last=last)
        if last:
            self._end_table(sync)

    def bookmark_after_record(self, record: dict, context: Context | None) -> None:
        """After each record: the partition's bookmark is what its read says (read.py)."""
        assert self._sync is not None  # records come only from get_records
        self._sync.written((context or {})["account_label"], record)

    def store_resumable_states(self) -> None:
        """Before a STATE on a stop: every partition read so far as its read leaves it."""
        if self._sync is not None:
            self._sync.store_all()

    def reconcile_left_undone(self) -> tuple[str, str] | None:
        """What this run's reconcile of the table did not retire, and why (None: all it could)."""
        return self._sync.table.retired_nothing if self._sync is not None else None

    @property
    def reconciled(self) -> bool:
        """Whether this run's reconcile retired what the table no longer holds."""
        return self._sync is not None and self._sync.table.activated

    def reads(self) -> list[PartitionRead]:
        """This run's reads of the stream's partitions so far (the tap's verdict)."""
        return list(self._sync.reads.values()) if self._sync is not None else []

    def _end_table(self, sync: TableSync) -> None:
        """After the last partition: retire what the reconcile proved gone (table.py)."""
        for line in self._shape_issues.lines():
            self.logger.warning("%s: %s", self.name, line)
        line_streams = sync.lines.streams
        parent, lines = sync.finish(
            with_lines=bool(line_streams), every_days=reconcile.interval_days(self.config)
        )
        for stream in [self] * parent + line_streams * lines:
            for stream_map in stream.stream_maps:  # under every name its stream maps give
                if not isinstance(stream_map, RemoveRecordTransform):
                    self.write_message(
                        ActivateVersionMessage(
                            stream=stream_map.stream_alias, version=sync.table.version
                        )
                    )

    @property
    def emit_activate_version_messages(self) -> bool:
        return False  # _end_table sends its own, after the rows, only when proven

    def generate_child_contexts(
        self, record: dict, context: Context | None
    ) -> Iterable[Context | None]:
        """No context for the SDK to sync children with: table.py writes the line rows."""
        sync = self.table()
        if not sync.lines.streams:
            return
        if self.records_need_the_sdk and not self.stream_maps[0].get_filter_result(record):
            return  # a stream map filtered the parent out (without one, nothing filters)
        sync.add_lines(record, (context or {})["account_label"])
        yield from ()

    # --- records ------------------------------------------------------------------------

    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        """Shape a record to the schema, with the fields every record carries."""
        for alias in self.id_aliases:  # accept either name, emit both
            if row.get("id") is None:
                row["id"] = row.get(alias)
            if row.get(alias) is None:
                row[alias] = row["id"]
        # Set before shaping: the record then has exactly the schema's keys (the fast path).
        account = self.run.accounts[(context or {})["account_label"]]
        row["target_system"] = account.target_system
        row["account_label"] = account.label
        shaped = self._shaper.convert(row)  # the compiled object shaper: row is a dict
        if self.records_need_the_sdk:  # stream maps compute with numbers (numbers.py)
            return numbers.with_decimals(shaped)
        return shaped
