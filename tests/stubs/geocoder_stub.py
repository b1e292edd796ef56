"""A real HTTP geocoder on loopback speaking the Census batch and Nominatim
``/search`` formats, for tests and benchmarks.

Why a real server rather than a mocked transport: rate limits, retries,
``Retry-After`` and timeouts are properties of requests on a wire. The stub
records every request's monotonic arrival time and payload so tests can judge
the client from the server's side, exactly as the real service would.

Usage::

    with GeocoderStub() as stub:
        stub.add("123 MAIN ST", "RALEIGH", "NC", "27601", 35.77, -78.63)
        stub.add_tie("1 ELM ST", "RALEIGH", "NC", "27601")
        stub.script("/search", Reply(429, {"Retry-After": "1"}), Reply(503))
        ... settings.census_base_url = stub.census_url ...
        times = stub.arrivals("/search")

For benchmarks, :class:`StubProcess` runs the same stub in a child process
(its clock then does not share the caller's GIL).

Addresses not in the book are no-matches, unless ``synthetic=True``: then any
street starting with a house number matches at a point derived from a hash
of the address (deterministic, no book needed for 20,000 households), except
streets containing ``NOWHERE``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import multiprocessing
import random
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

CENSUS_PATH = "/geocoder/locations/addressbatch"
SEARCH_PATH = "/search"
CENSUS_MAX_ROWS = 10_000
STOCK_AGENTS = ("python-httpx", "python-requests", "python-urllib")
STARTUP_TIMEOUT = 30.0  # seconds for StubProcess's child to come up


@dataclass(frozen=True)
class Reply:
    """A scripted answer (failure bursts): status, headers, body."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class Place:
    latitude: float
    longitude: float
    matched_address: str
    tie: bool = False


@dataclass
class RecordedRequest:
    arrived: float  # time.monotonic() when the handler started
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    rows: list[list[str]] = field(default_factory=list)  # census addressFile rows
    form: dict[str, str] = field(default_factory=dict)  # other multipart fields
    status: int = 0  # what the stub answered


def book_key(street: str, city: str | None, state: str | None, zip_code: str | None) -> str:
    """How the stub recognises an address: street + ZIP5, else city + state."""
    def norm(text: str | None) -> str:
        return " ".join((text or "").upper().split())

    zip5 = norm(zip_code)[:5]
    return f"{norm(street)}|{zip5}" if zip5 else f"{norm(street)}|{norm(city)},{norm(state)}"


def synthetic_point(key: str) -> tuple[float, float]:
    """A stable point in North Carolina for any address key."""
    digest = hashlib.sha256(key.encode()).digest()
    lat = 34.0 + int.from_bytes(digest[:4], "big") / 2**32 * 2.5
    lon = -84.0 + int.from_bytes(digest[4:8], "big") / 2**32 * 8.0
    return round(lat, 6), round(lon, 6)


def max_per_window(times: Iterable[float], window: float = 1.0) -> int:
    """The most arrivals in any half-open window ``[t, t + window)``."""
    ordered = sorted(times)
    best = start = 0
    for end, t in enumerate(ordered):
        while ordered[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


class GeocoderStub:
    """Context manager running the stub server in a daemon thread on port 0."""

    def __init__(self, *, synthetic: bool = False, shuffle_seed: int | None = 1,
                 latency: float = 0.0, require_user_agent: bool = True) -> None:
        self.synthetic = synthetic
        self.shuffle_seed = shuffle_seed  # None keeps census reply rows in input order
        self.latency = latency  # seconds every reply waits (slow service)
        self.require_user_agent = require_user_agent
        self.requests: list[RecordedRequest] = []
        self._book: dict[str, Place] = {}
        self._scripts: dict[str, deque[Reply]] = {}
        self._outages: dict[str, tuple[Reply, int]] = {}  # reply, requests still let through
        self._lock = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------- lifecycle
    def __enter__(self) -> GeocoderStub:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        handler = type("Handler", (_Handler,), {"stub": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name="geocoder-stub", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    @property
    def url(self) -> str:
        assert self._server is not None, "stub not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def census_url(self) -> str:
        """What ``census_base_url`` should be (the real one ends in /geocoder)."""
        return f"{self.url}/geocoder"

    @property
    def nominatim_url(self) -> str:
        return self.url

    # ------------------------------------------------------------- behaviour
    def add(self, street: str, city: str | None, state: str | None, zip_code: str | None,
            latitude: float, longitude: float, matched_address: str | None = None) -> None:
        matched = matched_address or ", ".join(
            p for p in (street.upper(), (city or "").upper(), (state or "").upper(),
                        (zip_code or "")[:5]) if p)
        self._book[book_key(street, city, state, zip_code)] = Place(latitude, longitude, matched)

    def add_tie(self, street: str, city: str | None, state: str | None,
                zip_code: str | None) -> None:
        self._book[book_key(street, city, state, zip_code)] = Place(0.0, 0.0, "", tie=True)

    def script(self, path: str, *replies: Reply) -> None:
        """The next requests to ``path`` (prefix) get these replies, in order."""
        with self._lock:
            self._scripts.setdefault(path, deque()).extend(replies)

    def fail_next(self, path: str, count: int, status: int = 503,
                  retry_after: str | None = None) -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self.script(path, *[Reply(status, headers)] * count)

    def set_outage(self, path: str, reply: Reply | None = Reply(503), after: int = 0) -> None:
        """Every request to ``path`` gets ``reply`` until called with None;
        ``after`` lets that many more requests through normally first."""
        with self._lock:
            if reply is None:
                self._outages.pop(path, None)
            else:
                self._outages[path] = (reply, after)

    def lookup(self, street: str, city: str | None, state: str | None,
               zip_code: str | None) -> Place | None:
        key = book_key(street, city, state, zip_code)
        place = self._book.get(key)
        if place is None and self.synthetic and street.strip()[:1].isdigit() \
                and "NOWHERE" not in street.upper():
            lat, lon = synthetic_point(key)
            place = Place(lat, lon, key.replace("|", ", "))
        return place

    # ------------------------------------------------------------- observation
    def arrivals(self, path: str = "") -> list[float]:
        with self._lock:
            return [r.arrived for r in self.requests if r.path.startswith(path)]

    def recorded(self, path: str = "") -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path.startswith(path)]

    def wait_for_requests(self, count: int, path: str = "", timeout: float = 10.0) -> bool:
        """Block until ``count`` requests to ``path`` arrived (or timeout)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while sum(r.path.startswith(path) for r in self.requests) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(remaining)
            return True

    def _record(self, request: RecordedRequest) -> Reply | None:
        """Store the request; return a scripted/outage reply if one applies."""
        with self._lock:
            self.requests.append(request)
            self._lock.notify_all()
            for prefix, (reply, grace) in self._outages.items():
                if request.path.startswith(prefix):
                    if grace <= 0:
                        return reply
                    self._outages[prefix] = (reply, grace - 1)
            for prefix, queue in self._scripts.items():
                if request.path.startswith(prefix) and queue:
                    return queue.popleft()
        return None

    # ------------------------------------------------------------- formats
    def census_reply(self, rows: list[list[str]]) -> bytes:
        out_rows = [self._census_row(row) for row in rows]
        if self.shuffle_seed is not None:
            random.Random(self.shuffle_seed).shuffle(out_rows)
        buffer = io.StringIO()
        writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writerows(out_rows)
        return buffer.getvalue().encode()

    def _census_row(self, row: list[str]) -> list[str]:
        row = (row + [""] * 5)[:5]
        rid, street, city, state, zip_code = row
        given = ", ".join([street, city, state, zip_code])
        place = self.lookup(street, city, state, zip_code)
        if place is None:
            return [rid, given, "No_Match"]
        if place.tie:
            return [rid, given, "Tie"]
        quality = "Exact" if book_key(street, city, state, zip_code) in self._book else "Non_Exact"
        return [rid, given, "Match", quality, place.matched_address,
                f"{place.longitude},{place.latitude}", "12345678", "L"]

    def search_reply(self, query: dict[str, str]) -> bytes:
        place = self.lookup(query.get("street", ""), query.get("city"), query.get("state"),
                            query.get("postalcode"))
        if place is None or place.tie:
            return b"[]"
        return json.dumps([{
            "place_id": 1, "lat": str(place.latitude), "lon": str(place.longitude),
            "category": "place", "type": "house", "place_rank": 30,
            "display_name": place.matched_address,
        }]).encode()


class _Handler(BaseHTTPRequestHandler):
    stub: GeocoderStub
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx expects

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        """Silence the per-request stderr log."""

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        self._handle()

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        self._handle()

    def _handle(self) -> None:
        arrived = time.monotonic()
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        record = RecordedRequest(
            arrived, self.command, parts.path,
            {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()},
            {k.lower(): v for k, v in self.headers.items()}, body)
        if parts.path == CENSUS_PATH and self.command == "POST":
            _parse_census_form(record, self.headers.get("Content-Type", ""))
        scripted = self.stub._record(record)
        if self.stub.latency:
            time.sleep(self.stub.latency)  # simulating a slow service, not synchronising
        reply = scripted or self._route(record)
        record.status = reply.status
        self._send(reply)

    def _route(self, record: RecordedRequest) -> Reply:
        if record.path == CENSUS_PATH and record.method == "POST":
            return self._census(record)
        if record.path == SEARCH_PATH and record.method == "GET":
            return self._search(record)
        return Reply(404, body=b"not found")

    def _census(self, record: RecordedRequest) -> Reply:
        if record.form.get("benchmark") != "Public_AR_Current":
            return Reply(400, body=b"benchmark must be Public_AR_Current")
        if not record.rows:
            return Reply(400, body=b"addressFile missing or empty")
        if len(record.rows) > CENSUS_MAX_ROWS:
            return Reply(400, body=b"more than 10,000 addresses")
        return Reply(200, {"Content-Type": "text/csv"}, self.stub.census_reply(record.rows))

    def _search(self, record: RecordedRequest) -> Reply:
        agent = record.headers.get("user-agent", "")
        if self.stub.require_user_agent and (not agent or agent.startswith(STOCK_AGENTS)):
            return Reply(403, body=b"stock User-Agent refused")
        if record.query.get("format") != "jsonv2":
            return Reply(400, body=b"format must be jsonv2")
        return Reply(200, {"Content-Type": "application/json"},
                     self.stub.search_reply(record.query))

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)


def _parse_census_form(record: RecordedRequest, content_type: str) -> None:
    """multipart/form-data with the stdlib email parser (``cgi`` is gone)."""
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + record.body)
    if not message.is_multipart():
        return
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if name == "addressFile":
            text = payload.decode("utf-8", errors="replace")
            record.rows = [row for row in csv.reader(io.StringIO(text)) if row]
        elif isinstance(name, str):
            record.form[name] = payload.decode("utf-8", errors="replace")


class StubProcess:
    """The same stub in a child process, driven over a pipe.

    Why: in-process, the stub's handler threads share the GIL with the code
    under test, so a CPU-busy job delays the stub's *recording* of arrivals
    by milliseconds and the judge becomes part of the jitter. Benchmarks use
    this; ``time.monotonic`` is system-wide on Linux, so times compare.
    Every public method of :class:`GeocoderStub` is available by name.
    """

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._url = ""

    def __enter__(self) -> StubProcess:
        context = multiprocessing.get_context("spawn")  # no inherited threads or locks
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve_in_child, args=(child, self._kwargs),
                                        name="geocoder-stub", daemon=True)
        self._process.start()
        child.close()
        if not self._conn.poll(STARTUP_TIMEOUT):  # a dead child must not hang the caller
            self._process.kill()
            raise RuntimeError("geocoder stub process did not start (see its stderr)")
        self._url = self._conn.recv()
        return self

    def __exit__(self, *exc: object) -> None:
        self._conn.send(None)
        self._process.join(timeout=10)

    @property
    def url(self) -> str:
        return self._url

    @property
    def census_url(self) -> str:
        return f"{self._url}/geocoder"

    @property
    def nominatim_url(self) -> str:
        return self._url

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)

        def call(*args: Any, **kwargs: Any) -> Any:
            self._conn.send((name, args, kwargs))
            ok, value = self._conn.recv()
            if not ok:
                raise value
            return value

        return call


def _serve_in_child(conn: Any, kwargs: dict[str, Any]) -> None:
    with GeocoderStub(**kwargs) as stub:
        conn.send(stub.url)
        while (message := conn.recv()) is not None:
            name, args, call_kwargs = message
            try:
                conn.send((True, getattr(stub, name)(*args, **call_kwargs)))
            except Exception as exc:  # handed back to the parent to raise
                conn.send((False, exc))
