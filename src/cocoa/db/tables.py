"""Every table, as SQLAlchemy Core metadata.

One file so the whole data model reads top to bottom and Alembic has a single
source to compare migrations against. The engine tables (jobs, errors,
uploads, users) come first; the domain tables (households, voters, parcels)
after them. The jobs engine only ever touches the first group.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# JSON that is JSONB on PostgreSQL (indexable, compact) and TEXT JSON on SQLite.
JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTCDateTime = sa.DateTime(timezone=True)

# --------------------------------------------------------------------------- engine

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("request", JSONType, nullable=False),  # as submitted; retry re-validates it
    sa.Column("params", JSONType, nullable=False),  # as validated; what the job type runs on
    sa.Column("result", JSONType, nullable=False),
    sa.Column("checkpoint", JSONType, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("phase", sa.String(64), nullable=True),
    sa.Column("total", sa.Integer, nullable=True),
    sa.Column("processed", sa.Integer, nullable=False, server_default="0"),
    # Items done in the batch now running, not yet committed: shown with the
    # progress so a slow batch still moves, reset by every commit and claim.
    sa.Column("batch_progress", sa.Integer, nullable=False, server_default="0"),
    sa.Column("succeeded", sa.Integer, nullable=False, server_default="0"),
    sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("error_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rate_per_second", sa.Float, nullable=True),
    sa.Column("attempt", sa.Integer, nullable=False, server_default="0"),
    sa.Column("crash_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("lease_owner", sa.String(128), nullable=True),
    sa.Column("lease_expires_at", UTCDateTime, nullable=True),
    sa.Column("control", sa.String(16), nullable=True),  # requested: cancel | pause
    sa.Column("timeout_seconds", sa.Float, nullable=False),
    # Time spent processing in earlier runs; the timeout counts processing
    # time, so a job paused over a weekend is not failed on resume.
    sa.Column("processing_seconds", sa.Float, nullable=False, server_default="0"),
    sa.Column("upload_id", sa.String(36), sa.ForeignKey("uploads.id"), nullable=True),
    sa.Column("retry_of", sa.String(36), nullable=True),
    sa.Column("created_by", sa.String(128), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=True),
    sa.Column("run_started_at", UTCDateTime, nullable=True),
    sa.Column("completed_at", UTCDateTime, nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("archived_at", UTCDateTime, nullable=True),
    # Job groups (cocoa.jobs.groups): "group" rows are never claimed, their
    # state is derived from the children that name them in parent_id.
    sa.Column("kind", sa.String(16), nullable=False, server_default="job"),
    sa.Column("parent_id", sa.String(36), nullable=True),
    sa.CheckConstraint(
        "status IN ('pending','processing','paused','completed','failed','cancelled')",
        name="status_known",
    ),
)
# Rule 1 of the lifecycle, enforced by the database itself on both backends.
sa.Index(
    "uq_jobs_one_processing_per_type",
    jobs.c.type,
    unique=True,
    sqlite_where=sa.and_(jobs.c.status == "processing", jobs.c.kind == "job"),
    postgresql_where=sa.and_(jobs.c.status == "processing", jobs.c.kind == "job"),
)
sa.Index("ix_jobs_parent_id", jobs.c.parent_id)
# Claims take the oldest pending job by (created_at, id). With id in the index
# the database walks it in order and stops at the first row, instead of
# sorting every pending job on each claim (a cost that grows with the queue).
sa.Index("ix_jobs_claim", jobs.c.status, jobs.c.type, jobs.c.created_at, jobs.c.id)  # next job of one type
sa.Index("ix_jobs_queue", jobs.c.status, jobs.c.created_at, jobs.c.id)  # next job of any free type
sa.Index("ix_jobs_listing", jobs.c.archived_at, jobs.c.created_at)

job_errors = sa.Table(
    "job_errors",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.String(36), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("item_ref", sa.String(128), nullable=False),
    sa.Column("item_index", sa.Integer, nullable=True),
    sa.Column("severity", sa.String(16), nullable=False, server_default="error"),
    sa.Column("code", sa.String(64), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    # The rejected item's text as in the input (a voter file's line, decoded),
    # for GET /jobs/{id}/errors.csv; null for warnings (migration 0011).
    sa.Column("original", sa.Text, nullable=True),
)
sa.Index("ix_job_errors_job", job_errors.c.job_id, job_errors.c.id)

# A job's history: every state change and control action with its actor,
# written in the transaction of the change itself (cocoa.jobs.history).
job_events = sa.Table(
    "job_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.String(36), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("actor", sa.String(255), nullable=True),
    sa.Column("detail", sa.Text, nullable=True),
)
sa.Index("ix_job_events_job", job_events.c.job_id, job_events.c.id)

# Registered worker processes (cocoa.jobs.workers): live while their
# heartbeat is younger than the lease; maintenance prunes the dead.
workers = sa.Table(
    "workers",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("types", JSONType, nullable=True),  # null: every type
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("last_heartbeat", UTCDateTime, nullable=False),
)

# Webhooks (cocoa.jobs.webhooks): a job's own URL, given at creation, and the
# outbox of deliveries written in the transaction that finishes a job; the
# worker's sender posts them, with retries and backoff (migration 0009).
job_webhooks = sa.Table(
    "job_webhooks",
    metadata,
    sa.Column("job_id", sa.String(36), sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("url", sa.String(2048), nullable=False),
)
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.String(36), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("event", sa.String(32), nullable=False),  # job.completed | job.failed | job.cancelled
    sa.Column("status", sa.String(16), nullable=False),  # pending | delivered | failed
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime, nullable=True),  # also the lease of a running attempt
    sa.Column("last_status", sa.Integer, nullable=True),  # the receiver's HTTP status
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("delivered_at", UTCDateTime, nullable=True),
)
sa.Index("ix_webhook_deliveries_due", webhook_deliveries.c.status, webhook_deliveries.c.next_attempt_at)
sa.Index("ix_webhook_deliveries_job", webhook_deliveries.c.job_id)

uploads = sa.Table(
    "uploads",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("filename", sa.String(255), nullable=True),  # display only, never a path
    sa.Column("content_type", sa.String(255), nullable=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("chunk_count", sa.Integer, nullable=False),
    sa.Column("created_by", sa.String(128), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("purged_at", UTCDateTime, nullable=True),
    # "zip" | "gzip" | None: what the client sent; the chunks hold the expanded file.
    sa.Column("compression", sa.String(16), nullable=True),
)

upload_chunks = sa.Table(
    "upload_chunks",
    metadata,
    sa.Column(
        "upload_id", sa.String(36), sa.ForeignKey("uploads.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("data", sa.LargeBinary, nullable=False),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(128), nullable=False, unique=True),
    # The name as compared: NFKC + casefold (cocoa.auth.username_key), so
    # "Admin" and "admin" are one user on both backends alike (SQLite's
    # lower() folds ASCII only). The default only lets migration 0005 add
    # the column to SQLite without rebuilding the table; every insert sets it.
    sa.Column("username_key", sa.String(128), nullable=False, server_default=""),
    sa.Column("password_hash", sa.String(255), nullable=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.CheckConstraint("role IN ('admin','viewer')", name="role_known"),
)
sa.Index("uq_users_username_key", users.c.username_key, unique=True)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("last_used_at", UTCDateTime, nullable=True),  # written at most once a minute
    sa.Column("revoked_at", UTCDateTime, nullable=True),
    sa.Column("expires_at", UTCDateTime, nullable=True),  # null: never expires
)

# Web sessions, so that logging out (or a password change) ends a session on
# the server: the signed cookie carries a random id whose SHA-256 is ``id``;
# a cookie whose row is gone is refused even though its signature is good.
sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
)
sa.Index("ix_sessions_user_id", sessions.c.user_id)

# Failed logins per user name ("user:<key>") and per client address
# ("addr:<ip>"), in the database so the throttle holds across the processes
# of `cocoa serve --processes N`, across API hosts and across restarts.
login_failures = sa.Table(
    "login_failures",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("last_failure_at", UTCDateTime, nullable=False),
    sa.Column("blocked_until", UTCDateTime, nullable=True),
)

# What the built-in ``noop`` job type writes: one row per item, so tests and
# benchmarks can prove that every item was committed exactly once.
noop_items = sa.Table(
    "noop_items",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.String(36), nullable=False),
    sa.Column("item", sa.Integer, nullable=False),
)
sa.Index("ix_noop_items_job", noop_items.c.job_id, noop_items.c.item)

# --------------------------------------------------------------------------- domain

households = sa.Table(
    "households",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("address_key", sa.String(400), nullable=False, unique=True),
    sa.Column("street_line", sa.String(300), nullable=False),
    sa.Column("unit", sa.String(64), nullable=True),
    sa.Column("city", sa.String(128), nullable=True),
    sa.Column("state", sa.String(32), nullable=True),
    sa.Column("zip_code", sa.String(16), nullable=True),
    sa.Column("county", sa.String(128), nullable=True),
    sa.Column("precinct", sa.String(128), nullable=True),
    sa.Column("latitude", sa.Float, nullable=True),
    sa.Column("longitude", sa.Float, nullable=True),
    sa.Column("geocode_status", sa.String(16), nullable=True),  # matched|no_match|tie|error
    sa.Column("geocode_provider", sa.String(32), nullable=True),
    sa.Column("geocode_quality", sa.String(64), nullable=True),
    sa.Column("geocoded_address", sa.String(300), nullable=True),
    sa.Column("geocoded_at", UTCDateTime, nullable=True),
    sa.Column("parcel_id", sa.Integer, sa.ForeignKey("parcels.id"), nullable=True),
    # address | building | location (cocoa.domain.parcel_links: the rule, its precedence)
    sa.Column("parcel_link_method", sa.String(16), nullable=True),
    sa.Column("voter_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    postgresql_with={"fillfactor": 85},  # room for HOT updates (migration 0004)
)
sa.Index("ix_households_city", households.c.city)
sa.Index("ix_households_zip", households.c.zip_code)
# Only linked households: the rest are never looked up by parcel (migration 0004).
sa.Index("ix_households_parcel", households.c.parcel_id,
         postgresql_where=households.c.parcel_id.isnot(None),
         sqlite_where=households.c.parcel_id.isnot(None))
sa.Index("ix_households_lat_lon", households.c.latitude, households.c.longitude)  # map views (0007)
sa.Index("ix_households_updated_at", households.c.updated_at)  # version of the map cache (0007)

voters = sa.Table(
    "voters",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(32), nullable=False),  # layout name
    sa.Column("external_id", sa.String(128), nullable=False),
    sa.Column("first_name", sa.String(128), nullable=True),
    sa.Column("middle_name", sa.String(128), nullable=True),
    sa.Column("last_name", sa.String(128), nullable=True),
    sa.Column("name_suffix", sa.String(32), nullable=True),
    sa.Column("birth_date", sa.Date, nullable=True),
    sa.Column("birth_year", sa.Integer, nullable=True),
    sa.Column("registration_date", sa.Date, nullable=True),
    sa.Column("party", sa.String(64), nullable=True),
    sa.Column("status", sa.String(64), nullable=True),
    sa.Column("precinct", sa.String(128), nullable=True),
    sa.Column("county", sa.String(128), nullable=True),
    sa.Column("phone", sa.String(64), nullable=True),
    sa.Column("email", sa.String(255), nullable=True),
    sa.Column("res_street", sa.String(300), nullable=True),
    sa.Column("res_city", sa.String(128), nullable=True),
    sa.Column("res_state", sa.String(32), nullable=True),
    sa.Column("res_zip", sa.String(16), nullable=True),
    sa.Column("mail_address", sa.String(500), nullable=True),
    sa.Column("household_id", sa.Integer, sa.ForeignKey("households.id"), nullable=True),
    # Every column of the source row; plain json on PostgreSQL (migration 0003).
    sa.Column("record", sa.JSON, nullable=False),
    sa.Column("record_hash", sa.String(64), nullable=False),
    sa.Column("import_job_id", sa.String(36), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("source", "external_id", name="uq_voters_source_external_id"),
)
sa.Index("ix_voters_household", voters.c.household_id)
sa.Index("ix_voters_import_job", voters.c.import_job_id)  # browse: a job's households (0007)
sa.Index("ix_voters_external_id", voters.c.external_id)  # search by voter id (0007)

parcels = sa.Table(
    "parcels",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(128), nullable=False),
    sa.Column("apn", sa.String(128), nullable=False),
    sa.Column("situs_address", sa.String(300), nullable=True),
    sa.Column("situs_key", sa.String(400), nullable=True),
    sa.Column("geometry_wkb", sa.LargeBinary, nullable=False),  # WGS84, lossless
    sa.Column("min_lon", sa.Float, nullable=False),
    sa.Column("min_lat", sa.Float, nullable=False),
    sa.Column("max_lon", sa.Float, nullable=False),
    sa.Column("max_lat", sa.Float, nullable=False),
    sa.Column("rep_lon", sa.Float, nullable=False),
    sa.Column("rep_lat", sa.Float, nullable=False),
    sa.Column("attributes", JSONType, nullable=False),
    sa.Column("import_job_id", sa.String(36), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("source", "apn", name="uq_parcels_source_apn"),
)
sa.Index("ix_parcels_situs_key", parcels.c.situs_key)
# The latest change to any parcel, found in one index lookup: geocoding batches
# check it to know whether the parcels they link against changed (0006).
sa.Index("ix_parcels_updated_at", parcels.c.updated_at)
sa.Index("ix_parcels_import_job", parcels.c.import_job_id)  # browse (0007)
sa.Index("ix_parcels_lat", parcels.c.min_lat, parcels.c.max_lat)  # parcels in a map view (0007)

# The households a geocoding job will visit, fixed when the job is created so
# that ``total`` is exact and a resumed job walks the same list.
geocode_selections = sa.Table(
    "geocode_selections",
    metadata,
    sa.Column("job_id", sa.String(36), sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("household_id", sa.Integer, sa.ForeignKey("households.id"), nullable=False),
)

# Column mappings for voter files, saved by name (issue 17): a campaign gets
# the same vendor's export again and again, and names the columns once.
saved_mappings = sa.Table(
    "saved_mappings",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("mapping", JSONType, nullable=False),  # our field -> their column (or null)
    sa.Column("created_by", sa.String(255), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)
