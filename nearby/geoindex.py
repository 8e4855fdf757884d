"""Every Redis key and GEO command of nearby: search, batched builds, swaps.

Key layout (version ``v1``; ``{c}`` is the category, in a hash tag so that all
keys of one category land in one Redis Cluster slot):

``nearby:v1:{c}:geo``
    GEO sorted set of the category; members are profile ids.
``nearby:v1:{c}:info``
    Hash, profile id -> JSON ``[name, city, lon, lat]``: the display fields and
    the exact coordinates (GEO positions are rounded to about 0.6 m).
``nearby:v1:{c}:geo:tmp``, ``nearby:v1:{c}:info:tmp``
    The same, while a refresh builds them; they expire if the build dies.
``nearby:v1:categories``
    Hash, category -> ``"<postgis members> <redis members>"`` as the last
    refresh counted them: every category some profile holds, including ones
    whose profiles all lie beyond Redis's latitude limit.
``nearby:v1:meta``
    Hash describing the last successful refresh (``refreshed_at`` in Unix
    seconds, counts, ``seconds``). Its absence means no index was built yet.
``nearby:v1:refresh-lock``
    Lock held by the one refresh that may write at a time.

A refresh swaps each category's keys in a MULTI/EXEC block together with its
``categories`` entry, so a reader, whose reads run in MULTI/EXEC too, sees for
every category either the whole old index or the whole new one.
"""

import logging
import time
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from contextlib import contextmanager

import orjson
import redis
from redis.lock import Lock

from nearby import geo
from nearby.errors import BackendUnavailable
from nearby.errors import IndexBuildLost
from nearby.errors import IndexNotReady
from nearby.errors import UnknownCategory
from nearby.geo import Hit

log = logging.getLogger(__name__)

PREFIX = "nearby:v1"
CATEGORIES_KEY = f"{PREFIX}:categories"
META_KEY = f"{PREFIX}:meta"
LOCK_KEY = f"{PREFIX}:refresh-lock"
TMP_SUFFIX = ":tmp"
TMP_PATTERN = f"{PREFIX}:*{TMP_SUFFIX}"
TMP_TTL_SECONDS = 3600
SWAP_BATCH = 100


def geo_key(category: str) -> str:
    """Return the key of the GEO set of ``category``."""
    return f"{PREFIX}:{{{category}}}:geo"


def info_key(category: str) -> str:
    """Return the key of the display-field hash of ``category``."""
    return f"{PREFIX}:{{{category}}}:info"


REDIS_SLACK_M = 1.0
"""Added to the radius Redis searches: its positions are rounded to about
0.6 m, so candidates come from a slightly larger circle and the exact distance
decides."""

REDIS_SEARCH_MAX_LATITUDE = 85.0511287
"""Redis misses members far from a centre at exactly its latitude limit; a
centre beyond this latitude is searched from here, 9 mm closer to the equator,
with the radius widened to match."""


def redis_longitude(lon: float) -> float:
    """Return ``lon`` as Redis should see it: 180 becomes -180.

    Redis files longitude 180 in a geohash cell apart from its neighbours
    across the antimeridian, so neither members nor centres use it.
    """
    return -180.0 if lon == 180.0 else lon


@contextmanager
def translate_errors() -> Iterator[None]:
    """Turn Redis's failures into BackendUnavailable (503).

    Connection failures and timeouts are expected faults; an error reply is
    not, and is logged as such before it becomes a 503 as well.
    """
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise BackendUnavailable("redis", str(exc) or type(exc).__name__) from exc
    except redis.ResponseError as exc:
        log.error("redis: error reply: %s", exc)
        raise BackendUnavailable("redis", f"error reply: {exc}") from exc


def search(
    client: redis.Redis,
    *,
    lon: float,
    lat: float,
    radius_m: float,
    category: str,
    limit: int,
    max_fetch: int = 10_000,
) -> list[Hit]:
    """Return up to ``limit`` profiles of ``category`` within ``radius_m``.

    Nearest first by the model distance computed from the exact coordinates,
    ties by id. Redis ranks by its rounded positions; the search fetches past
    ``limit`` while members tie at the cut, up to ``max_fetch`` members, so
    that profiles at one spot come out by id.

    Raises:
        UnknownCategory: the index is built and no profile has ``category``.
        IndexNotReady: no refresh has completed yet.
        BackendUnavailable: Redis is unreachable or too slow.
    """
    count = limit + 1
    search_lon = redis_longitude(lon)
    search_lat = max(-REDIS_SEARCH_MAX_LATITUDE, min(REDIS_SEARCH_MAX_LATITUDE, lat))
    search_radius_m = radius_m + REDIS_SLACK_M
    if search_lat != lat:
        search_radius_m += geo.great_circle_m(lon, lat, lon, search_lat)

    with translate_errors():
        while True:
            found = _geosearch(
                client, search_lon, search_lat, search_radius_m, category, count
            )
            if len(found) < count or found[limit - 1][1] != found[-1][1]:
                break
            if count >= max_fetch:
                log.warning(
                    "search: %d members of %s tie at the cut; ordering by id is "
                    "approximate past %d",
                    len(found),
                    category,
                    max_fetch,
                )
                break
            count = min(count * 2, max_fetch)

        ids = [member for member, _ in found]
        infos = client.hmget(info_key(category), ids) if ids else []

    hits = []
    for member, info in zip(ids, infos, strict=True):
        if info is None:
            log.warning("search: %s member %s has no display fields", category, member)
            continue
        name, city, p_lon, p_lat = orjson.loads(info)
        distance_m = geo.great_circle_m(lon, lat, p_lon, p_lat)
        if distance_m <= radius_m:
            hits.append(Hit(int(member), name, city, p_lon, p_lat, distance_m))

    hits.sort(key=lambda hit: (hit.distance_m, hit.id))
    return hits[:limit]


def _geosearch(client, lon, lat, radius_m, category, count) -> list:
    pipe = client.pipeline(transaction=True)
    pipe.exists(META_KEY)
    pipe.hexists(CATEGORIES_KEY, category)
    pipe.geosearch(
        geo_key(category),
        longitude=lon,
        latitude=lat,
        radius=radius_m,
        unit="m",
        sort="ASC",
        count=count,
        withdist=True,
    )
    built, known, found = pipe.execute()

    if not known:
        if not built:
            raise IndexNotReady("the Redis index has not been built yet")
        raise UnknownCategory(category)
    return found


def index_meta(client: redis.Redis) -> dict[str, str]:
    """Return the description of the last successful refresh ({} if none)."""
    with translate_errors():
        return client.hgetall(META_KEY)


def iter_categories(
    client: redis.Redis, batch: int = 500
) -> Iterator[tuple[str, int, int]]:
    """Yield ``(category, postgis members, redis members)`` in no set order.

    Reads the categories hash with HSCAN, ``batch`` entries at a time.
    """
    with translate_errors():
        for name, counts in client.hscan_iter(CATEGORIES_KEY, count=batch):
            postgis_members, redis_members = counts.split()
            yield name, int(postgis_members), int(redis_members)


def category_count(client: redis.Redis) -> int:
    """Return the number of categories in the index."""
    with translate_errors():
        return client.hlen(CATEGORIES_KEY)


def refresh_lock(client: redis.Redis, ttl_s: float) -> Lock:
    """Return the lock that one refresh at a time holds, expiring after ``ttl_s``."""
    return client.lock(LOCK_KEY, timeout=ttl_s, blocking=False)


def delete_temporary_keys(client: redis.Redis) -> int:
    """Delete temporary keys a dead build left behind; return how many."""
    deleted = 0
    pipe = client.pipeline(transaction=False)
    for key in client.scan_iter(match=TMP_PATTERN, count=1000):
        pipe.unlink(key)
        deleted += 1
        if len(pipe) >= 1000:
            pipe.execute()
    pipe.execute()
    return deleted


class IndexBuild:
    """A full build of every category into temporary keys, then one swap each.

    Feed it with :meth:`add_batch`; each call writes one pipeline. Memory holds
    one batch and one counter pair per category, never a whole category.
    """

    def __init__(self, client: redis.Redis):
        self.client = client
        self.counts: dict[str, list[int]] = {}

    def count_only(self, category: str) -> None:
        """Count a PostGIS member that Redis cannot hold (beyond its latitudes)."""
        self.counts.setdefault(category, [0, 0])[0] += 1

    def add_batch(
        self, members: Iterable[tuple[str, int, str, str | None, float, float]]
    ) -> None:
        """Write ``(category, id, name, city, lon, lat)`` members in one pipeline."""
        by_category: dict[str, tuple[list, dict]] = {}
        for category, member_id, name, city, lon, lat in members:
            positions, infos = by_category.setdefault(category, ([], {}))
            positions.extend((redis_longitude(lon), lat, member_id))
            infos[member_id] = orjson.dumps([name, city, lon, lat])

        pipe = self.client.pipeline(transaction=False)
        for category, (positions, infos) in by_category.items():
            counts = self.counts.setdefault(category, [0, 0])
            counts[0] += len(infos)
            counts[1] += len(infos)
            geo_tmp = geo_key(category) + TMP_SUFFIX
            info_tmp = info_key(category) + TMP_SUFFIX
            pipe.execute_command("GEOADD", geo_tmp, *positions)
            pipe.hset(info_tmp, mapping=infos)
            pipe.expire(geo_tmp, TMP_TTL_SECONDS)
            pipe.expire(info_tmp, TMP_TTL_SECONDS)
        pipe.execute()

    def swap(self, renew: Callable[[], None]) -> int:
        """Put every built category in service and drop the vanished ones.

        ``renew`` is called before each step and must raise if this build may
        no longer write (its lock was lost). Every temporary key is checked,
        and its expiry pushed back, before any live key is touched.

        Returns the number of categories removed because no profile holds them
        any more.

        Raises:
            IndexBuildLost: a temporary key expired or vanished; nothing of the
                live index was changed.
        """
        items = list(self.counts.items())
        built = [category for category, (_, members) in items if members]
        for start in range(0, len(built), SWAP_BATCH):
            renew()
            pipe = self.client.pipeline(transaction=False)
            for category in built[start : start + SWAP_BATCH]:
                pipe.expire(geo_key(category) + TMP_SUFFIX, TMP_TTL_SECONDS)
                pipe.expire(info_key(category) + TMP_SUFFIX, TMP_TTL_SECONDS)
            if not all(pipe.execute()):
                raise IndexBuildLost("a temporary key of this build has vanished")

        for start in range(0, len(items), SWAP_BATCH):
            renew()
            pipe = self.client.pipeline(transaction=True)
            for category, (postgis_members, redis_members) in items[
                start : start + SWAP_BATCH
            ]:
                _queue_swap(pipe, category, redis_members > 0)
                pipe.hset(
                    CATEGORIES_KEY, category, f"{postgis_members} {redis_members}"
                )
            pipe.execute()

        renew()
        vanished = [
            name
            for name, _ in self.client.hscan_iter(CATEGORIES_KEY, count=500)
            if name not in self.counts
        ]
        for start in range(0, len(vanished), SWAP_BATCH):
            pipe = self.client.pipeline(transaction=True)
            for category in vanished[start : start + SWAP_BATCH]:
                pipe.unlink(geo_key(category), info_key(category))
                pipe.hdel(CATEGORIES_KEY, category)
            pipe.execute()
        return len(vanished)


def _queue_swap(pipe, category: str, has_members: bool) -> None:
    live_geo = geo_key(category)
    live_info = info_key(category)
    pipe.unlink(live_geo, live_info)
    if has_members:
        pipe.rename(live_geo + TMP_SUFFIX, live_geo)
        pipe.persist(live_geo)
        pipe.rename(live_info + TMP_SUFFIX, live_info)
        pipe.persist(live_info)


def write_meta(client: redis.Redis, fields: dict[str, float | int | str]) -> None:
    """Record the last successful refresh, stamped with the time now."""
    client.delete(META_KEY + TMP_SUFFIX)
    pipe = client.pipeline(transaction=True)
    pipe.hset(META_KEY + TMP_SUFFIX, mapping=fields | {"refreshed_at": time.time()})
    pipe.rename(META_KEY + TMP_SUFFIX, META_KEY)
    pipe.execute()
