"""Every SQL statement of nearby: schema, bulk load, search and streaming reads.

Values are always bound as query parameters, never formatted into SQL text.
Spherical functions run with ``use_spheroid => false`` and their distances are
converted to the model sphere of :mod:`nearby.geo`, so that this backend and
Redis measure alike.
"""

import dataclasses
import io
import logging
import re
import struct
import threading
import time
from collections.abc import Iterable
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection
from sqlalchemy import Engine
from sqlalchemy import TextClause
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import InterfaceError
from sqlalchemy.exc import InternalError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.schema import CreateIndex

from nearby import cells
from nearby import geo
from nearby import models
from nearby.category import CATEGORY_MAX_LENGTH
from nearby.errors import AreaTooLarge
from nearby.errors import BackendUnavailable
from nearby.errors import SchemaMissing
from nearby.errors import UnknownCategory
from nearby.geo import Hit

log = logging.getLogger(__name__)

# undefined_table, undefined_column, undefined_function, undefined_object
MISSING_OBJECT_CODES = {"42P01", "42703", "42883", "42704"}

PING_SQL = text(
    "SELECT id, name, city, location, categories, updated_at FROM profiles LIMIT 0; "
    "SELECT category, geohash, profile_id, location FROM profile_categories LIMIT 0"
)

TOUCH_FUNCTION_SQL = text(
    """
    CREATE OR REPLACE FUNCTION nearby_touch_updated_at() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        NEW.updated_at := now();
        RETURN NEW;
    END
    $$
    """
)

TOUCH_TRIGGER_SQL = text(
    """
    CREATE OR REPLACE TRIGGER profiles_touch_updated_at
    BEFORE INSERT OR UPDATE ON profiles
    FOR EACH ROW EXECUTE FUNCTION nearby_touch_updated_at()
    """
)

CHANGE_LOG_SQL = [
    text(
        """
        CREATE TABLE IF NOT EXISTS profile_changes (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            profile_id bigint,
            old_categories text[],
            changed_at timestamptz NOT NULL DEFAULT now()
        )
        """
    ),
    text(
        "CREATE INDEX IF NOT EXISTS profile_changes_rebuild "
        "ON profile_changes (seq) WHERE profile_id IS NULL"
    ),
    text(
        """
        CREATE TABLE IF NOT EXISTS profile_change_log (
            log_id uuid NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """
    ),
    text(
        "INSERT INTO profile_change_log (log_id) SELECT gen_random_uuid() "
        "WHERE NOT EXISTS (SELECT 1 FROM profile_change_log)"
    ),
    text(
        """
        CREATE OR REPLACE FUNCTION nearby_log_inserted() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
        BEGIN
            INSERT INTO profile_changes (profile_id) SELECT id FROM new_rows;
            RETURN NULL;
        END
        $$
        """
    ),
    text(
        """
        CREATE OR REPLACE FUNCTION nearby_log_updated() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
        BEGIN
            INSERT INTO profile_changes (profile_id, old_categories)
            SELECT id, categories FROM old_rows
            UNION ALL
            SELECT id, NULL FROM new_rows
            WHERE id NOT IN (SELECT id FROM old_rows);
            RETURN NULL;
        END
        $$
        """
    ),
    text(
        """
        CREATE OR REPLACE FUNCTION nearby_log_deleted() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
        BEGIN
            INSERT INTO profile_changes (profile_id, old_categories)
            SELECT id, categories FROM old_rows;
            RETURN NULL;
        END
        $$
        """
    ),
    text(
        """
        CREATE OR REPLACE FUNCTION nearby_log_truncated() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
        BEGIN
            INSERT INTO profile_changes (profile_id) VALUES (NULL);
            RETURN NULL;
        END
        $$
        """
    ),
    text(
        """
        CREATE OR REPLACE FUNCTION nearby_change_log_lost() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
        BEGIN
            UPDATE profile_change_log SET log_id = gen_random_uuid();
            RETURN NULL;
        END
        $$
        """
    ),
    text(
        "CREATE OR REPLACE TRIGGER profiles_log_inserted AFTER INSERT ON profiles "
        "REFERENCING NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION nearby_log_inserted()"
    ),
    text(
        "CREATE OR REPLACE TRIGGER profiles_log_updated AFTER UPDATE ON profiles "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION nearby_log_updated()"
    ),
    text(
        "CREATE OR REPLACE TRIGGER profiles_log_deleted AFTER DELETE ON profiles "
        "REFERENCING OLD TABLE AS old_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION nearby_log_deleted()"
    ),
    text(
        "CREATE OR REPLACE TRIGGER profiles_log_truncated AFTER TRUNCATE ON profiles "
        "FOR EACH STATEMENT EXECUTE FUNCTION nearby_log_truncated()"
    ),
    text(
        "CREATE OR REPLACE TRIGGER profile_changes_lost "
        "AFTER TRUNCATE ON profile_changes "
        "FOR EACH STATEMENT EXECUTE FUNCTION nearby_change_log_lost()"
    ),
]
"""The change log: triggers record every write to profiles, whoever makes it.

Its functions run with the privileges of the schema's owner (SECURITY
DEFINER, with the search_path the schema was made with), so that a writer
needs privileges on profiles alone.

Statement-level triggers with transition tables add one INSERT per statement,
not one per row. A row names a profile and the categories it had before the
change (none for an insert); a row without a profile asks for a full rebuild
(a TRUNCATE). ``profile_change_log`` holds one id, renewed if the log itself
is truncated, so that a refresh can tell a log it can trust.
"""

SEARCH_KEY_ROWS_SQL = """
    SELECT DISTINCT category,
           coalesce(ST_GeoHash(location::geometry, {precision}), '') AS geohash,
           id, location
    FROM {source}, unnest(categories) AS category
    WHERE category IS NOT NULL AND octet_length(category) <= {longest}
    """.replace("{precision}", str(cells.STORED_PRECISION)).replace(
    "{longest}", str(CATEGORY_MAX_LENGTH)
)
"""The ``profile_categories`` rows of the profiles in ``{source}``, each
category of a profile once. An empty point has the empty geohash (no circle
holds it, but its category is known). A NULL category, or one longer than any
slug, which no search can ask for, has no row: the write that holds it goes
through."""

SEARCH_KEY_COLUMNS = "(category, geohash, profile_id, location)"

CHANGED_SQL = """
    NOT EXISTS (
        SELECT FROM {other}_rows AS other
        WHERE other.id = {side}_rows.id
          AND other.categories IS NOT DISTINCT FROM {side}_rows.categories
          AND ST_AsBinary(other.location) = ST_AsBinary({side}_rows.location)
    )
    """
"""Keeps the rows of an UPDATE that changed a profile's location or
categories (or its id): the others keep their search key as it is."""

CHANGED_OLD_ROWS_SQL = (
    "(SELECT * FROM old_rows WHERE "
    + CHANGED_SQL.format(side="old", other="new")
    + ") AS old_rows"
)
CHANGED_NEW_ROWS_SQL = (
    "(SELECT * FROM new_rows WHERE "
    + CHANGED_SQL.format(side="new", other="old")
    + ") AS new_rows"
)

SEARCH_KEY_DELETE_SQL = """
    DELETE FROM profile_categories
    WHERE profile_id IN (SELECT id FROM {source})
    """
"""Removes every row of the profiles in ``{source}``, by id: whatever a row
holds (even one left stale by writes made with the triggers off), a write of
its profile replaces it."""

SEARCH_KEY_GUARD_SQL = """
    IF to_regclass('profile_categories') IS NULL THEN
        RETURN NULL;
    END IF;
    """
"""A trigger of the search key lets the write through when the table is gone
(dropped by hand, say); /health then reports it, and the next run of the
loader builds it again from profiles."""


def _key_function(name: str, body: str) -> TextClause:
    # SECURITY DEFINER: a writer needs privileges on profiles alone; the
    # search_path is fixed to the one the schema was made with.
    return text(
        f"""
        CREATE OR REPLACE FUNCTION {name}() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
        BEGIN
            {SEARCH_KEY_GUARD_SQL}
            {body}
            RETURN NULL;
        END
        $$
        """
    )


SEARCH_KEY_SQL = [
    _key_function(
        "nearby_key_inserted",
        f"INSERT INTO profile_categories {SEARCH_KEY_COLUMNS} "
        f"{SEARCH_KEY_ROWS_SQL.format(source='new_rows')};",
    ),
    _key_function(
        "nearby_key_deleted",
        SEARCH_KEY_DELETE_SQL.format(source="old_rows") + ";",
    ),
    _key_function(
        "nearby_key_updated",
        SEARCH_KEY_DELETE_SQL.format(source=CHANGED_OLD_ROWS_SQL)
        + f"; INSERT INTO profile_categories {SEARCH_KEY_COLUMNS} "
        + SEARCH_KEY_ROWS_SQL.format(source=CHANGED_NEW_ROWS_SQL)
        + ";",
    ),
    _key_function("nearby_key_truncated", "TRUNCATE profile_categories;"),
    text(
        "CREATE OR REPLACE TRIGGER profiles_key_inserted AFTER INSERT ON profiles "
        "REFERENCING NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION nearby_key_inserted()"
    ),
    text(
        "CREATE OR REPLACE TRIGGER profiles_key_updated AFTER UPDATE ON profiles "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION nearby_key_updated()"
    ),
    text(
        "CREATE OR REPLACE TRIGGER profiles_key_deleted AFTER DELETE ON profiles "
        "REFERENCING OLD TABLE AS old_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION nearby_key_deleted()"
    ),
    text(
        "CREATE OR REPLACE TRIGGER profiles_key_truncated AFTER TRUNCATE ON profiles "
        "FOR EACH STATEMENT EXECUTE FUNCTION nearby_key_truncated()"
    ),
    *(
        text(f"ALTER TABLE profiles ENABLE ALWAYS TRIGGER profiles_key_{event}")
        for event in ("inserted", "updated", "deleted", "truncated")
    ),
]
"""The triggers that keep ``profile_categories`` (see :mod:`nearby.models`) in
step with profiles: one statement per write, in the writer's transaction.
They fire always, even for a session that skips the others (the bulk
loader's), since a search reads nothing else."""

SEARCH_KEY_EXISTS_SQL = text("SELECT to_regclass('profile_categories') IS NOT NULL")

BACKFILL_SEARCH_KEY_SQL = text(
    f"INSERT INTO profile_categories {SEARCH_KEY_COLUMNS} "
    + SEARCH_KEY_ROWS_SQL.format(source="profiles")
    + " ORDER BY 1, 2"
)
"""Fills a new ``profile_categories`` from the profiles already there."""

MARK_UNTRACKED_LOAD_SQL = (
    "INSERT INTO profile_changes (profile_id) SELECT NULL "
    "WHERE current_setting('session_replication_role') = 'replica'"
)
"""A bulk load with triggers off leaves a full-rebuild marker in its batch."""

LOCK_PROFILES_SQL = text("LOCK TABLE profiles IN ACCESS SHARE MODE")
CHANGE_LOG_ID_SQL = text("SELECT log_id::text FROM profile_change_log LIMIT 1")
REBUILD_MARKER_SQL = text(
    "SELECT EXISTS (SELECT 1 FROM profile_changes WHERE profile_id IS NULL)"
)
STREAM_CHANGES_SQL = text(
    "SELECT seq, profile_id, coalesce(old_categories, '{}') AS old_categories "
    "FROM profile_changes WHERE profile_id IS NOT NULL ORDER BY seq"
)
PROFILES_BY_ID_SQL = text(
    """
    SELECT id, ST_X(point) AS lon, ST_Y(point) AS lat, categories,
           json_build_array(name, city, ST_X(point), ST_Y(point))::text AS info
    FROM profiles, LATERAL (SELECT location::geometry AS point) AS p
    WHERE id = ANY(CAST(:ids AS bigint[]))
    """
)
FORGET_CHANGES_THROUGH_SQL = text("DELETE FROM profile_changes WHERE seq <= :seq")
FORGET_CHANGES_SQL = text("DELETE FROM profile_changes")

COPY_SQL = (
    "COPY profiles (name, city, country, occupation, email, location, categories) "
    "FROM STDIN"
)
"""COPY in the text format: tab-separated, ``\\N`` for NULL, backslash escapes."""

COPY_NULL = "\\N"
COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
COPY_SPECIAL = re.compile(r"[\\\n\r]")
"""What a text field must not hold unescaped, besides the tab."""
COPY_FIELDS = 7

COPY_CHUNK_BYTES = 1 << 20
"""Bytes handed to the driver per write of a COPY."""

EWKB_POINT = struct.Struct("<BIIdd")
"""Little-endian EWKB of a point with an SRID: order, type, SRID, x, y."""
EWKB_LITTLE_ENDIAN = 1
EWKB_POINT_WITH_SRID = 0x20000001
WGS84_SRID = 4326

SECONDARY_INDEXES = tuple(
    sorted(
        models.profiles.indexes | models.profile_categories.indexes,
        key=lambda index: index.name,
    )
)
"""The GiST indexes on location (as geography and as geometry), the GIN index
on categories and the B-tree of ``profile_categories``."""

BULK_MAINTENANCE_WORK_MEM_SQL = text("SET LOCAL maintenance_work_mem = '256MB'")
"""Memory of each session that builds a secondary index, on the server."""

BULK_BUFFERED_GIST_SQL = text("SET LOCAL effective_cache_size = '64MB'")
"""Makes a GiST build switch to buffering once the index outgrows 64 MB.

PostgreSQL's buffering build, meant for indexes larger than the cache, starts
when the index outgrows ``effective_cache_size``; the geography index of
millions of points outgrows shared buffers long before the default 4 GB, and
builds about a tenth faster buffered. Only the building session's estimate
changes.
"""

LOAD_LOCK_KEY = 0x6E656172
"""Key of the advisory lock that one load at a time holds (``'near'``)."""

TRY_LOAD_LOCK_SQL = text("SELECT pg_try_advisory_lock(:key)")
UNLOCK_LOAD_SQL = text("SELECT pg_advisory_unlock(:key)")

SKIP_ROW_TRIGGERS_SQL = text("SET session_replication_role = replica")
RESTORE_ROW_TRIGGERS_SQL = text("RESET session_replication_role")

COUNTRY_COUNTS_SQL = text(
    """
    SELECT country, count(*) AS profiles
    FROM profiles
    GROUP BY country
    ORDER BY country
    """
)

CENTER_SQL = "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography"

PAGE_COLUMNS_SQL = """
    id, name, city, p.lon, p.lat, p.distance_pg
    """
POINT_SQL = f"""
    LATERAL (
        SELECT ST_X(location::geometry) AS lon,
               ST_Y(location::geometry) AS lat,
               ST_Distance(location, {CENTER_SQL}, false) AS distance_pg
    ) AS p
    """
AFTER_SQL = """
    AND (p.distance_pg, id) > (
        ST_Distance(
            ST_SetSRID(ST_MakePoint(:after_lon, :after_lat), 4326)::geography,
            ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography,
            false
        ),
        :after_id
    )
    """
"""Keeps the results past the last one of the page before, in (distance, id)
order; the last one's distance is measured here as every row's is, so that
ties at one spot continue by id."""

BOX_SQL = """
    AND ST_Y(location::geometry) BETWEEN :south AND :north
    AND CASE
        WHEN :west <= :east THEN
            ST_X(location::geometry) BETWEEN :west AND :east
            OR (abs(ST_X(location::geometry)) = 180 AND (:west = -180 OR :east = 180))
        ELSE ST_X(location::geometry) >= :west OR ST_X(location::geometry) <= :east
    END
    """
"""Exact longitude/latitude bounds of a box; longitudes -180 and 180 are one
meridian."""


ENVELOPES_SQL = """
    AND (
        location::geometry && ST_MakeEnvelope(:west_1, :south, :east_1, :north, 4326)
        OR location::geometry && ST_MakeEnvelope(:west_2, :south, :east_2, :north, 4326)
    )
    """
"""The index test of a box: two rectangles in degrees, answered by the planar
GiST index on ``location::geometry`` (see :func:`_envelopes`)."""


def _area_sql(box: bool, after: bool) -> TextClause:
    if box:
        area = ENVELOPES_SQL + BOX_SQL
    else:
        area = f"AND ST_DWithin(location, {CENTER_SQL}, :radius_pg, false)"
    return text(
        f"""
        WITH area AS MATERIALIZED (
            SELECT id, name, city, location
            FROM profiles
            WHERE categories && CAST(:categories AS text[])
              {area}
            LIMIT :scan_limit
        )
        SELECT counted.scanned, page.*
        FROM (SELECT count(*) AS scanned FROM area) AS counted
        LEFT JOIN LATERAL (
            SELECT {PAGE_COLUMNS_SQL}
            FROM area, {POINT_SQL}
            WHERE counted.scanned < :scan_limit {AFTER_SQL if after else ""}
            ORDER BY p.distance_pg, id
            LIMIT :page_limit
        ) AS page ON true
        """
    )


def _keyed_area_sql(after: bool) -> TextClause:
    return text(
        f"""
        WITH area AS MATERIALIZED (
            SELECT k.id, k.location
            FROM unnest(CAST(:cell_low AS text[]), CAST(:cell_high AS text[]))
                AS cell (low, high),
            LATERAL (
                SELECT profile_id AS id, location
                FROM profile_categories
                WHERE category = :category
                  AND geohash >= cell.low AND geohash < cell.high
                  AND ST_DWithin(location, {CENTER_SQL}, :radius_pg, false)
                OFFSET 0
            ) AS k
            LIMIT :scan_limit
        )
        SELECT counted.scanned, page.id, profiles.name, profiles.city,
               page.lon, page.lat, page.distance_pg, counted.known
        FROM (
            SELECT count(*) AS scanned,
                   EXISTS (
                       SELECT FROM profile_categories WHERE category = :category
                   ) AS known
            FROM area
        ) AS counted
        LEFT JOIN LATERAL (
            SELECT id, p.lon, p.lat, p.distance_pg
            FROM area, {POINT_SQL}
            WHERE counted.scanned < :scan_limit {AFTER_SQL if after else ""}
            ORDER BY p.distance_pg, id
            LIMIT :page_limit
        ) AS page ON true
        LEFT JOIN profiles ON profiles.id = page.id
        ORDER BY page.distance_pg, page.id
        """
    )


def _nearest_sql(after: bool) -> TextClause:
    return text(
        f"""
        WITH near AS MATERIALIZED (
            SELECT location
            FROM profiles
            WHERE categories && CAST(:categories AS text[])
              AND ST_DWithin(location, {CENTER_SQL}, :radius_pg, false)
            ORDER BY location <-> {CENTER_SQL}
            LIMIT :depth
        )
        SELECT {PAGE_COLUMNS_SQL}
        FROM profiles, {POINT_SQL}
        WHERE categories && CAST(:categories AS text[])
          AND ST_DWithin(
              location,
              {CENTER_SQL},
              (
                  SELECT least(max(ST_Distance(location, {CENTER_SQL}, false))
                               + :reach_slack_pg, :radius_pg)
                  FROM near
              ),
              false
          )
          {AFTER_SQL if after else ""}
        ORDER BY p.distance_pg, id
        LIMIT :page_limit
        """
    )


AREA_SQL = {
    (box, after): _area_sql(box, after)
    for box in (False, True)
    for after in (False, True)
}
"""A radius or box search: the area's members, at most ``scan_limit`` of them
and counted, then one page of them nearest first. The count tells a search
that covers too many members, which then sorts none of them."""

KEYED_AREA_SQL = {after: _keyed_area_sql(after) for after in (False, True)}
"""A radius search of one category, from ``profile_categories``: the same
count and page as :data:`AREA_SQL`, and whether the category has members at
all, reading the category's members in the
geohash ranges that cover the circle (:func:`nearby.cells.cover`), distances
tested and measured from the index; only the page's rows join profiles, for
their names and cities."""

KEYED_PARAMETERS = (
    ("lon", "float8"),
    ("lat", "float8"),
    ("radius_pg", "float8"),
    ("category", "text"),
    ("cell_low", "text[]"),
    ("cell_high", "text[]"),
    ("scan_limit", "bigint"),
    ("page_limit", "bigint"),
)
AFTER_PARAMETERS = (
    ("after_lon", "float8"),
    ("after_lat", "float8"),
    ("after_id", "bigint"),
)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A statement that each connection prepares once and then executes by name.

    PostgreSQL parses and plans it at the first executions only, where a
    plain statement costs a parse and a plan on every call: for the radius
    search of one category, the plan took longer than running it.
    """

    name: str
    prepare: str
    execute: str

    @classmethod
    def of(cls, name: str, statement: TextClause, parameters) -> "Prepared":
        names = [parameter for parameter, _ in parameters]
        body = re.sub(
            r"(?<![:\w]):(\w+)",
            lambda match: f"${names.index(match.group(1)) + 1}",
            statement.text,
        )
        types = ", ".join(kind for _, kind in parameters)
        arguments = ", ".join(f"%({parameter})s" for parameter in names)
        return cls(
            name,
            prepare=f"PREPARE {name} ({types}) AS {body}",
            execute=f"EXECUTE {name} ({arguments})",
        )


KEYED_AREA_PREPARED = {
    after: Prepared.of(
        f"nearby_keyed_area{'_after' if after else ''}",
        KEYED_AREA_SQL[after],
        KEYED_PARAMETERS + (AFTER_PARAMETERS if after else ()),
    )
    for after in (False, True)
}

PREPARED_INFO_KEY = "nearby_prepared"
"""Key, in the info of a pooled DB-API connection, of the names it prepared."""

NEAREST_SQL = {after: _nearest_sql(after) for after in (False, True)}
"""A nearest search. The GiST index walks out from the centre to the ``depth``
nearest members by ``<->``; the farthest of them bounds a circle that holds at
least ``depth`` members, so the nearest ones by the model distance are all in
it, and those are sorted exactly."""

REACH_SLACK_PG = 1e-6
"""Metres added to the circle of a nearest search, against rounding in the last
digit between ``ST_Distance`` and ``ST_DWithin``; members it lets in beyond
the page are cut by the sort."""

KNN_ORDER_ERROR = "index returned tuples in wrong order"
"""PostgreSQL's error when an index walk by distance finds a row nearer than
the distance the index gave it."""

NO_INDEX_WALK_SQL = text(
    "SELECT set_config('enable_indexscan', 'off', true), "
    "set_config('enable_indexonlyscan', 'off', true)"
)
"""Makes the rest of the transaction order by exact distances, not walk the
GiST index by them; filters still use the indexes, through bitmap scans."""

UNKNOWN_CATEGORY_SQL = text(
    """
    SELECT c FROM unnest(CAST(:categories AS text[])) WITH ORDINALITY AS t(c, n)
    WHERE NOT EXISTS (SELECT 1 FROM profile_categories WHERE category = c)
    ORDER BY n
    LIMIT 1
    """
)

STREAM_SQL = text(
    """
    SELECT id, ST_X(point) AS lon, ST_Y(point) AS lat, categories,
           json_build_array(name, city, ST_X(point), ST_Y(point))::text AS info
    FROM profiles, LATERAL (SELECT location::geometry AS point) AS p
    """
)
"""Every profile as the indexes hold it. The display fields are encoded as
JSON by the server, on its own core; float8 output is the shortest text that
reads back as the same double, so coordinates survive exactly."""

CATEGORY_COUNTS_SQL = text(
    """
    SELECT category, count(*) AS members
    FROM profiles, unnest(categories) AS category
    GROUP BY category
    ORDER BY category
    """
)


@dataclass(frozen=True, slots=True)
class StreamedProfile:
    """The fields of a profile that the Redis indexes hold.

    ``info`` is the JSON array ``[name, city, lon, lat]``.
    """

    id: int
    lon: float
    lat: float
    categories: list[str]
    info: str


def ensure_schema(engine: Engine) -> None:
    """Create PostGIS, the profiles table, its indexes, triggers and change log.

    Raises:
        BackendUnavailable: PostgreSQL is unreachable.
        SchemaMissing: the PostGIS extension is not installed on the server and
            cannot be created (the message says which package provides it).
    """
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    except (OperationalError, InterfaceError) as exc:
        raise BackendUnavailable("postgis", _first_line(exc)) from exc
    except DBAPIError as exc:
        raise SchemaMissing(
            "PostGIS is not available on this PostgreSQL server (install "
            "postgresql-15-postgis-3, or run as a role that may CREATE EXTENSION): "
            f"{_first_line(exc)}"
        ) from exc

    with engine.begin() as conn:
        keyed = conn.execute(SEARCH_KEY_EXISTS_SQL).scalar_one()
        models.metadata.create_all(conn)
        conn.execute(TOUCH_FUNCTION_SQL)
        conn.execute(TOUCH_TRIGGER_SQL)
        for statement in CHANGE_LOG_SQL + SEARCH_KEY_SQL:
            conn.execute(statement)
        if not keyed:
            _backfill_search_key(conn)


def _backfill_search_key(conn: Connection) -> None:
    started = time.perf_counter()
    rows = conn.execute(BACKFILL_SEARCH_KEY_SQL).rowcount
    if rows:
        log.warning(
            "postgis: filled the new profile_categories with %d rows in %.1f s",
            rows,
            time.perf_counter() - started,
        )


def drop_schema(engine: Engine) -> None:
    """Drop the profiles table (and so every row it holds) and its change log."""
    with engine.begin() as conn:
        models.metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS profile_changes, profile_change_log"))


def drop_secondary_indexes(conn: Connection) -> None:
    """Drop the secondary indexes, inside the caller's transaction.

    For a bulk load into an empty table: building them once afterwards
    (:func:`create_secondary_indexes`) costs a fraction of maintaining them
    row by row. The primary key stays.
    """
    for index in SECONDARY_INDEXES:
        conn.execute(text(f'DROP INDEX IF EXISTS "{index.name}"'))


def missing_secondary_indexes(conn: Connection) -> list[str]:
    """Return the names of the secondary indexes that do not exist."""
    present = set(
        conn.execute(
            text(
                "SELECT indexname FROM pg_indexes "
                "WHERE schemaname = current_schema() "
                "AND tablename IN ('profiles', 'profile_categories')"
            )
        ).scalars()
    )
    return [index.name for index in SECONDARY_INDEXES if index.name not in present]


def create_secondary_indexes(engine: Engine) -> float:
    """Build the secondary indexes that are missing, each on its own connection.

    The builds run at once (``CREATE INDEX`` takes a SHARE lock, which does
    not conflict with itself), each with the ``maintenance_work_mem`` of
    :data:`BULK_MAINTENANCE_WORK_MEM_SQL`; writers wait until they end. Returns
    the wall time in seconds (0 when nothing was missing).

    Raises:
        sqlalchemy.exc.DBAPIError: a build failed (the first failure is
            raised once every build has ended).
    """
    with engine.connect() as conn:
        missing = set(missing_secondary_indexes(conn))
    if not missing:
        return 0.0
    started = time.perf_counter()
    failures: list[BaseException] = []

    def build(index) -> None:
        try:
            with engine.begin() as conn:
                conn.execute(BULK_MAINTENANCE_WORK_MEM_SQL)
                conn.execute(BULK_BUFFERED_GIST_SQL)
                conn.execute(CreateIndex(index, if_not_exists=True))
        except BaseException as exc:  # reported by the caller's thread
            failures.append(exc)

    threads = [
        threading.Thread(target=build, args=(index,), name=f"build {index.name}")
        for index in SECONDARY_INDEXES
        if index.name in missing
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return time.perf_counter() - started


def try_lock_loads(conn: Connection) -> bool:
    """Take the session's advisory lock of loads; tell whether it was free.

    The lock lasts as long as the connection, whatever its transactions do.
    """
    return bool(conn.execute(TRY_LOAD_LOCK_SQL, {"key": LOAD_LOCK_KEY}).scalar_one())


def unlock_loads(conn: Connection) -> None:
    """Release the advisory lock of :func:`try_lock_loads`."""
    conn.execute(UNLOCK_LOAD_SQL, {"key": LOAD_LOCK_KEY})


def skip_row_triggers(conn: Connection) -> bool:
    """Stop row triggers from firing in this session; tell whether it could.

    Only the session changes (``session_replication_role = replica``), so
    other writers keep their triggers. It takes a superuser, or the SET
    privilege on that parameter; anyone else keeps the triggers and is told
    ``False``. Ends the connection's transaction either way.
    """
    try:
        conn.execute(SKIP_ROW_TRIGGERS_SQL)
        conn.commit()
    except DBAPIError as exc:
        conn.rollback()
        log.debug("postgis: row triggers stay on: %s", _first_line(exc))
        return False
    return True


def restore_row_triggers(conn: Connection) -> None:
    """Make row triggers fire again in this session (undo :func:`skip_row_triggers`)."""
    conn.execute(RESTORE_ROW_TRIGGERS_SQL)


def transaction_id(conn: Connection) -> int:
    """Return the id of the transaction under way on ``conn``."""
    return conn.execute(text("SELECT txid_current()")).scalar_one()


def transaction_committed(engine: Engine, txid: int) -> bool:
    """Tell whether transaction ``txid`` committed, asked on a new connection."""
    with engine.connect() as conn:
        status = conn.execute(
            text("SELECT txid_status(:txid)"), {"txid": txid}
        ).scalar_one()
    return status == "committed"


def count_profiles(conn: Connection) -> int:
    """Return the number of rows of the profiles table."""
    return conn.execute(text("SELECT count(*) FROM profiles")).scalar_one()


def analyze(conn: Connection) -> None:
    """Refresh the planner's statistics of profiles and its search key."""
    conn.execute(text("ANALYZE profiles, profile_categories"))


def copy_profiles(dbapi_connection, rows: Iterable[tuple]) -> int:
    """Insert ``rows`` with one COPY, inside the caller's transaction.

    Each row is ``(name, city, country, occupation, email, lon, lat,
    categories)``; ``categories`` is a list of valid slugs. Returns the number
    of rows copied. The caller owns the batch size: everything in ``rows`` is
    buffered once as CSV text before it is sent.
    """
    data, count = encode_copy_rows(rows)
    copy_encoded(dbapi_connection, data)
    return count


def encode_copy_rows(rows: Iterable[tuple]) -> tuple[bytes, int]:
    """Return the text that :data:`COPY_SQL` reads for ``rows``, and their number.

    Rows are as :func:`copy_profiles` takes them; categories must be slugs,
    which need no quoting inside an array. A row of plain fields (see
    :func:`copy_line`) is one f-string; one with a NULL, a backslash, a tab
    or a line break in a field is escaped field by field.
    """
    lines = []
    for name, city, country, occupation, email, lon, lat, categories in rows:
        line = copy_line(name, city, country, occupation, email, lon, lat, categories)
        if (
            name is None
            or city is None
            or country is None
            or occupation is None
            or email is None
            or line.count("\t") != COPY_FIELDS - 1
            or COPY_SPECIAL.search(line)
        ):
            # The location and the categories, last, never need escapes.
            location, array = line.rsplit("\t", 2)[1:]
            fields = [
                COPY_NULL if field is None else field.translate(COPY_ESCAPES)
                for field in (name, city, country, occupation, email)
            ]
            line = "\t".join([*fields, location, array])
        lines.append(line)
    lines.append("")
    return "\n".join(lines).encode(), len(lines) - 1


def copy_line(
    name: str,
    city: str,
    country: str,
    occupation: str,
    email: str,
    lon: float,
    lat: float,
    categories: list[str],
) -> str:
    """Return the line of :data:`COPY_SQL` text for one row of plain fields.

    Plain: no field is None and none holds a tab, a line break or a
    backslash (:func:`is_plain_copy_text`); categories are slugs. The
    location is hexadecimal EWKB, which PostGIS parses faster than WKT and
    which carries every bit of both coordinates. :func:`encode_copy_rows`
    takes any row.
    """
    point = EWKB_POINT.pack(
        EWKB_LITTLE_ENDIAN, EWKB_POINT_WITH_SRID, WGS84_SRID, lon, lat
    )
    return (
        f"{name}\t{city}\t{country}\t{occupation}\t{email}\t{point.hex()}\t"
        f"{{{','.join(categories)}}}"
    )


def is_plain_copy_text(value: str) -> bool:
    """Tell whether ``value`` goes into COPY text as it is, without escapes."""
    return "\t" not in value and COPY_SPECIAL.search(value) is None


def copy_encoded(dbapi_connection, data: bytes) -> None:
    """Insert the rows of ``data``, made by :func:`encode_copy_rows`, with one COPY.

    Runs inside the caller's transaction. When the session skips triggers (a
    bulk load), the same transaction leaves a full-rebuild marker in the
    change log, so the rows reach Redis all the same.
    """
    with dbapi_connection.cursor() as cursor:
        cursor.execute(MARK_UNTRACKED_LOAD_SQL)
        cursor.copy_expert(COPY_SQL, io.BytesIO(data), size=COPY_CHUNK_BYTES)


def search_statement(search: geo.Search) -> tuple[TextClause, dict]:
    """Return the statement that :func:`search` runs for ``search``, and its
    parameters."""
    params = {
        "lon": search.lon,
        "lat": search.lat,
        "categories": list(search.categories),
        "page_limit": search.limit + 1,
    }
    after = search.after is not None
    if after:
        params |= {
            "after_lon": search.after.lon,
            "after_lat": search.after.lat,
            "after_id": search.after.id,
        }

    if search.radius_m is not None:
        params["radius_pg"] = search.radius_m * geo.MODEL_TO_POSTGIS
    if search.shape is geo.Shape.NEAREST:
        statement = NEAREST_SQL[after]
        params |= {"depth": search.depth, "reach_slack_pg": REACH_SLACK_PG}
    elif (
        search.box is None
        and len(search.categories) == 1
        and geo.reach_latitude(search.lat, search.radius_m) < 90.0
    ):
        statement = KEYED_AREA_SQL[after]
        cover = cells.cover(search.lon, search.lat, search.radius_m)
        params |= {
            "category": search.categories[0],
            "cell_low": list(cover.low),
            "cell_high": list(cover.high),
            "scan_limit": search.max_scan + 1,
        }
    else:
        statement = AREA_SQL[search.box is not None, after]
        params["scan_limit"] = search.max_scan + 1
        if search.box is not None:
            params |= dataclasses.asdict(search.box) | _envelopes(search.box)
    return statement, params


def search(engine: Engine, search: geo.Search) -> list[Hit]:
    """Return up to ``search.limit + 1`` profiles of one page of ``search``.

    Nearest first, ties by id; distances on the model sphere. A radius search
    of one category reads its members near the centre from the B-tree of
    ``profile_categories``; other searches read profiles, whose GiST index on
    location answers ``ST_DWithin`` and ``<->`` and whose GIN index answers
    the category test.

    Raises:
        AreaTooLarge: a radius or box search covers more than
            ``search.max_scan`` members.
        UnknownCategory: no profile has one of the categories.
        BackendUnavailable: PostgreSQL is unreachable or the query timed out.
        SchemaMissing: the profiles table does not exist.
    """
    statement, params = search_statement(search)
    with connect(engine) as conn:
        if len(search.categories) > 1:
            _check_categories(conn, search.categories)
        if statement is KEYED_AREA_SQL[search.after is not None]:
            prepared = KEYED_AREA_PREPARED[search.after is not None]
            rows = _execute_prepared(conn, prepared, params)
        else:
            rows = _search_rows(
                conn, statement, params, nearest=search.shape is geo.Shape.NEAREST
            )
        if rows and "scanned" in rows[0]._fields and rows[0].scanned > search.max_scan:
            raise AreaTooLarge(box=search.box is not None, max_scan=search.max_scan)

        known = rows[0].known if rows and "known" in rows[0]._fields else None
        if known is False:
            raise UnknownCategory(search.categories[0])

        rows = [row for row in rows if row.id is not None]
        if not rows and known is None and len(search.categories) == 1:
            _check_categories(conn, search.categories)

    return [
        Hit(
            id=row.id,
            name=row.name,
            city=row.city,
            lon=row.lon,
            lat=row.lat,
            distance_m=row.distance_pg * geo.POSTGIS_TO_MODEL,
        )
        for row in rows
    ]


def _execute_prepared(conn: Connection, prepared: Prepared, params: dict) -> list:
    """Run ``prepared`` with ``params``, preparing it first on a new connection.

    A prepared statement outlives transactions and ends with its session, as
    the info of the pooled connection that notes it does.
    """
    done = conn.connection.info.setdefault(PREPARED_INFO_KEY, set())
    if prepared.name not in done:
        conn.exec_driver_sql(prepared.prepare)
        done.add(prepared.name)
    return conn.exec_driver_sql(prepared.execute, params).all()


def _check_categories(conn: Connection, categories: tuple[str, ...]) -> None:
    """Raise UnknownCategory for the first of ``categories`` no profile has."""
    unknown = conn.execute(
        UNKNOWN_CATEGORY_SQL, {"categories": list(categories)}
    ).scalar()
    if unknown is not None:
        raise UnknownCategory(unknown)


def _envelopes(box: geo.Box) -> dict[str, float]:
    """Return two longitude ranges whose rectangles hold every point of ``box``.

    A box across the antimeridian is its two halves. Another box is itself,
    and, when one of its edges is longitude 180 or -180, the other name of
    that meridian, where profiles may be stored too; otherwise the second
    range repeats the first.
    """
    if box.crosses_antimeridian:
        ranges = ((box.west, 180.0), (-180.0, box.east))
    elif box.east == 180.0:
        ranges = ((box.west, box.east), (-180.0, -180.0))
    elif box.west == -180.0:
        ranges = ((box.west, box.east), (180.0, 180.0))
    else:
        ranges = ((box.west, box.east),) * 2

    (west_1, east_1), (west_2, east_2) = ranges
    return {"west_1": west_1, "east_1": east_1, "west_2": west_2, "east_2": east_2}


def _search_rows(
    conn: Connection, statement: TextClause, params: dict, *, nearest: bool
) -> list:
    """Run a search statement; run a nearest one again if its index walk failed.

    The GiST index walks a nearest search out from the centre by a lower bound
    of each distance, which PostgreSQL then computes exactly. Around a centre
    less than a micrometre from a profile, rounding can put that bound above
    the exact distance (a centre at longitude 180 beside a profile at -180
    does it; so do coordinates within 1e-11 degrees of 0), and PostgreSQL
    stops the statement with :data:`KNN_ORDER_ERROR`. The second run sorts the
    circle's members by their exact distances instead: slower, and rare.
    """
    try:
        return conn.execute(statement, params).all()
    except InternalError as exc:
        if not nearest or KNN_ORDER_ERROR not in str(exc.orig):
            raise

    log.info(
        "postgis: nearest search around (%s, %s) sorted without the index walk",
        params["lon"],
        params["lat"],
    )
    conn.rollback()
    # Its settings last for one transaction, which an engine in autocommit
    # mode would end with the statement that makes them.
    conn.execution_options(isolation_level="READ COMMITTED")
    conn.execute(NO_INDEX_WALK_SQL)
    return conn.execute(statement, params).all()


@contextmanager
def connect(engine: Engine) -> Iterator[Connection]:
    """Open a connection, turning driver failures into nearby's 503 errors.

    Raises:
        BackendUnavailable: PostgreSQL is unreachable, too slow, or refused the
            statement (a missing privilege, say).
        SchemaMissing: the profiles table, one of its columns, or PostGIS does
            not exist.
    """
    try:
        with engine.connect() as conn:
            yield conn
    except (OperationalError, InterfaceError) as exc:
        raise BackendUnavailable("postgis", _first_line(exc)) from exc
    except ProgrammingError as exc:
        if getattr(exc.orig, "pgcode", None) in MISSING_OBJECT_CODES:
            raise SchemaMissing(
                f"the schema does not match nearby's: {_first_line(exc)}"
            ) from exc
        log.error("postgis: statement refused: %s", _first_line(exc))
        raise BackendUnavailable("postgis", f"refused: {_first_line(exc)}") from exc
    except DBAPIError as exc:
        log.error("postgis: statement failed: %s", _first_line(exc))
        raise BackendUnavailable("postgis", f"failed: {_first_line(exc)}") from exc


def category_counts(conn: Connection) -> Iterator[tuple[str, int]]:
    """Yield ``(category, members)`` for every category, in name order.

    Streams from a server-side cursor; it reads the whole table.
    """
    result = conn.execute(
        CATEGORY_COUNTS_SQL,
        execution_options={"stream_results": True, "yield_per": 1000},
    )
    for row in result:
        yield row.category, row.members


def country_counts(conn: Connection) -> list[tuple[str | None, int]]:
    """Return ``(country, profiles)`` for every country code, NULL included.

    One pass over the table.
    """
    return [(row.country, row.profiles) for row in conn.execute(COUNTRY_COUNTS_SQL)]


def stream_profiles(
    conn: Connection, batch_size: int
) -> Iterator[list[StreamedProfile]]:
    """Yield every profile in batches of at most ``batch_size``.

    A server-side cursor feeds the batches, so memory stays bounded by one
    batch whatever the size of the table.
    """
    result = conn.execute(
        STREAM_SQL,
        execution_options={"stream_results": True, "yield_per": batch_size},
    )
    for partition in result.partitions(batch_size):
        yield [StreamedProfile(*row) for row in partition]


@dataclass(frozen=True, slots=True)
class Change:
    """One row of the change log: a profile, and its categories before."""

    seq: int
    profile_id: int
    old_categories: list[str]


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """Open one REPEATABLE READ transaction, committed when the block ends.

    Every read inside sees the same snapshot of the database, and a DELETE
    removes only rows that snapshot sees. Errors as :func:`connect`.
    """
    with connect(engine) as conn:
        conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            # Taken before the snapshot: a table rewrite (ALTER TABLE ... with a
            # volatile default, say) is not MVCC-safe, and a snapshot older than
            # its commit would see an empty table.
            conn.execute(LOCK_PROFILES_SQL)
            yield conn


def change_log_id(conn: Connection) -> str:
    """Return the id of the change log ("" when it has none)."""
    return conn.execute(CHANGE_LOG_ID_SQL).scalar() or ""


def has_rebuild_marker(conn: Connection) -> bool:
    """Tell whether the change log asks for a full rebuild."""
    return conn.execute(REBUILD_MARKER_SQL).scalar_one()


def stream_changes(conn: Connection, batch_size: int) -> Iterator[list[Change]]:
    """Yield the change log's profile rows in order, ``batch_size`` at a time."""
    result = conn.execute(
        STREAM_CHANGES_SQL,
        execution_options={"stream_results": True, "yield_per": batch_size},
    )
    for partition in result.partitions(batch_size):
        yield [Change(row.seq, row.profile_id, row.old_categories) for row in partition]


def profiles_by_id(conn: Connection, ids: list[int]) -> list[StreamedProfile]:
    """Return the profiles among ``ids`` that exist, in no set order."""
    rows = conn.execute(PROFILES_BY_ID_SQL, {"ids": ids})
    return [StreamedProfile(*row) for row in rows]


def forget_changes(conn: Connection, *, through_seq: int | None = None) -> int:
    """Delete the change rows this transaction sees (up to ``through_seq``).

    Rows committed after the transaction's snapshot stay for the next refresh.
    Returns the number deleted.
    """
    if through_seq is None:
        return conn.execute(FORGET_CHANGES_SQL).rowcount
    return conn.execute(FORGET_CHANGES_THROUGH_SQL, {"seq": through_seq}).rowcount


VERIFY_COUNTS_SQL = text(
    """
    SELECT category, count(*) AS total,
           count(*) FILTER (
               WHERE abs(ST_Y(location::geometry)) <= :max_lat
           ) AS reachable
    FROM profiles, LATERAL (SELECT DISTINCT unnest(categories)) AS c (category)
    WHERE category IS NOT NULL
    GROUP BY category
    ORDER BY category
    """
)
PENDING_CHANGES_SQL = text("SELECT count(*) FROM profile_changes")
VERIFY_TABLE_SQL = text(
    "CREATE TEMPORARY TABLE verify_members "
    "(id bigint PRIMARY KEY, lon float8, lat float8) ON COMMIT DROP"
)
VERIFY_INSERT_SQL = text(
    "INSERT INTO verify_members (id, lon, lat) VALUES (:id, :lon, :lat)"
)
VERIFY_CLEAR_SQL = text("TRUNCATE verify_members")
VERIFY_DRIFT_SQL = {
    "missing": """
        SELECT p.id FROM profiles p
        WHERE p.categories @> ARRAY[CAST(:category AS text)]
          AND abs(ST_Y(p.location::geometry)) <= :max_lat
          AND NOT EXISTS (SELECT 1 FROM verify_members m WHERE m.id = p.id)
    """,
    "extra": """
        SELECT m.id FROM verify_members m
        WHERE NOT EXISTS (
            SELECT 1 FROM profiles p
            WHERE p.id = m.id AND p.categories @> ARRAY[CAST(:category AS text)]
        )
    """,
    "moved": """
        SELECT m.id FROM verify_members m JOIN profiles p USING (id)
        WHERE ST_Distance(
            p.location, ST_SetSRID(ST_MakePoint(m.lon, m.lat), 4326)::geography, false
        ) > :tolerance_pg
    """,
}
"""Members one store has and the other lacks or holds elsewhere, by kind."""
VERIFY_SUMMARY_SQL = {
    kind: text(
        "SELECT count(*) AS n, "
        "(array_agg(id ORDER BY id))[1:CAST(:examples AS int)] AS ids "
        f"FROM ({query}) AS drift"
    )
    for kind, query in VERIFY_DRIFT_SQL.items()
}


def category_member_counts(
    conn: Connection, max_lat: float
) -> Iterator[tuple[str, int, int]]:
    """Yield ``(category, profiles, profiles within max_lat)`` in name order.

    Streams from a server-side cursor; it reads the whole table.
    """
    result = conn.execute(
        VERIFY_COUNTS_SQL,
        {"max_lat": max_lat},
        execution_options={"stream_results": True, "yield_per": 1000},
    )
    for row in result:
        yield row.category, row.total, row.reachable


def pending_changes(conn: Connection) -> int:
    """Return the number of change rows no refresh has applied yet."""
    return conn.execute(PENDING_CHANGES_SQL).scalar_one()


def compare_members(
    conn: Connection,
    category: str,
    batches: Iterable[list[tuple[int, float, float]]],
    *,
    max_lat: float,
    tolerance_m: float,
    examples: int = 5,
) -> dict[str, tuple[int, list[int]]]:
    """Compare another store's ``(id, lon, lat)`` members of ``category`` here.

    The members go through a temporary table, batch by batch, so memory holds
    one batch. Returns, for each kind of drift, how many members have it and
    up to ``examples`` of their ids: ``missing`` (here within ``max_lat``, not
    there), ``extra`` (there, not here) and ``moved`` (more than
    ``tolerance_m`` apart). Call inside a transaction; the table goes with it.
    """
    if _has_verify_table(conn):
        conn.execute(VERIFY_CLEAR_SQL)
    else:
        conn.execute(VERIFY_TABLE_SQL)

    for batch in batches:
        if batch:
            conn.execute(
                VERIFY_INSERT_SQL,
                [{"id": pid, "lon": lon, "lat": lat} for pid, lon, lat in batch],
            )

    params = {
        "category": category,
        "max_lat": max_lat,
        "tolerance_pg": tolerance_m * geo.MODEL_TO_POSTGIS,
        "examples": examples,
    }
    drift = {}
    for kind, statement in VERIFY_SUMMARY_SQL.items():
        row = conn.execute(statement, params).one()
        drift[kind] = (row.n, row.ids or [])
    return drift


def _has_verify_table(conn: Connection) -> bool:
    return (
        conn.execute(text("SELECT to_regclass('pg_temp.verify_members')")).scalar()
        is not None
    )


def ping(engine: Engine) -> None:
    """Check that PostgreSQL answers and lets nearby read the profiles table.

    Raises:
        BackendUnavailable: PostgreSQL did not answer, or refused the read.
        SchemaMissing: the profiles table or one of its columns is missing.
    """
    with connect(engine) as conn:
        conn.execute(PING_SQL)


def _first_line(exc: BaseException) -> str:
    message = str(getattr(exc, "orig", None) or exc).strip()
    return message.splitlines()[0] if message else type(exc).__name__
