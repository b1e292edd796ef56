"""``geocode_households``: give a fixed selection of households coordinates.

Shape of a run:

* ``validate`` (API, creation transaction) checks the params and *fixes the
  selection* by writing ``geocode_selections`` rows ``(job_id, seq,
  household_id)``, so the total is exact and a resumed or retried attempt
  walks the same list even while imports change the households table
  (:mod:`cocoa.jobtypes.geocode_selection`).
* Above ``max_items_per_job`` the selection is a job group (``split``): the
  snapshot stays under the group's id and each child walks its ``item_range``
  of it (see :func:`cocoa.jobtypes.geocode_selection.slice_of`); the memo
  and its seeding are per child.
* ``run_batch`` reads the next ``geocode_batch_size`` selection rows, asks the
  provider (chain) *outside* any transaction, and returns a Batch whose
  ``write`` stores the results; the engine commits it with checkpoint
  ``{"seq": next}``.
* The same question goes to a remote provider once per job: the chain memo
  dedupes within and across batches, and after a resume it is seeded from
  what this job already stored for earlier selection rows.
* A failed attempt (no_match, tie, error) never overwrites a ``matched``
  household: the update is guarded in SQL, so even a concurrent job cannot.
* A placed household is linked to the parcel containing its point, in the
  statement that stores the point (``location``; none if no parcel contains
  it), unless it is linked by address or building, which the same statement
  keeps (see :mod:`cocoa.domain.parcel_links`). So parcels imported before
  the geocoding link what it places; the parcels are kept in memory for the
  run and reloaded when a batch's transaction sees they changed.

Outage decision: when the provider is down past its retry budget mid-batch,
the households finished before the outage (the in-order prefix) are returned
as a normal Batch and committed with their checkpoint; the *next* call
raises :class:`JobFailed` with a message naming the provider and what was
saved. If nothing in the batch finished, it fails at once. The job ends
``failed`` and can be retried (``POST /jobs/{id}/retry``); with
``only_missing`` (the default) the retry skips everything already matched.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

import sqlalchemy as sa

from cocoa.db.bulk import driver_executemany
from cocoa.db.driver import driver_for
from cocoa.db.engine import reading
from cocoa.db.tables import geocode_selections, households
from cocoa.domain import parcel_links as pl
from cocoa.domain.addresses import building_household_key, normalize_address
from cocoa.jobs.groups import Part
from cocoa.jobs.types import (
    Batch,
    Checkpoint,
    CreateContext,
    ItemError,
    JobFailed,
    Params,
    RunContext,
    register,
)
from cocoa.jobtypes.geocode_selection import (
    SELECTION_OF,
    invalid,
    parse_params,
    select_households,
    selection_size,
    slice_condition,
    slice_of,
)
from cocoa.providers import (
    GeocodeRequest,
    GeocodeResult,
    GeocodeStatus,
    ProviderConfigError,
    ProviderOutage,
    check_config,
    get_provider,
    parse_chain,
)
from cocoa.providers.chain import ChainProvider

if TYPE_CHECKING:
    from cocoa.config import Settings

CACHE_KEY = "geocode_households"
COUNTERS = ("matched", "no_match", "tie", "errors", "requests_sent", "cache_hits")
_SEED_CHUNK = 1000


# ----------------------------------------------------------------- run state
@dataclass
class _RunState:
    """Per-run memo kept in ``ctx.cache`` (lost on restart, rebuilt by seeding)."""

    chain: ChainProvider
    seeded: bool = False
    failure: str | None = None  # set after an outage; the next call fails the job
    parcels: pl.LocationLinker = field(default_factory=pl.LocationLinker)


def _cache_key(ctx: RunContext) -> str:
    """Per job: a memo must never answer for another job's provider."""
    return f"{CACHE_KEY}:{ctx.job_id}"


def _state(ctx: RunContext) -> _RunState:
    state = ctx.cache.get(_cache_key(ctx))
    if state is None:
        try:
            chain = get_provider(ctx.params.get("provider") or "local", ctx.settings, ctx.engine)
        except ProviderConfigError as exc:
            raise JobFailed(f"Geocoding provider not usable: {exc}") from exc
        state = ctx.cache[_cache_key(ctx)] = _RunState(chain)
    return state


def _release(ctx: RunContext) -> None:
    state = ctx.cache.pop(_cache_key(ctx), None)
    if state is not None:
        state.chain.close()


# ----------------------------------------------------------------- requests
def build_request(row: Any) -> GeocodeRequest:
    """Providers get the street without the unit (one request per building);
    the offline provider gets the household's stored key (``address_key`` is
    ``household_key`` of the address, computed at import) and, for flats, the
    building's key."""
    if not row.unit:  # imports store the normalised line, unit split out: no parse needed
        return GeocodeRequest(id=str(row.id), street=row.street_line, city=row.city,
                              state=row.state, zip_code=row.zip_code, keys=(row.address_key,))
    address = normalize_address(row.street_line, row.unit)
    # building_line keeps text the parser could not place, as the key does.
    building = address.building_line or row.street_line
    building_key = building_household_key(row.address_key) if address.unit else None
    return GeocodeRequest(
        id=str(row.id), street=building, city=row.city, state=row.state,
        zip_code=row.zip_code, keys=(row.address_key,),
        building_key=building_key if building_key != row.address_key else None)


_COLUMNS = (households.c.id, households.c.address_key, households.c.street_line,
            households.c.unit, households.c.city, households.c.state, households.c.zip_code)


def _load(engine: sa.Engine, owner: str, start: int, last: int | None, count: int) -> list[Any]:
    """Up to ``count`` selection rows of ``owner``'s snapshot from seq ``start`` to ``last``."""
    query = (sa.select(geocode_selections.c.seq, *_COLUMNS)
             .join(households, households.c.id == geocode_selections.c.household_id)
             .where(slice_condition(owner, start, last))
             .order_by(geocode_selections.c.seq).limit(count))
    with reading(engine) as conn:
        return list(conn.execute(query))


def _seed(state: _RunState, engine: sa.Engine, owner: str, first: int, before: int) -> None:
    """After a resume, teach the memo what this job already stored for
    its earlier selection rows (seq ``first`` .. ``before - 1`` of
    ``owner``'s snapshot), so those addresses are not sent again."""
    state.seeded = True
    remote = {s.name for s in state.chain.stages if getattr(s, "memoise", True)}
    if before <= first or not remote:
        return
    query = (sa.select(*_COLUMNS, households.c.geocode_status, households.c.geocode_provider,
                       households.c.latitude, households.c.longitude,
                       households.c.geocode_quality, households.c.geocoded_address)
             .join(geocode_selections, households.c.id == geocode_selections.c.household_id)
             .where(slice_condition(owner, first, before - 1),
                    households.c.geocode_provider.in_(sorted(remote)),
                    households.c.geocode_status.in_(["matched", "no_match", "tie"])))
    with reading(engine) as conn:
        for row in conn.execute(query.execution_options(yield_per=_SEED_CHUNK)):
            request = build_request(row)
            state.chain.remember(row.geocode_provider, request, _stored_result(row))


def _stored_result(row: Any) -> GeocodeResult:
    status = GeocodeStatus(row.geocode_status)
    if status is GeocodeStatus.MATCHED and row.latitude is not None:
        return GeocodeResult.matched(str(row.id), row.geocode_provider, row.latitude,
                                     row.longitude, row.geocode_quality, row.geocoded_address)
    if status is GeocodeStatus.TIE:
        return GeocodeResult.tie(str(row.id), row.geocode_provider)
    return GeocodeResult.no_match(str(row.id), row.geocode_provider)


# ----------------------------------------------------------------- writing
# A link by key (address, building) stays; any other link follows the new
# point: the parcel containing it, or none (see cocoa.domain.parcel_links).
_KEY_METHODS_SQL = ", ".join(f"'{method}'" for method in pl.KEY_METHODS)
_KEY_LINKED = households.c.parcel_link_method.in_(
    [sa.literal_column(f"'{method}'") for method in pl.KEY_METHODS])
_MATCHED_UPDATE = (
    sa.update(households).where(households.c.id == sa.bindparam("b_id")).values(
        latitude=sa.bindparam("b_lat"), longitude=sa.bindparam("b_lon"),
        geocode_status=GeocodeStatus.MATCHED.value, geocode_provider=sa.bindparam("b_provider"),
        geocode_quality=sa.bindparam("b_quality"),
        geocoded_address=sa.bindparam("b_address"),
        geocoded_at=sa.bindparam("b_at"), updated_at=sa.bindparam("b_at"),
        parcel_id=sa.case((_KEY_LINKED, households.c.parcel_id),
                          else_=sa.bindparam("b_pid", type_=sa.Integer)),
        parcel_link_method=sa.case((_KEY_LINKED, households.c.parcel_link_method),
                                   else_=sa.bindparam("b_method", type_=sa.String))))

# A miss never replaces a match, and leaves any coordinates alone.
_MISS_UPDATE = (
    sa.update(households).where(
        households.c.id == sa.bindparam("b_id"),
        sa.or_(households.c.geocode_status.is_(None),
               households.c.geocode_status != GeocodeStatus.MATCHED.value),
    ).values(
        geocode_status=sa.bindparam("b_status"), geocode_provider=sa.bindparam("b_provider"),
        geocode_quality=None, geocoded_address=None,
        geocoded_at=sa.bindparam("b_at"), updated_at=sa.bindparam("b_at")))


def make_writer(
    results: Sequence[GeocodeResult], linker: pl.LocationLinker | None = None,
) -> Callable[[sa.Connection], dict[str, int] | None]:
    """The batch's write: points, misses, and the location links of the
    households it places (``linker`` keeps the parcels across batches)."""
    now = datetime.now(UTC)
    matched = [{"b_id": int(r.id), "b_lat": r.latitude, "b_lon": r.longitude,
                "b_provider": r.provider, "b_quality": r.quality,
                "b_address": (r.matched_address or "")[:300] or None, "b_at": now}
               for r in results if r.status is GeocodeStatus.MATCHED]
    misses = [{"b_id": int(r.id), "b_status": r.status.value, "b_provider": r.provider,
               "b_at": now}
              for r in results if r.status is not GeocodeStatus.MATCHED]
    locations = linker or pl.LocationLinker()

    def write(conn: sa.Connection) -> dict[str, int] | None:
        counts = {"households_linked_location": 0}
        if matched:
            counts["households_linked_location"] = _locate(conn, matched, locations)
            driver_executemany(conn, _MATCHED_UPDATE, matched)
        if misses:
            driver_executemany(conn, _MISS_UPDATE, misses)
        return counts

    return write


def _locate(conn: sa.Connection, matched: list[dict[str, Any]],
            linker: pl.LocationLinker) -> int:
    """Set each placed household's location link (``b_pid``/``b_method``)
    from the parcels visible in this transaction; returns how many of them
    end linked by location (a household linked by key keeps its link)."""
    found = linker.current(conn).locate([m["b_lon"] for m in matched],
                                        [m["b_lat"] for m in matched]).tolist()
    inside: list[int] = []
    for row, pid in zip(matched, found, strict=True):
        row["b_pid"], row["b_method"] = (pid, pl.LOCATION) if pid >= 0 else (None, None)
        if pid >= 0:
            inside.append(row["b_id"])
    return len(inside) - _key_linked(conn, inside) if inside else 0


def _key_linked(conn: sa.Connection, ids: list[int]) -> int:
    """How many of ``ids`` are linked by key: one query, the ids as one JSON
    parameter (as the local provider binds its keys)."""
    sql = (f"SELECT count(*) FROM households WHERE id IN ({driver_for(conn).json_values('ids', 'int')}) "
           f"AND parcel_link_method IN ({_KEY_METHODS_SQL})")
    return int(conn.exec_driver_sql(sql, {"ids": json.dumps(ids)}).scalar_one())


def _item_error(seq: int, row: Any, result: GeocodeResult) -> ItemError:
    address = ", ".join(p for p in (row.street_line, row.unit, row.city, row.state,
                                    row.zip_code) if p)
    hint = " (temporary: retrying the job may fix it)" if result.retryable else ""
    return ItemError(item_ref=f"household {row.id}", code="geocode_error",
                     message=f"{address}: {result.message or 'provider error'}{hint}",
                     item_index=seq)


# ----------------------------------------------------------------- the job type
class GeocodeHouseholds:
    name: ClassVar[str] = "geocode_households"
    needs_upload: ClassVar[bool] = False
    hidden: ClassVar[bool] = False
    batch_size_setting: ClassVar[str] = "batch_size"  # unused: the provider chain sizes batches
    uses_helpers: ClassVar[bool] = False

    def validate(self, ctx: CreateContext) -> Params:
        # The whole selection is bounded by the group limit; above the
        # per-job limit it becomes a group of jobs (see split).
        limit = ctx.settings.max_items_per_group
        params = parse_params(ctx.params, limit)
        try:
            check_config(parse_chain(params["provider"]), ctx.settings)
        except ProviderConfigError as exc:
            raise invalid(str(exc), "provider_not_configured") from None
        select_households(ctx.conn, ctx.job_id, params, limit, ctx.settings.max_items_per_job)
        return params

    def split(self, ctx: CreateContext, params: Params, limit: int) -> list[Part] | None:
        """Seq ranges of at most ``limit`` households over the snapshot just
        written under the group's id (``selection_of``); None when it fits."""
        size = selection_size(ctx.conn, ctx.job_id)
        if size <= limit:
            return None
        return [Part({**params, SELECTION_OF: ctx.job_id}, start + 1, min(start + limit, size))
                for start in range(0, size, limit)]

    def plan(self, ctx: RunContext) -> int:
        query = (sa.select(sa.func.count()).select_from(geocode_selections)
                 .where(slice_condition(*slice_of(ctx.job_id, ctx.params))))
        with reading(ctx.engine) as conn:
            return int(conn.scalar(query) or 0)

    def run_batch(self, ctx: RunContext, checkpoint: Checkpoint | None) -> Batch:
        owner, first, last = slice_of(ctx.job_id, ctx.params)
        start = int((checkpoint or {}).get("seq", first or 0))
        state = _state(ctx)
        if state.failure is not None:
            _release(ctx)
            raise JobFailed(state.failure)
        size = _batch_size(ctx.settings, state.chain)
        rows = _load(ctx.engine, owner, start, last, size + 1)
        more, rows = len(rows) > size, rows[:size]
        if not rows:
            _release(ctx)
            return Batch(checkpoint={"seq": start}, processed=0, done=True)
        if not state.seeded:
            _seed(state, ctx.engine, owner, first or 0, start)
        return self._geocode(ctx, state, start, rows, more)

    def _geocode(self, ctx: RunContext, state: _RunState, start: int, rows: list[Any],
                 more: bool) -> Batch:
        before = state.chain.stats
        results, outage = _geocode_in_steps(ctx, state.chain, [build_request(r) for r in rows])
        after = state.chain.stats
        by_id = {r.id: r for r in results}
        finished = _prefix(rows, by_id)
        if outage is not None:
            message = _outage_message(state.chain.name, outage, start + len(finished))
            if not finished:
                _release(ctx)
                raise JobFailed(message)
            state.failure = message
        done_results = [by_id[str(r.id)] for r in finished]
        batch = _batch(finished, done_results, start, done=not more and outage is None,
                       linker=state.parcels)
        batch.counts["requests_sent"] = after.requests_sent - before.requests_sent
        batch.counts["cache_hits"] = after.cache_hits - before.cache_hits
        if batch.done:
            _release(ctx)
        return batch


def _geocode_in_steps(
    ctx: RunContext, chain: ChainProvider, requests: list[GeocodeRequest],
) -> tuple[list[GeocodeResult], ProviderOutage | None]:
    """Geocode a batch, reporting progress every ``geocode_progress_every``
    households when a single-address provider (one request per address, at
    most one a second on public Nominatim) makes a batch slow. Batch providers
    (Census) answer a batch in one request: there is no progress inside it."""
    step = ctx.settings.geocode_progress_every if _one_address_per_request(chain) else len(requests)
    results: list[GeocodeResult] = []
    for start in range(0, len(requests), max(step, 1)):
        try:
            results.extend(chain.geocode(requests[start:start + step]))
        except ProviderOutage as exc:
            results.extend(exc.partial)
            return results, exc
        if start + step < len(requests):
            ctx.report_progress(len(results))
    return results, None


def _one_address_per_request(chain: ChainProvider) -> bool:
    return any(stage.name == "nominatim" for stage in chain.stages)


def _batch_size(settings: Settings, chain: ChainProvider) -> int:
    """``geocode_batch_size`` - but at least ``local_batch_size`` when every
    stage is offline: a small local batch is so quick that the per-batch
    commit would dominate; remote batches stay small so a checkpoint never
    waits long behind a rate limit."""
    size = settings.geocode_batch_size
    if all(not getattr(stage, "memoise", True) for stage in chain.stages):
        size = max(size, settings.local_batch_size)
    return size


def _prefix(rows: list[Any], by_id: dict[str, GeocodeResult]) -> list[Any]:
    """The rows up to the first one without a result: checkpoints are a
    position in the selection, so only an unbroken prefix can be committed."""
    for index, row in enumerate(rows):
        if str(row.id) not in by_id:
            return rows[:index]
    return rows


def _outage_message(provider: str, outage: ProviderOutage, saved_up_to: int) -> str:
    return (f"Geocoding provider '{provider}' is unavailable: {outage.message}. "
            f"The first {saved_up_to:,} households of the selection are done and saved; "
            "retry the job when the service is back.")


def _batch(rows: list[Any], results: list[GeocodeResult], start: int, done: bool,
           linker: pl.LocationLinker) -> Batch:
    tally = dict.fromkeys(COUNTERS, 0)
    errors: list[ItemError] = []
    for row, result in zip(rows, results, strict=True):
        if result.status is GeocodeStatus.ERROR:
            tally["errors"] += 1
            errors.append(_item_error(row.seq, row, result))
        else:
            tally[result.status.value] += 1
    return Batch(
        checkpoint={"seq": start + len(rows)}, processed=len(rows),
        succeeded=tally["matched"], failed=tally["errors"], errors=errors, done=done,
        write=make_writer(results, linker), counts=tally, phase="geocoding")


register(GeocodeHouseholds())
