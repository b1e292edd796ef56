"""Voter file layouts as pure data.

A layout says how to read one publisher's file: delimiter, quoting,
encodings, the documented header and where each canonical voter field comes
from. Adding a state means writing one more ``Layout(...)`` literal and
appending it to :data:`LAYOUTS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from cocoa.domain.errors import InputError, Problem

Quoting = Literal["enclosed", "csv"]
DateOrder = Literal["MDY", "YMD", "ANY"]  # ANY: YYYY-MM-DD or MM/DD/YYYY, by shape


@dataclass(frozen=True, slots=True)
class Const:
    """A value every row of a layout shares (e.g. Contra Costa is always CA)."""

    value: str


Source = str | Const | tuple[str, ...]
"""Where a canonical field comes from: one column, a constant, or the first
non-empty of several candidate columns (aliases for hand-made files)."""


@dataclass(frozen=True, slots=True)
class AddressSpec:
    """How to build a residence address from a layout's columns.

    ``street`` columns are joined with single spaces (structured layouts split
    the line into house number, directional, name, suffix ...); ``unit``
    likewise. A free-form line that already contains the unit has no ``unit``.
    """

    street: tuple[str, ...]
    city: Source
    state: Source
    zip_code: Source
    unit: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Layout:
    """Everything needed to read one voter file layout.

    ``columns`` is the documented header (used to detect the layout, to
    generate samples and to list in the API); ``required`` are the columns a
    file must have to be imported. Column names are matched case-insensitively,
    ignoring spaces, underscores and hyphens (``FirstName`` = ``first_name``).

    The file's own header decides how many fields a row has: columns beyond
    the documented ones (Ohio's one-column-per-election tail, which grows every
    election) are accepted and kept in the source record.
    """

    name: str
    description: str
    delimiter: str
    quoting: Quoting
    encodings: tuple[str, ...]
    columns: tuple[str, ...]
    required: tuple[str, ...]
    id_column: str | None  # None: derive a stable key (see simple_csv_key)
    fields: Mapping[str, Source]
    dates: Mapping[str, DateOrder]
    residence: AddressSpec
    mailing: tuple[str, ...] = ()
    integers: tuple[str, ...] = ()
    # Hand-made and vendor files (the simple layout) differ from file to file:
    # each field's column is found per file among aliases (``SIMPLE_ALIASES``)
    # or named by a ``mapping`` (see :mod:`.mapping`); ``id_aliases`` are the
    # voter id spellings looked for when ``id_column`` is None.
    id_aliases: tuple[str, ...] = ()
    bind: bool = False  # columns are chosen per file (aliases / mapping)
    multiline: bool = False  # quoted fields may span lines (Excel exports)
    warn_fallback: bool = False  # a row decoded with a fallback encoding gets a warning
    needs_address: bool = False  # without an id, a row needs an address to be keyed
    record_width: int = 0  # the bound file's column count (0: unknown), for multi-line records


def _cols(text: str) -> tuple[str, ...]:
    """A header written as whitespace-separated names (as the reference docs list it)."""
    return tuple(text.split())


_ELECTIONS = tuple(
    f"{stem}_{n}"
    for n in range(1, 6)
    for stem in (
        "ElectionAbbr", "ElectionDesc", "ElectionDate", "BallotPartyName", "BallotPartyAbbr",
        "BallotCounted", "ElectionType", "VotingMethodDesc", "DistrictID", "SubDistrict",
        "DistrictName",
    )
)

NC_STATEWIDE = Layout(
    name="nc_statewide",
    description="North Carolina statewide voter file (NCSBE layout of 2022): tab-delimited, "
    "every field quoted, Latin-1.",
    delimiter="\t",
    quoting="enclosed",
    encodings=("utf-8", "cp1252", "latin-1"),
    columns=_cols(
        """
        county_id county_desc voter_reg_num ncid last_name first_name middle_name
        name_suffix_lbl status_cd voter_status_desc reason_cd voter_status_reason_desc
        res_street_address res_city_desc state_cd zip_code mail_addr1 mail_addr2
        mail_addr3 mail_addr4 mail_city mail_state mail_zipcode full_phone_number
        confidential_ind registr_dt race_code ethnic_code party_cd gender_code
        birth_year age_at_year_end birth_state drivers_lic precinct_abbrv
        precinct_desc municipality_abbrv municipality_desc ward_abbrv ward_desc
        cong_dist_abbrv super_court_abbrv judic_dist_abbrv nc_senate_abbrv
        nc_house_abbrv county_commiss_abbrv county_commiss_desc township_abbrv
        township_desc school_dist_abbrv school_dist_desc fire_dist_abbrv
        fire_dist_desc water_dist_abbrv water_dist_desc sewer_dist_abbrv
        sewer_dist_desc sanit_dist_abbrv sanit_dist_desc rescue_dist_abbrv
        rescue_dist_desc munic_dist_abbrv munic_dist_desc dist_1_abbrv dist_1_desc
        vtd_abbrv vtd_desc
        """
    ),
    required=("ncid", "last_name", "first_name", "res_street_address", "res_city_desc",
              "state_cd", "zip_code"),
    id_column="ncid",
    fields={
        "first_name": "first_name", "middle_name": "middle_name", "last_name": "last_name",
        "name_suffix": "name_suffix_lbl", "birth_year": "birth_year",
        "registration_date": "registr_dt", "party": "party_cd", "status": "status_cd",
        "precinct": "precinct_abbrv", "county": "county_desc", "phone": "full_phone_number",
    },
    dates={"registration_date": "MDY"},
    integers=("birth_year",),
    residence=AddressSpec(street=("res_street_address",), city="res_city_desc",
                          state="state_cd", zip_code="zip_code"),
    mailing=("mail_addr1", "mail_addr2", "mail_addr3", "mail_addr4", "mail_city",
             "mail_state", "mail_zipcode"),
)

OH_SWVF = Layout(
    name="oh_swvf",
    description="Ohio statewide voter file (SWVF): comma-delimited, Latin-1, one trailing "
    "column per election (any number).",
    delimiter=",",
    quoting="csv",
    encodings=("utf-8", "cp1252", "latin-1"),
    columns=_cols(
        """
        SOS_VOTERID COUNTY_NUMBER COUNTY_ID LAST_NAME FIRST_NAME MIDDLE_NAME SUFFIX
        DATE_OF_BIRTH REGISTRATION_DATE VOTER_STATUS PARTY_AFFILIATION
        RESIDENTIAL_ADDRESS1 RESIDENTIAL_SECONDARY_ADDR RESIDENTIAL_CITY
        RESIDENTIAL_STATE RESIDENTIAL_ZIP RESIDENTIAL_ZIP_PLUS4 RESIDENTIAL_COUNTRY
        RESIDENTIAL_POSTALCODE MAILING_ADDRESS1 MAILING_SECONDARY_ADDRESS MAILING_CITY
        MAILING_STATE MAILING_ZIP MAILING_ZIP_PLUS4 MAILING_COUNTRY
        MAILING_POSTAL_CODE CAREER_CENTER CITY CITY_SCHOOL_DISTRICT
        COUNTY_COURT_DISTRICT CONGRESSIONAL_DISTRICT COURT_OF_APPEALS
        EDU_SERVICE_CENTER_DISTRICT EXEMPTED_VILL_SCHOOL_DISTRICT LIBRARY
        LOCAL_SCHOOL_DISTRICT MUNICIPAL_COURT_DISTRICT PRECINCT_NAME PRECINCT_CODE
        STATE_BOARD_OF_EDUCATION STATE_REPRESENTATIVE_DISTRICT STATE_SENATE_DISTRICT
        TOWNSHIP VILLAGE WARD
        """
    ),
    required=("SOS_VOTERID", "LAST_NAME", "FIRST_NAME", "RESIDENTIAL_ADDRESS1",
              "RESIDENTIAL_CITY", "RESIDENTIAL_STATE", "RESIDENTIAL_ZIP"),
    id_column="SOS_VOTERID",
    fields={
        "first_name": "FIRST_NAME", "middle_name": "MIDDLE_NAME", "last_name": "LAST_NAME",
        "name_suffix": "SUFFIX", "birth_date": "DATE_OF_BIRTH",
        "registration_date": "REGISTRATION_DATE", "party": "PARTY_AFFILIATION",
        "status": "VOTER_STATUS", "precinct": "PRECINCT_NAME", "county": "COUNTY_NUMBER",
    },
    dates={"birth_date": "YMD", "registration_date": "YMD"},
    residence=AddressSpec(street=("RESIDENTIAL_ADDRESS1",), unit=("RESIDENTIAL_SECONDARY_ADDR",),
                          city="RESIDENTIAL_CITY", state="RESIDENTIAL_STATE",
                          zip_code="RESIDENTIAL_ZIP"),
    mailing=("MAILING_ADDRESS1", "MAILING_SECONDARY_ADDRESS", "MAILING_CITY", "MAILING_STATE",
             "MAILING_ZIP"),
)

CONTRA_COSTA = Layout(
    name="contra_costa",
    description="Contra Costa County, CA: tab-delimited, structured residence address, "
    "five election blocks.",
    delimiter="\t",
    quoting="enclosed",
    encodings=("utf-8", "cp1252", "latin-1"),
    columns=_cols(
        """
        RegistrationNumber VoterID VoterTitle LastName FirstName MiddleName NameSuffix
        Gender ResidenceCity ResidenceZipCode HouseNumber PreDirection StreetName
        StreetSuffix PostDirection UnitAbbr UnitNumber MailAddress1 MailAddress2
        MailAddress3 MailAddress4 MailCity MailState MailZip PhoneNumber EmailAddress
        RegistrationDate BirthDate BirthPlace PartyName PartyAbbr Language
        VBMProgramStatus PrecinctID PrecinctPortion PrecinctName
        """
    ) + _ELECTIONS + ("StatusReason",),
    required=("VoterID", "LastName", "FirstName", "HouseNumber", "StreetName",
              "ResidenceCity", "ResidenceZipCode"),
    id_column="VoterID",
    fields={
        "first_name": "FirstName", "middle_name": "MiddleName", "last_name": "LastName",
        "name_suffix": "NameSuffix", "birth_date": "BirthDate",
        "registration_date": "RegistrationDate", "party": "PartyAbbr",
        "precinct": "PrecinctName", "county": Const("Contra Costa"), "phone": "PhoneNumber",
        "email": "EmailAddress",
    },
    dates={"birth_date": "MDY", "registration_date": "MDY"},
    residence=AddressSpec(
        street=("HouseNumber", "PreDirection", "StreetName", "StreetSuffix", "PostDirection"),
        unit=("UnitAbbr", "UnitNumber"), city="ResidenceCity", state=Const("CA"),
        zip_code="ResidenceZipCode",
    ),
    mailing=("MailAddress1", "MailAddress2", "MailAddress3", "MailAddress4", "MailCity",
             "MailState", "MailZip"),
)

SIMPLE_ALIASES: dict[str, tuple[str, ...]] = {
    # Our field -> the header spellings it is read from, first match wins.
    # Matched loosely (case, spaces, underscores, hyphens ignored), so
    # "Street Address" finds street_address and "ZIP-Code" zip_code.
    "voter_id": ("voter_id", "id", "ncid", "sos_voterid", "registrant_id", "state_voter_id",
                 "voter_number", "registration_number", "voter_reg_num", "state_id",
                 "voter_file_id", "van_id"),
    "first_name": ("first_name", "first", "given_name", "forename", "fname"),
    "middle_name": ("middle_name", "middle", "middle_initial", "mi"),
    "last_name": ("last_name", "last", "surname", "family_name", "lname"),
    "name_suffix": ("name_suffix", "suffix"),
    "birth_date": ("birth_date", "dob", "date_of_birth", "birthdate", "birthday"),
    "birth_year": ("birth_year", "year_of_birth", "yob"),
    "party": ("party", "party_affiliation", "party_code", "party_cd", "party_name"),
    "phone": ("phone", "phone_number", "telephone", "tel", "cell", "mobile", "full_phone_number"),
    "email": ("email", "email_address", "e_mail"),
    "precinct": ("precinct", "precinct_name", "precinct_code", "precinct_id"),
    "county": ("county", "county_name"),
    "status": ("status", "voter_status"),
    "registration_date": ("registration_date", "registered", "reg_date"),
    "street": ("address", "street", "street_address", "address1", "address_1", "address_line_1",
               "addr", "addr1", "residential_address", "residential_address1",
               "residence_address", "res_address", "res_street_address", "home_address"),
    "unit": ("address2", "address_2", "address_line_2", "addr2", "apt", "apt_no", "apt_number",
             "unit", "unit_number", "suite", "apartment", "apt_unit", "residential_secondary_addr"),
    "city": ("city", "residential_city", "res_city", "town", "city_name"),
    "state": ("state", "residential_state", "state_code", "st"),
    "zip": ("zip", "zip_code", "zipcode", "postal_code", "postcode", "zip5", "residential_zip"),
}

SIMPLE_CSV = Layout(
    name="simple_csv",
    description="Hand-made list or vendor export: comma, semicolon, pipe or tab delimited "
    "(sniffed), with first and last name and a street address, in generously spelled "
    "columns (or named by a mapping). Voters are keyed by the id column when there is one "
    "(Voter ID, voter_id, id, ncid ...), otherwise by name, address and date of birth.",
    delimiter=",",
    quoting="csv",
    encodings=("utf-8", "cp1252"),
    columns=("first_name", "last_name", "email", "phone", "address", "city", "state", "zip"),
    required=("first_name", "last_name"),
    id_column=None,
    fields={name: SIMPLE_ALIASES[name] for name in (
        "first_name", "middle_name", "last_name", "name_suffix", "birth_date", "birth_year",
        "party", "phone", "email", "precinct", "county", "status", "registration_date")},
    dates={"birth_date": "ANY", "registration_date": "ANY"},
    integers=("birth_year",),
    residence=AddressSpec(
        street=SIMPLE_ALIASES["street"][:1], unit=(), city=SIMPLE_ALIASES["city"],
        state=SIMPLE_ALIASES["state"], zip_code=SIMPLE_ALIASES["zip"],
    ),
    id_aliases=SIMPLE_ALIASES["voter_id"],
    bind=True,
    multiline=True,
    warn_fallback=True,
    needs_address=True,
)

LAYOUTS: dict[str, Layout] = {
    layout.name: layout for layout in (NC_STATEWIDE, OH_SWVF, CONTRA_COSTA, SIMPLE_CSV)
}


def get_layout(name: str) -> Layout:
    try:
        return LAYOUTS[name]
    except KeyError:
        raise InputError(
            f"Unknown voter file format {name!r}; valid formats: auto, "
            f"{', '.join(LAYOUTS)}",
            code="unknown_format", problem=Problem.UNPROCESSABLE,
            details={"format": name, "valid": ["auto", *LAYOUTS]},
        ) from None
