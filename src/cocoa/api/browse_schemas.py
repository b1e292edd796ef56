"""Response models of the browse endpoints (households, voters, map, job results).

They document the responses; the routes return plain dicts through
:class:`cocoa.api.jobs_routes.JSONBody`, and the Schemathesis suite checks
what they send against these models.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class HouseholdSummary(BaseModel):
    id: int
    street_line: str = Field(description="The normalised street line (unit included).")
    unit: str | None
    city: str | None
    state: str | None
    zip_code: str | None
    precinct: str | None
    voter_count: int
    latitude: float | None
    longitude: float | None
    geocode_status: str | None = Field(description="matched, no_match, tie, error, or null (never geocoded).")
    geocode_provider: str | None
    geocode_quality: str | None
    parcel_id: int | None
    parcel_link_method: str | None = Field(description="address, building or location.")


class HouseholdList(BaseModel):
    households: list[HouseholdSummary]
    total: int
    limit: int
    offset: int


class VoterSummary(BaseModel):
    id: int
    source: str = Field(description="The voter file layout it came from.")
    external_id: str = Field(description="The voter id in that file.")
    first_name: str | None
    middle_name: str | None
    last_name: str | None
    name_suffix: str | None
    party: str | None
    status: str | None
    precinct: str | None
    birth_year: int | None
    res_street: str | None
    res_city: str | None
    res_zip: str | None
    household_id: int | None


class VoterList(BaseModel):
    voters: list[VoterSummary]
    total: int
    limit: int
    offset: int


class VoterDetail(VoterSummary):
    record: dict[str, Any] = Field(description="Every column of the voter's source row, as read.")
    record_hash: str
    import_job_id: str | None
    birth_date: str | None
    registration_date: str | None
    county: str | None
    phone: str | None
    email: str | None
    res_state: str | None
    mail_address: str | None
    created_at: str
    updated_at: str


class ParcelRef(BaseModel):
    id: int
    source: str
    apn: str
    situs_address: str | None
    rep_lon: float
    rep_lat: float
    import_job_id: str | None
    link_method: str | None


class JobRef(BaseModel):
    id: str
    type: str
    status: str
    created_at: str
    how: str = Field(description="What the job did to this household.")


class HouseholdDetail(HouseholdSummary):
    address_key: str = Field(description="The key every spelling of this address shares.")
    county: str | None
    geocoded_address: str | None
    geocoded_at: str | None
    created_at: str
    updated_at: str
    voters: list[VoterSummary]
    parcel: ParcelRef | None
    jobs: list[JobRef]


class FeatureCollection(BaseModel):
    type: str = Field(description="Always 'FeatureCollection' (GeoJSON, RFC 7946).")
    features: list[dict[str, Any]]
    total: int = Field(description="Features in the view before clustering or truncation.")
    clustered: bool | None = Field(None, description="Households: one feature per grid cell "
                                   "(properties.count) because the view holds more than `limit`.")
    truncated: bool | None = Field(None, description="Parcels: none sent because the view holds "
                                   "more than `limit`; zoom in.")


class JobResults(BaseModel):
    job_type: str
    kind: str = Field(description="Which list this is.")
    kinds: list[str] = Field(description="The lists this job type has.")
    items: list[dict[str, Any]]
    total: int
    fields: list[str] = Field(description="The columns of each item (and of the CSV).")
    limit: int
    offset: int
