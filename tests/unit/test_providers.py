"""Providers against the real loopback stub (and the local provider on SQLite)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import sqlalchemy as sa

from cocoa.config import Settings  # noqa: E402
from cocoa.db.tables import households, parcels  # noqa: E402
from cocoa.domain.addresses import household_key  # noqa: E402
from cocoa.providers import (  # noqa: E402
    GeocodeRequest,
    GeocodeStatus,
    ProviderConfigError,
    ProviderOutage,
    UnknownProvider,
    get_provider,
    parse_chain,
)
from cocoa.providers.census import CensusProvider, build_address_file, parse_reply  # noqa: E402
from cocoa.providers.chain import ChainProvider  # noqa: E402
from cocoa.providers.http import RetryingClient, RetryPolicy, parse_retry_after  # noqa: E402
from cocoa.providers.local import LocalProvider  # noqa: E402
from cocoa.providers.nominatim import NominatimProvider  # noqa: E402
from cocoa.providers.ratelimit import TokenBucket  # noqa: E402
from stubs.geocoder_stub import GeocoderStub, Reply, max_per_window  # noqa: E402

UA = "cocoa-canvas-tests/1.0 (tests@example.org)"
FAST = RetryPolicy(max_retries=3, backoff_seconds=0.01, max_backoff_seconds=5.0)


@pytest.fixture
def stub() -> Iterator[GeocoderStub]:
    with GeocoderStub() as server:
        yield server


def client(url: str, *, rate: float = 200.0, policy: RetryPolicy = FAST, timeout: float = 5.0,
           sleep: object = time.sleep, service: str = "test") -> RetryingClient:
    return RetryingClient(service=service, base_url=url, bucket=TokenBucket(rate),
                          timeout=timeout, policy=policy, user_agent=UA,
                          sleep=sleep)  # type: ignore[arg-type]


def req(i: int | str, street: str, zip_code: str = "27601", unit_keys: tuple[str, ...] = ()
        ) -> GeocodeRequest:
    return GeocodeRequest(id=str(i), street=street, city="Raleigh", state="NC",
                          zip_code=zip_code, keys=unit_keys)


# ------------------------------------------------------------------ census format
def test_census_reply_out_of_order_maps_back_by_id() -> None:
    requests = [req("a", "1 MAIN ST"), req("b", "2 MAIN ST"), req("c", "3 MAIN ST"),
                req("d", "4 MAIN ST")]
    reply = (
        '"2","3 MAIN ST, Raleigh, NC, 27601","Tie"\n'
        '"1","2 MAIN ST, Raleigh, NC, 27601","Match","Non_Exact","2 MAIN ST, RALEIGH, NC, 27601",'
        '"-78.5,35.25","111","R"\n'
        '"0","1 MAIN ST, Raleigh, NC, 27601","No_Match"\n'
    )
    results = {r.id: r for r in parse_reply(reply, requests)}
    assert results["a"].status is GeocodeStatus.NO_MATCH
    assert results["b"].status is GeocodeStatus.MATCHED
    assert (results["b"].latitude, results["b"].longitude) == (35.25, -78.5)
    assert results["b"].quality == "Non_Exact"
    assert results["b"].matched_address == "2 MAIN ST, RALEIGH, NC, 27601"
    assert results["c"].status is GeocodeStatus.TIE
    # A row the service dropped is an error to retry, never a no-match.
    assert results["d"].status is GeocodeStatus.ERROR and results["d"].retryable


def test_census_address_file_is_headerless_and_quotes_commas() -> None:
    body = build_address_file([req("x", "1 MAIN ST, REAR"), req("y", "2 OAK AVE", "27601-1234")])
    assert body.decode().splitlines() == ['0,"1 MAIN ST, REAR",Raleigh,NC,27601',
                                          "1,2 OAK AVE,Raleigh,NC,27601"]


def test_census_against_stub_splits_batches_and_reads_shuffled_replies(
        stub: GeocoderStub) -> None:
    requests = []
    for i in range(25):
        stub.add(f"{i + 1} OAK ST", "Raleigh", "NC", "27601", 35.0 + i / 100, -78.0 - i / 100)
        requests.append(req(i, f"{i + 1} OAK ST"))
    stub.add_tie("99 TIE CT", "Raleigh", "NC", "27601")
    requests += [req("tie", "99 TIE CT"), req("none", "5 NOWHERE LN")]
    provider = CensusProvider(client(stub.census_url), batch_size=10)
    results = {r.id: r for r in provider.geocode(requests)}

    for i in range(25):
        assert results[str(i)].status is GeocodeStatus.MATCHED
        assert results[str(i)].latitude == pytest.approx(35.0 + i / 100)
        assert results[str(i)].longitude == pytest.approx(-78.0 - i / 100)
    assert results["tie"].status is GeocodeStatus.TIE
    assert results["none"].status is GeocodeStatus.NO_MATCH
    calls = stub.recorded("/geocoder/locations/addressbatch")
    assert [len(c.rows) for c in calls] == [10, 10, 7]
    assert all(c.form["benchmark"] == "Public_AR_Current" for c in calls)
    assert provider.stats.requests_sent == 3


def test_census_outage_keeps_finished_chunks_and_is_never_no_match(stub: GeocoderStub) -> None:
    stub.set_outage("/geocoder", Reply(503), after=1)
    provider = CensusProvider(client(stub.census_url), batch_size=2)
    with pytest.raises(ProviderOutage) as caught:
        provider.geocode([req(i, f"{i} ELM ST") for i in range(5)])
    assert "503" in caught.value.message
    assert sorted(r.id for r in caught.value.partial) == ["0", "1"]
    assert provider.stats.requests_sent == 1 + FAST.max_retries + 1


# ------------------------------------------------------------------ nominatim
def test_nominatim_sends_structured_query_with_user_agent(stub: GeocoderStub) -> None:
    stub.add("12 PINE RD", "Raleigh", "NC", "27601", 35.5, -78.5, "12 Pine Rd, Raleigh")
    provider = NominatimProvider(client(stub.url))
    results = {r.id: r for r in provider.geocode([req(1, "12 PINE RD"), req(2, "3 NOWHERE ST")])}
    assert results["1"].status is GeocodeStatus.MATCHED
    assert (results["1"].latitude, results["1"].longitude) == (35.5, -78.5)
    assert results["1"].matched_address == "12 Pine Rd, Raleigh"
    assert results["2"].status is GeocodeStatus.NO_MATCH
    first = stub.recorded("/search")[0]
    assert first.query == {"street": "12 PINE RD", "city": "Raleigh", "state": "NC",
                           "postalcode": "27601", "format": "jsonv2", "limit": "1"}
    assert first.headers["user-agent"] == UA


def test_rate_never_exceeded_in_any_window_with_retries_and_threads(stub: GeocoderStub) -> None:
    """50 req/s, 4 threads, a 429/503 burst: judged from server arrival times
    (the stub records arrival before it answers, so this holds under load)."""
    stub.script("/search", Reply(429), Reply(503), Reply(429), Reply(503))
    provider = NominatimProvider(client(stub.url, rate=50), concurrency=4)
    started = time.monotonic()
    results = provider.geocode([req(i, f"{i} MAPLE ST") for i in range(70)])
    elapsed = time.monotonic() - started
    arrivals = sorted(stub.arrivals("/search"))
    assert len(results) == 70
    assert len(arrivals) == 74  # every retry is a request too
    gaps = [round(b - a, 4) for a, b in zip(arrivals, arrivals[50:], strict=False)]
    assert max_per_window(arrivals) <= 50, f"51 requests within 1 s: spans {min(gaps)}"
    assert elapsed >= 73 / 50  # tokens were really waited for
    assert provider.stats.requests_sent == 74 and provider.stats.retries == 4


def test_retry_after_seconds_is_honoured_on_the_wire(stub: GeocoderStub) -> None:
    stub.script("/search", Reply(429, {"Retry-After": "1"}))
    provider = NominatimProvider(client(stub.url))
    [result] = provider.geocode([req(1, "1 MAIN ST")])
    assert result.status is GeocodeStatus.NO_MATCH
    first, second = stub.arrivals("/search")
    assert second - first >= 1.0


def test_retry_after_http_date_and_backoff_are_used_as_sleeps(stub: GeocoderStub) -> None:
    sleeps: list[float] = []
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    stub.script("/search", Reply(503, {"Retry-After": when}), Reply(503), Reply(503))
    policy = RetryPolicy(max_retries=3, backoff_seconds=2.0, max_backoff_seconds=60.0)
    http = client(stub.url, policy=policy, sleep=sleeps.append)
    http._rng = lambda: 1.0  # deterministic jitter: the full ceiling
    response = http.request("GET", "/search", params={"format": "jsonv2", "street": "1 A ST"})
    assert response.status_code == 200
    assert 28 <= sleeps[0] <= 30  # the HTTP-date, not the backoff
    assert sleeps[1:] == [4.0, 8.0]  # exponential: 2 * 2**1, 2 * 2**2


def test_backoff_has_jitter_and_a_cap() -> None:
    policy = RetryPolicy(max_retries=10, backoff_seconds=1.0, max_backoff_seconds=10.0)
    assert policy.backoff(0, lambda: 0.0) == 0.5
    assert policy.backoff(0, lambda: 1.0) == 1.0
    assert policy.backoff(3, lambda: 0.5) == 6.0
    assert policy.backoff(9, lambda: 1.0) == 10.0


def test_parse_retry_after() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_outage_past_retry_budget_is_provider_outage(stub: GeocoderStub) -> None:
    stub.set_outage("/search")
    provider = NominatimProvider(client(stub.url))
    with pytest.raises(ProviderOutage) as caught:
        provider.geocode([req(1, "1 MAIN ST"), req(2, "2 MAIN ST")])
    assert caught.value.partial == []
    assert len(stub.arrivals("/search")) == FAST.max_retries + 1


def test_retry_after_longer_than_max_backoff_gives_up_at_once(stub: GeocoderStub) -> None:
    stub.script("/search", Reply(429, {"Retry-After": "3600"}))
    with pytest.raises(ProviderOutage, match="3600"):
        NominatimProvider(client(stub.url)).geocode([req(1, "1 MAIN ST")])
    assert len(stub.arrivals("/search")) == 1


def test_timeouts_are_retried_then_an_outage() -> None:
    with GeocoderStub(latency=0.5) as slow:
        provider = NominatimProvider(client(slow.url, timeout=0.1,
                                            policy=RetryPolicy(1, 0.01, 1.0)))
        with pytest.raises(ProviderOutage, match="timed out"):
            provider.geocode([req(1, "1 MAIN ST")])
        assert slow.wait_for_requests(2, "/search", timeout=5)


def test_nominatim_403_is_an_outage_not_an_address_problem(stub: GeocoderStub) -> None:
    anonymous = RetryingClient(service="nominatim", base_url=stub.url, bucket=TokenBucket(100),
                               timeout=5, policy=FAST)  # no User-Agent: stub answers 403
    with pytest.raises(ProviderOutage, match="User-Agent"):
        NominatimProvider(anonymous).geocode([req(1, "1 MAIN ST")])


# ------------------------------------------------------------------ config & factory
@pytest.mark.parametrize("agent", [None, "", "python-httpx/0.28"])
def test_public_nominatim_refused_without_real_user_agent(agent: str | None) -> None:
    settings = Settings(nominatim_base_url="https://nominatim.openstreetmap.org",
                        nominatim_user_agent=agent)
    with pytest.raises(ProviderConfigError, match="User-Agent"):
        get_provider("nominatim", settings)


def test_public_nominatim_is_capped_at_one_request_per_second() -> None:
    settings = Settings(nominatim_base_url="https://nominatim.openstreetmap.org/",
                        nominatim_user_agent=UA, nominatim_rate_per_second=25)
    chain = get_provider("nominatim", settings)  # builds only: no request is sent
    [stage] = chain.stages
    assert isinstance(stage, NominatimProvider)
    assert stage.client.bucket.rate == 1.0 and stage.concurrency == 1
    chain.close()


def test_parse_chain() -> None:
    assert parse_chain(" Local , census") == ["local", "census"]
    assert parse_chain(None) == ["local"]
    with pytest.raises(UnknownProvider) as caught:
        parse_chain("local,google")
    assert caught.value.valid == ["local", "census", "nominatim"]
    assert "census" in str(caught.value)
    with pytest.raises(ProviderConfigError):
        parse_chain("census,census")


# ------------------------------------------------------------------ local + chain
@pytest.fixture
def engine(sqlite_url: str) -> Iterator[sa.Engine]:
    from cocoa.db.engine import make_engine
    from cocoa.db.migrate import upgrade

    upgrade(sqlite_url)
    eng = make_engine(sqlite_url)
    yield eng
    eng.dispose()


def add_parcel(conn: sa.Connection, apn: str, street: str, lat: float, lon: float,
               zip_code: str = "27601") -> None:
    now = datetime.now(UTC)
    conn.execute(sa.insert(parcels).values(
        source="test", apn=apn, situs_address=street,
        situs_key=household_key(street, "Raleigh", "NC", zip_code),
        geometry_wkb=b"\x00", min_lon=lon, min_lat=lat, max_lon=lon, max_lat=lat,
        rep_lon=lon, rep_lat=lat, attributes={}, created_at=now, updated_at=now))


def add_household(conn: sa.Connection, street: str, *, lat: float | None = None,
                  lon: float | None = None, status: str | None = None) -> None:
    now = datetime.now(UTC)
    conn.execute(sa.insert(households).values(
        address_key=household_key(street, "Raleigh", "NC", "27601"), street_line=street,
        city="Raleigh", state="NC", zip_code="27601", latitude=lat, longitude=lon,
        geocode_status=status, created_at=now, updated_at=now))


def keyed(i: int | str, street: str, unit: str | None = None) -> GeocodeRequest:
    key = household_key(street, "Raleigh", "NC", "27601", unit)
    building = household_key(street, "Raleigh", "NC", "27601") if unit else None
    return GeocodeRequest(id=str(i), street=street, city="Raleigh", state="NC",
                          zip_code="27601", keys=(key,), building_key=building)


def test_local_matches_parcels_by_situs_key(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        add_parcel(conn, "1", "100 N MAIN ST", 35.1, -78.1)
        add_parcel(conn, "2", "200 OAK AVE", 35.2, -78.2)  # stacked condos: same point
        add_parcel(conn, "3", "200 OAK AVE", 35.2, -78.2)
        add_parcel(conn, "4", "300 ELM ST", 35.3, -78.3)  # same key, different places
        add_parcel(conn, "5", "300 ELM ST", 35.4, -78.4)
        add_household(conn, "400 PINE RD", lat=35.6, lon=-78.6, status="matched")
    results = {r.id: r for r in LocalProvider(engine).geocode([
        keyed(1, "100  n main st"), keyed(2, "200 OAK AVE"), keyed(3, "300 ELM ST"),
        keyed(4, "100 N MAIN ST", unit="4B"), keyed(5, "400 PINE RD", unit="2"),
        keyed(6, "100 S MAIN ST"),
    ])}
    assert (results["1"].latitude, results["1"].longitude, results["1"].quality) == (
        35.1, -78.1, "parcel")
    assert results["1"].matched_address == "100 N MAIN ST"
    assert (results["2"].status, results["2"].latitude) == (GeocodeStatus.MATCHED, 35.2)
    assert results["3"].status is GeocodeStatus.TIE
    assert (results["4"].latitude, results["4"].quality) == (35.1, "parcel_building")
    assert (results["5"].latitude, results["5"].quality) == (35.6, "household_building")
    assert results["6"].status is GeocodeStatus.NO_MATCH


def test_chain_sends_only_misses_onward_once_per_building(
        engine: sa.Engine, stub: GeocoderStub) -> None:
    with engine.begin() as conn:
        add_parcel(conn, "1", "100 N MAIN ST", 35.1, -78.1)
    stub.add("7 BIRCH LN", "Raleigh", "NC", "27601", 35.7, -78.7)
    chain = ChainProvider([LocalProvider(engine),
                           CensusProvider(client(stub.census_url), batch_size=100)])
    first = {r.id: r for r in chain.geocode([
        keyed(1, "100 N MAIN ST"), keyed(2, "7 BIRCH LN", "1"), keyed(3, "7 BIRCH LN", "2"),
        keyed(4, "8 NOWHERE CT")])}
    assert first["1"].provider == "local" and first["1"].latitude == 35.1
    assert first["2"].provider == first["3"].provider == "census"
    assert first["2"].latitude == first["3"].latitude == 35.7
    assert first["4"].status is GeocodeStatus.NO_MATCH
    [call] = stub.recorded("/geocoder")
    assert sorted(row[1] for row in call.rows) == ["7 BIRCH LN", "8 NOWHERE CT"]

    # A later batch asking the same questions is answered from the memo.
    second = chain.geocode([keyed(5, "7 BIRCH LN", "3"), keyed(6, "8 NOWHERE CT")])
    assert [r.status for r in second] == [GeocodeStatus.MATCHED, GeocodeStatus.NO_MATCH]
    assert len(stub.recorded("/geocoder")) == 1
    # hits: unit 2 in call 1, then 5 and 6 at the census stage (local is not memoised)
    assert chain.stats.cache_hits == 3 and chain.stats.requests_sent == 1
