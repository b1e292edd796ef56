"""Settings, read once from ``COCOA_*`` environment variables.

Every knob an operator may want to turn lives here so that the configuration
reference in ``docs/operations.md`` can be checked against one class.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from cocoa.datadir import resolve_data_dir


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COCOA_", extra="ignore")

    data_dir: Path = Field(
        default_factory=resolve_data_dir,
        description="Where the SQLite database and the session secret live; unset: the one "
        "`cocoa quickstart` recorded, else $XDG_DATA_HOME/cocoa (see cocoa.datadir).")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default is a SQLite file in the data dir."
    )

    batch_size: int = Field(1000, ge=1, le=100_000, description="Items per checkpointed batch.")
    voter_batch_size: int = Field(
        5000, ge=1, le=100_000, description="Rows per checkpointed batch of a voter import "
        "(writes cost less per row in larger batches; a batch of 5,000 takes about half a second).")
    parcel_batch_size: int = Field(
        5000, ge=1, le=100_000, description="Parcels (and households, while linking) per "
        "checkpointed batch of a parcel import (a GeoJSON file is re-opened for every batch).")
    parse_ahead_min_rows: int = Field(
        10_000, ge=0, description="Voter files with at least this many rows left are parsed by a "
        "helper process while the worker writes (a second core); above max_items_per_job: never.")
    parse_helpers: int = Field(
        1, ge=1, le=16, description="Helper processes that parse a large voter file ahead of "
        "the writes; more than one only helps with more than two cores.")
    helper_timeout_seconds: float = Field(
        60.0, gt=0, description="How long a job waits for a helper process's result before it "
        "treats the helper as hung (stopped, swapping): the helper is killed and the job does "
        "the work itself.")
    max_items_per_job: int = Field(
        100_000, ge=1, description="Items one job processes at most; a larger upload becomes a "
        "group of jobs of at most this many items each (cocoa.jobs.groups).")
    max_items_per_group: int = Field(
        10_000_000, ge=1, description="Items one upload (a whole job group) may hold; above it the "
        "request is refused with 422 (split the file or raise COCOA_MAX_ITEMS_PER_GROUP).")
    max_decompressed_bytes: int = Field(
        8 * 1024**3, ge=1, description="Size a .zip/.gz voter upload may expand to; above it the "
        "upload is refused with 413 (COCOA_MAX_DECOMPRESSED_BYTES).")
    job_timeout_seconds: float = Field(24 * 3600, gt=0, description="Processing time limit.")
    lease_seconds: float = Field(30.0, gt=0, description="A claimed job's lease length.")
    heartbeat_seconds: float = Field(5.0, gt=0, description="How often a worker renews leases.")
    reaper_seconds: float = Field(2.0, gt=0, description="How often expired leases are reaped.")
    poll_seconds: float = Field(0.5, gt=0, description="Idle poll interval (LISTEN/NOTIFY wakes earlier).")
    poison_limit: int = Field(5, ge=1, description="Crashes (lost leases) before a job fails.")
    retention_days: float = Field(30.0, gt=0, description="Finished jobs older than this are archived.")
    purge_archived_uploads: bool = Field(True, description="Drop upload blobs of archived jobs.")
    max_upload_bytes: int = Field(512 * 1024 * 1024, ge=1, description="Upload size limit.")
    upload_chunk_bytes: int = Field(1024 * 1024, ge=1024, description="Blob chunk size.")
    request_lock_wait_seconds: float = Field(
        5.0, gt=0, le=600, description="How long an API request or web page waits for a database lock "
        "(SQLite's busy timeout, PostgreSQL's lock_timeout) before answering 503 with Retry-After; "
        "workers wait longer (30 s on SQLite, no limit on PostgreSQL).")
    min_free_disk_mb: int = Field(
        100, ge=0, description="/readyz reports not ready when the volume holding the SQLite database has "
        "less free space than this (MiB); 0 turns the check off. PostgreSQL's disk is on its server.")

    geocode_batch_size: int = Field(100, ge=1, description="Households per geocoding batch.")
    geocode_progress_every: int = Field(50, ge=1, description="Progress update interval.")
    nominatim_user_agent: str | None = Field(None, description="Required for public Nominatim.")
    census_base_url: str = "https://geocoding.geo.census.gov/geocoder"
    census_timeout_seconds: float = 600.0
    census_batch_size: int = Field(1000, ge=1, le=10_000)
    census_rate_per_second: float = 1.0
    nominatim_base_url: str = "https://nominatim.openstreetmap.org"
    nominatim_timeout_seconds: float = 30.0
    nominatim_rate_per_second: float = 1.0
    nominatim_concurrency: int = Field(4, ge=1, description="Parallel requests (always 1 on the public instance).")
    census_benchmark: str = "Public_AR_Current"
    local_batch_size: int = Field(1000, ge=1, description="Households per batch when every provider is local.")
    provider_max_retries: int = 5
    provider_backoff_seconds: float = 1.0
    provider_max_backoff_seconds: float = 60.0

    token_cache_seconds: float = Field(
        5.0, ge=0, description="How long a server process trusts an API token it has checked (0: every request).")
    event_stream_auth_seconds: float = Field(
        5.0, gt=0, description="How often an open job event stream re-checks its API token or web "
        "session; the stream closes (with a final `end` event) once that is revoked, expired or logged out.")
    session_secret: str | None = Field(None, description="Signs web session cookies.")
    cookie_secure: bool = Field(
        False, description="Mark the session cookie Secure and name it __Host-cocoa_session "
        "(set it when users reach the server over HTTPS; browsers then never send it over HTTP).")
    forwarded_allow_ips: str | None = Field(
        None, description="Reverse proxies (comma-separated addresses, e.g. 127.0.0.1) whose "
        "X-Forwarded-For gives the client address; unset: the connection's own address is used.")
    min_password_length: int = Field(12, ge=8, le=1024, description="Shortest password a user may set.")
    login_user_failures: int = Field(
        5, ge=1, description="Failed logins for one user name (from anywhere) before each further "
        "attempt must wait; the wait doubles with every further failure.")
    login_address_failures: int = Field(
        20, ge=1, description="Failed logins from one client address (an IPv6 /64) before each "
        "further attempt from it must wait.")
    login_delay_seconds: float = Field(5.0, gt=0, description="The first wait after too many failed logins.")
    login_max_delay_seconds: float = Field(900.0, gt=0, description="The longest wait between failed logins.")
    login_failure_window_seconds: float = Field(
        3600.0, gt=0, description="Failed logins are forgotten this long after the last one.")
    password_check_slots: int = Field(
        2, ge=1, le=64, description="Password checks one server process runs at once (Argon2 uses "
        "64 MiB each); more logins wait for a slot.")
    password_check_wait_seconds: float = Field(
        10.0, gt=0, description="How long a login waits for a password check slot before a 503.")
    webhook_url: str | None = Field(
        None, description="Receives a signed JSON POST when any job completes, fails or is cancelled "
        "(a job created with its own webhook_url is told there instead); unset: no webhooks but per-job ones.")
    webhook_secret: str | None = Field(
        None, description="Shared secret of the webhook signature (X-Cocoa-Signature: sha256=HMAC-SHA256 "
        "of '<timestamp>.<body>'); unset: deliveries are sent unsigned.")
    webhook_allow_private: bool = Field(
        False, description="Allow per-job webhook URLs that resolve to loopback, private or link-local "
        "addresses (refused by default: a URL must not make the server call into its own network).")
    webhook_max_attempts: int = Field(8, ge=1, le=100, description="Delivery attempts before a webhook "
                                      "is given up (recorded as failed).")
    webhook_backoff_seconds: float = Field(
        5.0, gt=0, description="Wait before the second delivery attempt; doubles with every further one.")
    webhook_max_backoff_seconds: float = Field(3600.0, gt=0, description="Longest wait between attempts.")
    webhook_timeout_seconds: float = Field(10.0, gt=0, le=300, description="One delivery attempt's time limit.")
    host: str = "127.0.0.1"
    port: int = 8000
    web_processes: int = Field(1, ge=1, le=64, description="Processes of `cocoa serve` (one per core is typical).")
    embedded_worker: bool = Field(True, description="`cocoa serve` runs a worker in each of its processes.")
    map_tile_url: str = Field(
        "", description="Base-map tiles for the web map, e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png "
        "(its origin is added to the pages' Content-Security-Policy); empty: no base map, the map still "
        "draws households and parcels (offline installs).")
    map_tile_attribution: str = Field(
        "", description="The credit line the tile provider requires, shown on the map (plain text).")
    map_library_dir: Path | None = Field(
        None, description="Where Leaflet's dist folder is (served at /vendor/leaflet/); default: "
        "node_modules/leaflet/dist of the source checkout, which `make install` fills with `npm ci`.")

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'cocoa.db').resolve()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
