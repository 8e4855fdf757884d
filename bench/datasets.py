"""The suite's data sets: a database and a Redis database per profile count.

Each count has a database of its own on the configured PostgreSQL server (the
configured name plus ``_bench100k``, ``_bench1m``, ``_bench5m``) and a Redis
database of its own on the configured Redis server (:data:`REDIS_DBS`), so
neither the demo's data nor the tests' is touched. A data set is reused when
the table holds exactly the expected count and carries the marker the suite
writes after a complete load (:data:`MARKER_TABLE`); the Redis index is
reused when its last refresh was a full one of that many profiles from the
same change log. Otherwise the suite reseeds with ``load_data.py --reset
--yes --count N`` and rebuilds with ``worker.py refresh --full``, each as its
own process with ``DATABASE_URL`` and ``REDIS_URL`` pointing at the data set.

The query centres come from here too: real profile locations of the
categories in the mix, drawn with a fixed seed.
"""

import logging
import os
import random
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

from sqlalchemy import Engine
from sqlalchemy import create_engine
from sqlalchemy import text
from sqlalchemy.engine import make_url

from nearby import cells
from nearby import loader

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent

DATABASE_SUFFIX = {100_000: "_bench100k", 1_000_000: "_bench1m", 5_000_000: "_bench5m"}
REDIS_DBS = {1_000_000: 10, 100_000: 11, 5_000_000: 13}
"""Redis database of each count. 12 is bench/refresh.py's, 14 and 15 the tests'."""

MARKER_TABLE = "bench_dataset"
MARKER_CREATE_SQL = text(
    f"CREATE TABLE IF NOT EXISTS {MARKER_TABLE} "
    "(profiles bigint NOT NULL, seeded_at timestamptz NOT NULL DEFAULT now())"
)
MARKER_DROP_SQL = text(f"DROP TABLE IF EXISTS {MARKER_TABLE}")
MARKER_WRITE_SQL = text(
    f"TRUNCATE {MARKER_TABLE}; INSERT INTO {MARKER_TABLE} (profiles) VALUES (:n)"
)
MARKER_READ_SQL = text(
    "SELECT (SELECT profiles FROM bench_dataset LIMIT 1) AS marked, "
    "(SELECT count(*) FROM profiles) AS counted"
)
MARKER_EXISTS_SQL = text(
    "SELECT to_regclass(:marker) IS NOT NULL AND to_regclass('profiles') IS NOT NULL"
)
CHANGE_LOG_ID_SQL = text("SELECT log_id::text FROM profile_change_log LIMIT 1")
PENDING_CHANGES_SQL = text("SELECT count(*) FROM profile_changes")

META_KEY = "nearby:v1:meta"
"""The hash the refresh writes (see ``nearby/geoindex.py``)."""

CENTRES_SQL = text(
    """
    SELECT ST_X(location::geometry) AS lon, ST_Y(location::geometry) AS lat
    FROM profiles
    WHERE categories @> ARRAY[CAST(:category AS text)]
      AND abs(ST_Y(location::geometry)) < 85
    ORDER BY md5(id::text || :salt)
    LIMIT :n
    """
)
"""Real locations of a category's members, in an order fixed by the salt."""

CENTRE_TABLE_SQL = [
    text("DROP TABLE IF EXISTS bench_centres"),
    text(
        "CREATE TABLE bench_centres (n int, radius_km int, lon float8 NOT NULL, "
        "lat float8 NOT NULL, categories text NOT NULL, category text NOT NULL, "
        "cell_low text NOT NULL, cell_high text NOT NULL, "
        "PRIMARY KEY (n, radius_km))"
    ),
]
CENTRE_INSERT_SQL = text(
    "INSERT INTO bench_centres "
    "(n, radius_km, lon, lat, categories, category, cell_low, cell_high) "
    "VALUES (:n, :radius_km, :lon, :lat, :categories, :category, :cell_low, "
    ":cell_high)"
)
"""The centres pgbench draws from, at each radius: ``categories`` and the
geohash ranges of the circle (:func:`nearby.cells.cover`) are text[]
literals."""


@dataclass(frozen=True)
class Dataset:
    """Where the data set of ``profiles`` profiles lives."""

    profiles: int
    database_url: str
    redis_url: str

    @property
    def label(self) -> str:
        return f"{self.profiles:,}"

    def env(self) -> dict[str, str]:
        """Return the environment of a process that serves this data set."""
        return os.environ | {
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
        }

    def engine(self) -> Engine:
        return create_engine(self.database_url, pool_size=2)


@dataclass(frozen=True)
class Centre:
    """One query: a category and a real member's location (degrees)."""

    category: str
    size_class: str
    lon: float
    lat: float


def dataset(profiles: int, database_url: str, redis_url: str) -> Dataset:
    """Return the data set of ``profiles`` on the servers of the two URLs."""
    url = make_url(database_url)
    suffix = DATABASE_SUFFIX.get(profiles, f"_bench{profiles}")
    scratch = url.set(database=f"{url.database}{suffix}")
    db = REDIS_DBS.get(profiles, 10)
    redis_scratch = urlunsplit(urlsplit(redis_url)._replace(path=f"/{db}"))
    return Dataset(
        profiles, scratch.render_as_string(hide_password=False), redis_scratch
    )


def prepare(data: Dataset, client) -> dict[str, float]:
    """Make sure the data set holds its profiles and Redis its index.

    ``client`` is a Redis client on the data set's database. Returns the
    seconds spent seeding and refreshing (0 for a step that was reused).

    Raises:
        SystemExit: a seeding or refresh command failed; its output is shown.
    """
    _create_database(data.database_url)
    spent = {"seed_s": 0.0, "refresh_s": 0.0}

    engine = data.engine()
    try:
        seeded = _is_seeded(engine, data.profiles)
        if not seeded:
            log.info("dataset %s: seeding", data.label)
            # Gone first: a load stopped after its rows but before its indexes
            # must not look complete.
            with engine.begin() as conn:
                conn.execute(MARKER_DROP_SQL)
            spent["seed_s"] = _run(
                data,
                "load_data.py",
                "--reset",
                "--yes",
                "--count",
                str(data.profiles),
            )
            with engine.begin() as conn:
                conn.execute(MARKER_CREATE_SQL)
                conn.execute(MARKER_WRITE_SQL, {"n": data.profiles})

        else:
            # A data set seeded by an older nearby gains what this one adds.
            loader.prepare_schema(engine)

        if not _index_matches(engine, client, data.profiles):
            log.info("dataset %s: building the Redis index", data.label)
            spent["refresh_s"] = _run(data, "worker.py", "refresh", "--full")
            if not _index_matches(engine, client, data.profiles):
                raise SystemExit(
                    f"dataset {data.label}: the index does not match after a full "
                    "refresh"
                )
    finally:
        engine.dispose()
    return spent


def _create_database(database_url: str) -> None:
    url = make_url(database_url)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"),
                {"n": url.database},
            ).scalar()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{url.database}"'))
    finally:
        admin.dispose()


def _is_seeded(engine: Engine, profiles: int) -> bool:
    with engine.connect() as conn:
        if not conn.execute(MARKER_EXISTS_SQL, {"marker": MARKER_TABLE}).scalar():
            return False
        row = conn.execute(MARKER_READ_SQL).one()
    return row.marked == profiles and row.counted == profiles


def _index_matches(engine: Engine, client, profiles: int) -> bool:
    meta = client.hgetall(META_KEY)
    with engine.connect() as conn:
        log_id = conn.execute(CHANGE_LOG_ID_SQL).scalar() or ""
        pending = conn.execute(PENDING_CHANGES_SQL).scalar()
    return (
        meta.get("profiles") == str(profiles)
        and meta.get("log_id") == log_id
        and pending == 0
    )


def _run(data: Dataset, *args: str) -> float:
    """Run one of the project's commands on the data set; return its seconds."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=data.env() | {"LOG_LEVEL": "WARNING"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(args)} failed with status {done.returncode}:\n"
            f"{done.stdout[-3000:]}"
        )
    return time.perf_counter() - started


def category_mix(
    sizes: dict[str, int], per_class: int, min_members: int
) -> dict[str, list[str]]:
    """Pick ``per_class`` small, median and large categories from their sizes.

    ``sizes`` maps each category to its members. Small categories are those
    nearest the 10th percentile of sizes (but of at least ``min_members``, so
    that a centre can be drawn), median ones nearest the median, large ones
    the largest.
    """
    ranked = sorted(
        (name for name, members in sizes.items() if members >= min_members),
        key=lambda name: (sizes[name], name),
    )
    if len(ranked) < 3 * per_class:
        raise SystemExit(
            f"only {len(ranked)} categories hold {min_members} members or more; "
            f"the mix needs {3 * per_class}"
        )

    def around(quantile: float) -> list[str]:
        middle = int(quantile * (len(ranked) - 1))
        start = max(0, min(len(ranked) - per_class, middle - per_class // 2))
        return ranked[start : start + per_class]

    return {
        "small": around(0.10),
        "median": around(0.50),
        "large": ranked[-per_class:],
    }


def mix_sizes(mix: dict[str, list[str]], sizes: dict[str, int]) -> dict[str, float]:
    """Return the median members of each class of the mix."""
    return {
        size_class: statistics.median(sizes[name] for name in names)
        for size_class, names in mix.items()
    }


def draw_centres(
    engine: Engine, mix: dict[str, list[str]], per_category: int, seed: int
) -> list[Centre]:
    """Return real member locations of every category of the mix, shuffled.

    Centres stay within latitude 85, where Redis can search.
    """
    centres = []
    with engine.connect() as conn:
        for size_class, names in mix.items():
            for name in names:
                rows = conn.execute(
                    CENTRES_SQL,
                    {"category": name, "salt": str(seed), "n": per_category},
                ).all()
                centres += [Centre(name, size_class, row.lon, row.lat) for row in rows]
    random.Random(seed).shuffle(centres)
    return centres


SIZES_SQL = text(
    "SELECT category, count(*) AS members FROM profile_categories GROUP BY category"
)


def add_profiles_argument(parser) -> None:
    """Add ``--profiles``, which of the suite's data sets a script works on."""
    parser.add_argument(
        "--profiles",
        type=int,
        default=1_000_000,
        choices=sorted(DATABASE_SUFFIX),
        help="the suite's data set to use (default 1000000)",
    )


def mix_centres(
    engine: Engine, per_class: int, per_category: int, seed: int
) -> list[Centre]:
    """Return the centres of the suite's category mix, sized from the data set."""
    with engine.connect() as conn:
        sizes = {row.category: row.members for row in conn.execute(SIZES_SQL)}
    mix = category_mix(sizes, per_class, min_members=per_category)
    return draw_centres(engine, mix, per_category, seed)


def write_centre_table(
    engine: Engine, centres: list[Centre], radii_km: tuple[int, ...]
) -> None:
    """Store the centres, numbered from 1, for pgbench to draw from."""
    rows = []
    for number, centre in enumerate(centres, start=1):
        for radius_km in radii_km:
            cover = cells.cover(centre.lon, centre.lat, radius_km * 1000.0)
            rows.append(
                {
                    "n": number,
                    "radius_km": radius_km,
                    "lon": centre.lon,
                    "lat": centre.lat,
                    "categories": "{" + centre.category + "}",
                    "category": centre.category,
                    "cell_low": _text_array(cover.low),
                    "cell_high": _text_array(cover.high),
                }
            )
    with engine.begin() as conn:
        for statement in CENTRE_TABLE_SQL:
            conn.execute(statement)
        conn.execute(CENTRE_INSERT_SQL, rows)


def _text_array(values: tuple[str, ...]) -> str:
    """Return a text[] literal of ``values``, every element quoted (a geohash
    bound may end in ``{`` or be empty)."""
    return "{" + ",".join(f'"{value}"' for value in values) + "}"
