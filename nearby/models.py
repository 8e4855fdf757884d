"""The profiles table, the contract shared with every application that writes it,
and the search key PostgreSQL keeps beside it.

Other applications insert, update and delete rows with plain SQL, knowing
nothing of the Redis indexes; a trigger (created with the table, see
:func:`nearby.postgis.ensure_schema`) keeps ``updated_at`` current whatever
the writer sends. Other triggers keep ``profile_categories`` in step with
every write, in the writer's own transaction.
"""

from geoalchemy2 import Geography
from sqlalchemy import BigInteger
from sqlalchemy import Column
from sqlalchemy import DateTime
from sqlalchemy import Identity
from sqlalchemy import Index
from sqlalchemy import MetaData
from sqlalchemy import Table
from sqlalchemy import Text
from sqlalchemy import func
from sqlalchemy.dialects.postgresql import ARRAY

metadata = MetaData()

profiles = Table(
    "profiles",
    metadata,
    Column("id", BigInteger, Identity(always=False), primary_key=True),
    Column("name", Text, nullable=False),
    Column("city", Text),
    Column("country", Text),
    Column("occupation", Text),
    Column("email", Text),
    Column(
        "location",
        Geography(geometry_type="POINT", srid=4326, spatial_index=False),
        nullable=False,
    ),
    Column("categories", ARRAY(Text), nullable=False),
    Column(
        "updated_at",
        DateTime(timezone=True),
        nullable=False,
        server_default=func.now(),
    ),
    Index("profiles_location_gist", "location", postgresql_using="gist"),
    Index("profiles_categories_gin", "categories", postgresql_using="gin"),
)

Index(
    "profiles_lonlat_gist",
    func.geometry(profiles.c.location),
    postgresql_using="gist",
)
"""Planar index of the same points in degrees, for box searches: its ``&&``
test is a longitude/latitude rectangle, where the geography index answers
circles."""

profile_categories = Table(
    "profile_categories",
    metadata,
    Column("category", Text(collation="C"), nullable=False),
    Column("geohash", Text(collation="C"), nullable=False),
    Column("profile_id", BigInteger, nullable=False),
    Column(
        "location",
        Geography(geometry_type="POINT", srid=4326, spatial_index=False),
        nullable=False,
    ),
    Index(
        "profile_categories_key",
        "category",
        "geohash",
        postgresql_include=["profile_id", "location"],
    ),
    Index("profile_categories_profile", "profile_id"),
)
"""One row per category of each profile, derived from ``profiles`` by triggers
and never written otherwise: the category, the geohash of the location
(:mod:`nearby.cells`), the profile's id and its location.

The first B-tree keeps each category's members in geohash order, so a radius
search of one category reads a few ranges of its own members around the
centre (:func:`nearby.cells.cover`) and tests their exact distances from the
index alone, where ``profiles`` would read every profile of every category
near the centre. The second, on ``profile_id``, finds a profile's rows when
it changes, whatever they hold."""
