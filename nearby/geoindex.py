"""Every Redis key and GEO command of nearby: search, builds, swaps, changes.

Key layout (version :data:`LAYOUT`; ``{c}`` is the category, in a hash tag so
that all keys of one category land in one Redis Cluster slot):

``nearby:v1:{c}:geo``
    GEO sorted set of the category; members are profile ids.
``nearby:v1:{c}:info``
    Hash, profile id -> JSON ``[name, city, lon, lat]``: the display fields and
    the exact coordinates (GEO positions are rounded to about 0.6 m).
``nearby:v1:{c}:beyond``
    Set of the ids of the category's profiles that lie beyond Redis's latitude
    limit: counted, never searched.
``nearby:v1:{c}:geo:tmp``, ``...:info:tmp``, ``...:beyond:tmp``
    The same, while a full rebuild builds them; they expire if it dies.
``nearby:v1:categories``
    Set of every category some profile holds.
``nearby:v1:meta``
    Hash describing the last successful refresh (``refreshed_at`` in Unix
    seconds, ``kind``, ``log_id``, counts, ``seconds``). Its absence means no
    index was built yet.
``nearby:v1:status``
    Hash describing what went wrong since the last successful refresh: a
    failure (``failed_at``, ``error``), a full rebuild that started and has
    not finished (``rebuild_started_at``).
``nearby:v1:refresh-lock``
    Lock held by the one refresh that may write at a time.

A full rebuild swaps each category's keys in a MULTI/EXEC block together with
its entry in the categories set, so a reader, whose reads run in MULTI/EXEC
too, sees every category either wholly old or wholly new. An incremental
refresh changes single members in place: a reader sees each profile either
before or after its change.
"""

import logging
import time
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field

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

LAYOUT = "v1"
PREFIX = f"nearby:{LAYOUT}"
CATEGORIES_KEY = f"{PREFIX}:categories"
META_KEY = f"{PREFIX}:meta"
STATUS_KEY = f"{PREFIX}:status"
LOCK_KEY = f"{PREFIX}:refresh-lock"
TMP_SUFFIX = ":tmp"
TMP_PATTERN = f"{PREFIX}:*{TMP_SUFFIX}"
TMP_TTL_SECONDS = 3600
SWAP_BATCH = 100
SCAN_BATCH = 500

REDIS_SLACK_M = 1.0
"""Added to the radius Redis searches: its positions are rounded to about
0.6 m, so candidates come from a slightly larger circle and the exact distance
decides."""

REDIS_SEARCH_MAX_LATITUDE = 85.0511287
"""Redis misses members far from a centre at exactly its latitude limit; a
centre beyond this latitude is searched from here, 9 mm closer to the equator,
with the radius widened to match."""


def geo_key(category: str) -> str:
    """Return the key of the GEO set of ``category``."""
    return f"{PREFIX}:{{{category}}}:geo"


def info_key(category: str) -> str:
    """Return the key of the display-field hash of ``category``."""
    return f"{PREFIX}:{{{category}}}:info"


def beyond_key(category: str) -> str:
    """Return the key of the set of ``category``'s ids beyond Redis's latitudes."""
    return f"{PREFIX}:{{{category}}}:beyond"


def _keys(category: str) -> tuple[str, str, str]:
    return geo_key(category), info_key(category), beyond_key(category)


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


@dataclass(frozen=True, slots=True)
class Answer:
    """Hits of a Redis search, and when the index they come from was refreshed."""

    hits: list[Hit]
    refreshed_at: float


def search(
    client: redis.Redis,
    *,
    lon: float,
    lat: float,
    radius_m: float,
    category: str,
    limit: int,
    max_fetch: int = 10_000,
) -> Answer:
    """Return up to ``limit`` profiles of ``category`` within ``radius_m``.

    Nearest first by the model distance computed from the exact coordinates,
    ties by id. Redis ranks by its rounded positions; the search fetches past
    ``limit`` while members tie at the cut, up to ``max_fetch`` members, so
    that profiles at one spot come out by id.

    Raises:
        UnknownCategory: the index is built and no profile has ``category``.
        IndexNotReady: no refresh has completed yet.
        BackendUnavailable: Redis is unreachable, too slow or failed.
    """
    count = limit + 1
    search_lon = redis_longitude(lon)
    search_lat = max(-REDIS_SEARCH_MAX_LATITUDE, min(REDIS_SEARCH_MAX_LATITUDE, lat))
    search_radius_m = radius_m + REDIS_SLACK_M
    if search_lat != lat:
        search_radius_m += geo.great_circle_m(lon, lat, lon, search_lat)

    with translate_errors():
        while True:
            refreshed_at, found = _geosearch(
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
            log.debug("search: %s member %s left during the search", category, member)
            continue
        name, city, p_lon, p_lat = orjson.loads(info)
        distance_m = geo.great_circle_m(lon, lat, p_lon, p_lat)
        if distance_m <= radius_m:
            hits.append(Hit(int(member), name, city, p_lon, p_lat, distance_m))

    hits.sort(key=lambda hit: (hit.distance_m, hit.id))
    return Answer(hits[:limit], refreshed_at)


def _geosearch(client, lon, lat, radius_m, category, count) -> tuple[float, list]:
    pipe = client.pipeline(transaction=True)
    pipe.hget(META_KEY, "refreshed_at")
    pipe.sismember(CATEGORIES_KEY, category)
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
    refreshed_at, known, found = pipe.execute()

    if refreshed_at is None:
        raise IndexNotReady("the Redis index has not been built yet")
    if not known:
        raise UnknownCategory(category)
    return float(refreshed_at), found


def index_meta(client: redis.Redis) -> dict[str, str]:
    """Return the description of the last successful refresh ({} if none)."""
    with translate_errors():
        return client.hgetall(META_KEY)


def refresh_status(client: redis.Redis) -> dict[str, str]:
    """Return the description of the last failed refresh ({} if none)."""
    with translate_errors():
        return client.hgetall(STATUS_KEY)


def iter_categories(
    client: redis.Redis, batch: int = SCAN_BATCH
) -> Iterator[tuple[str, int, int]]:
    """Yield ``(category, postgis members, redis members)`` in no set order.

    PostGIS members are the Redis members plus those beyond its latitudes, as
    the refreshes have applied them. Reads ``batch`` categories at a time.
    """
    with translate_errors():
        for names in _batched(client.sscan_iter(CATEGORIES_KEY, count=batch), batch):
            pipe = client.pipeline(transaction=False)
            for name in names:
                pipe.zcard(geo_key(name))
                pipe.scard(beyond_key(name))
            counts = pipe.execute()
            for number, name in enumerate(names):
                reachable, beyond = counts[2 * number], counts[2 * number + 1]
                yield name, reachable + beyond, reachable


def category_count(client: redis.Redis) -> int:
    """Return the number of categories in the index."""
    with translate_errors():
        return client.scard(CATEGORIES_KEY)


def member_counts(client: redis.Redis, categories: list[str]) -> list[tuple[int, int]]:
    """Return ``(members in Redis, members beyond its latitudes)`` per category."""
    pipe = client.pipeline(transaction=False)
    for category in categories:
        pipe.zcard(geo_key(category))
        pipe.scard(beyond_key(category))
    counts = pipe.execute()
    return list(zip(counts[::2], counts[1::2], strict=True))


def iter_members(
    client: redis.Redis, category: str, batch: int = 1000
) -> Iterator[list[tuple[int, float, float]]]:
    """Yield the ``(id, lon, lat)`` Redis holds for ``category``, in batches."""
    for ids in _batched(
        (member for member, _ in client.zscan_iter(geo_key(category), count=batch)),
        batch,
    ):
        positions = client.geopos(geo_key(category), *ids)
        yield [
            (int(member), position[0], position[1])
            for member, position in zip(ids, positions, strict=True)
            if position is not None
        ]


def _batched(items: Iterable, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def refresh_lock(client: redis.Redis, ttl_s: float) -> Lock:
    """Return the lock that one refresh at a time holds, expiring after ``ttl_s``."""
    return client.lock(LOCK_KEY, timeout=ttl_s, blocking=False)


def delete_temporary_keys(client: redis.Redis) -> int:
    """Delete temporary keys a dead build left behind; return how many."""
    deleted = 0
    for keys in _batched(client.scan_iter(match=TMP_PATTERN, count=1000), 1000):
        client.unlink(*keys)
        deleted += len(keys)
    return deleted


@dataclass(frozen=True, slots=True)
class Member:
    """A profile as one category's index holds it.

    ``info`` is what the ``info`` hash stores: the JSON array
    ``[name, city, lon, lat]``.
    """

    id: int
    lon: float
    lat: float
    info: str

    @property
    def reachable(self) -> bool:
        """Whether Redis can hold and search this profile's position."""
        return geo.within_redis_latitude(self.lat)


class IndexBuild:
    """A full build of every category into temporary keys, then one swap each.

    Feed it with :meth:`add_batch`. Members wait in per-category buffers until
    ``flush_members`` of them are buffered in all, then go out in one pipeline
    of a few commands per category: memory holds at most that many members
    (about 200 bytes each) and a counter pair per category, never a whole
    category.
    """

    def __init__(self, client: redis.Redis, flush_members: int = 50_000):
        self.client = client
        self.flush_members = flush_members
        self.counts: dict[str, list[int]] = {}
        """Category -> [members in Redis, members beyond its latitudes]."""
        self._buffers: dict[str, tuple[list, dict, list]] = {}
        self._buffered = 0

    def add_batch(self, members: Iterable[tuple[Member, list[str]]]) -> None:
        """Buffer members with their categories; write out when enough wait."""
        buffers = self._buffers
        for member, categories in members:
            if member.reachable:
                position = (redis_longitude(member.lon), member.lat, member.id)
                info = member.info
                for category in categories:
                    positions, infos, _ = buffers.get(category) or buffers.setdefault(
                        category, ([], {}, [])
                    )
                    positions.extend(position)
                    infos[member.id] = info
            else:
                for category in categories:
                    buffers.setdefault(category, ([], {}, []))[2].append(member.id)
            self._buffered += len(categories)

        if self._buffered >= self.flush_members:
            self.flush()

    def flush(self) -> None:
        """Write every buffered member to the temporary keys, one pipeline."""
        pipe = self.client.pipeline(transaction=False)
        for category, (positions, infos, beyond) in self._buffers.items():
            counts = self.counts.get(category)
            first_write = counts is None
            if first_write:
                counts = self.counts[category] = [0, 0]
            counts[0] += len(infos)
            counts[1] += len(beyond)
            geo_tmp, info_tmp, beyond_tmp = (k + TMP_SUFFIX for k in _keys(category))
            if infos:
                pipe.execute_command("GEOADD", geo_tmp, *positions)
                pipe.hset(info_tmp, mapping=infos)
            if beyond:
                pipe.sadd(beyond_tmp, *beyond)
            if first_write:
                for key in (geo_tmp, info_tmp, beyond_tmp):
                    pipe.expire(key, TMP_TTL_SECONDS)
        pipe.execute()
        self._buffers = {}
        self._buffered = 0

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
        self.flush()
        items = list(self.counts.items())
        for start in range(0, len(items), SWAP_BATCH):
            renew()
            pipe = self.client.pipeline(transaction=False)
            for temporary in _temporary_keys(items[start : start + SWAP_BATCH]):
                pipe.expire(temporary, TMP_TTL_SECONDS)
            if not all(pipe.execute()):
                raise IndexBuildLost("a temporary key of this build has vanished")

        for start in range(0, len(items), SWAP_BATCH):
            renew()
            pipe = self.client.pipeline(transaction=True)
            chunk = items[start : start + SWAP_BATCH]
            for category, _ in chunk:
                pipe.unlink(*_keys(category))
            for temporary in _temporary_keys(chunk):
                live = temporary.removesuffix(TMP_SUFFIX)
                pipe.rename(temporary, live)
                pipe.persist(live)
            pipe.sadd(CATEGORIES_KEY, *(category for category, _ in chunk))
            pipe.execute()

        renew()
        vanished = [
            name
            for name in self.client.sscan_iter(CATEGORIES_KEY, count=SCAN_BATCH)
            if name not in self.counts
        ]
        for start in range(0, len(vanished), SWAP_BATCH):
            pipe = self.client.pipeline(transaction=True)
            for category in vanished[start : start + SWAP_BATCH]:
                pipe.unlink(*_keys(category))
                pipe.srem(CATEGORIES_KEY, category)
            pipe.execute()
        return len(vanished)


def _temporary_keys(items) -> Iterator[str]:
    for category, (reachable, beyond) in items:
        geo_tmp, info_tmp, beyond_tmp = (k + TMP_SUFFIX for k in _keys(category))
        if reachable:
            yield geo_tmp
            yield info_tmp
        if beyond:
            yield beyond_tmp


@dataclass(frozen=True, slots=True)
class ProfileChange:
    """What one changed profile means for the indexes.

    ``member`` is the profile now (None once it is deleted), ``joined`` the
    categories that must hold it, ``left`` those that must not.
    """

    id: int
    member: Member | None
    joined: frozenset[str]
    left: frozenset[str]


@dataclass
class ChangeCounts:
    """Members added to, moved in, and removed from the indexes."""

    added: int = 0
    moved: int = 0
    removed: int = 0
    beyond: int = 0
    touched: set[str] = field(default_factory=set)


def apply_changes(
    client: redis.Redis, changes: Iterable[ProfileChange]
) -> ChangeCounts:
    """Bring each changed profile's memberships up to date, in one pipeline.

    Commands are grouped by category: at most five per category touched,
    whatever the number of profiles. Idempotent: applying a change twice, or a
    change the index already holds, leaves the same index. Categories left
    with no member leave the categories set; categories that gain one join it.
    """
    joins: dict[str, tuple[list, dict]] = {}
    beyond: dict[str, list[int]] = {}
    leaves: dict[str, list[int]] = {}
    for change in changes:
        member = change.member
        for category in change.joined:
            if member.reachable:
                positions, infos = joins.setdefault(category, ([], {}))
                positions.extend((redis_longitude(member.lon), member.lat, member.id))
                infos[member.id] = member.info
            else:
                beyond.setdefault(category, []).append(member.id)
        for category in change.left:
            leaves.setdefault(category, []).append(change.id)

    pipe = client.pipeline(transaction=False)
    tags = []
    for category, (positions, infos) in joins.items():
        geo_k, info_k, beyond_k = _keys(category)
        # Fields first, position second: a reader that finds the member
        # always finds its fields.
        pipe.hset(info_k, mapping=infos)
        pipe.execute_command("GEOADD", geo_k, "CH", *positions)
        pipe.srem(beyond_k, *infos)
        tags.extend(("new-fields", "changed", None))
    for category, ids in beyond.items():
        geo_k, info_k, beyond_k = _keys(category)
        pipe.zrem(geo_k, *ids)
        pipe.hdel(info_k, *ids)
        pipe.sadd(beyond_k, *ids)
        tags.extend(("removed", None, "beyond"))
    for category, ids in leaves.items():
        geo_k, info_k, beyond_k = _keys(category)
        pipe.zrem(geo_k, *ids)
        pipe.hdel(info_k, *ids)
        pipe.srem(beyond_k, *ids)
        tags.extend(("removed", None, None))

    totals = dict.fromkeys(("new-fields", "changed", "removed", "beyond"), 0)
    for tag, result in zip(tags, pipe.execute(), strict=True):
        if tag is not None:
            totals[tag] += result
    counts = ChangeCounts(
        added=totals["new-fields"],
        moved=totals["changed"] - totals["new-fields"],
        removed=totals["removed"],
        beyond=totals["beyond"],
        touched=set(joins) | set(beyond) | set(leaves),
    )
    _update_registry(client, sorted(counts.touched))
    return counts


def _update_registry(client: redis.Redis, categories: list[str]) -> None:
    for start in range(0, len(categories), SWAP_BATCH):
        chunk = categories[start : start + SWAP_BATCH]
        sizes = member_counts(client, chunk)
        pipe = client.pipeline(transaction=False)
        for category, (reachable, beyond) in zip(chunk, sizes, strict=True):
            if reachable or beyond:
                pipe.sadd(CATEGORIES_KEY, category)
            else:
                pipe.srem(CATEGORIES_KEY, category)
                pipe.unlink(*_keys(category))
        pipe.execute()


def write_meta(
    client: redis.Redis,
    fields: dict[str, float | int | str],
    *,
    replaces_existing: bool = False,
) -> None:
    """Record the last successful refresh, stamped with the time now.

    With ``replaces_existing`` (an incremental refresh, which built on the
    index it found) the record is written only if the previous one is still
    there: a Redis that restarted empty during the refresh must not look like
    a complete index.

    Raises:
        IndexBuildLost: the previous record vanished during the refresh.
    """
    pipe = client.pipeline(transaction=True)
    if replaces_existing:
        pipe.watch(META_KEY)
        if not pipe.exists(META_KEY):
            pipe.reset()
            raise IndexBuildLost("the index vanished from Redis during the refresh")
        pipe.multi()
    pipe.delete(META_KEY)
    pipe.hset(
        META_KEY, mapping=fields | {"refreshed_at": time.time(), "layout": LAYOUT}
    )
    pipe.delete(STATUS_KEY)
    pipe.execute()


def mark_rebuild_started(client: redis.Redis) -> None:
    """Record that a full rebuild began: if it dies, the next refresh redoes it."""
    client.hset(STATUS_KEY, "rebuild_started_at", time.time())


def write_failure(client: redis.Redis, error: str) -> None:
    """Record that a refresh failed, and why; the last good index stays."""
    client.hset(STATUS_KEY, mapping={"failed_at": time.time(), "error": error})
