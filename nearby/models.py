"""The profiles table, the contract shared with every application that writes it.

Other applications insert, update and delete rows with plain SQL, knowing
nothing of the Redis indexes; a trigger (created with the table, see
:func:`nearby.postgis.ensure_schema`) keeps ``updated_at`` current whatever
the writer sends.
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
