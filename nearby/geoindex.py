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

import dataclasses
import logging
import math
import time
import weakref
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import orjson
import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError
from redis.lock import Lock

from nearby import geo
from nearby.errors import AreaTooLarge
from nearby.errors import BackendUnavailable
from nearby.errors import BeyondRedisLatitude
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


NEAREST_FIRST_RADIUS_M = 500.0
NEAREST_GROWTH = 4.0
NEAREST_DIRECT_FACTOR = 16
"""A nearest search over categories of at most this many times the members it
needs sorts them all at once instead of probing circles first."""

SEARCH_SCRIPT = (Path(__file__).with_name("search.lua")).read_text()
"""The Lua script that runs one page of a search in Redis, in one round trip."""


def search(
    client: redis.Redis, search: geo.Search, *, max_fetch: int = 10_000
) -> Answer:
    """Return up to ``search.limit + 1`` profiles of one page of ``search``.

    Nearest first by the model distance computed from the exact coordinates,
    ties by id. Redis ranks by its rounded positions, so the search fetches
    past the page until every result it returns is certain: closer than the
    last fetched member by more than the rounding, up to ``max_fetch`` members
    past the page. A nearest search first probes circles growing from
    :data:`NEAREST_FIRST_RADIUS_M`, each counting members only up to the
    number it needs, and sorts only the smallest circle that holds enough.
    Each attempt is one call of :data:`SEARCH_SCRIPT`.

    Raises:
        BeyondRedisLatitude: the centre lies beyond Redis's latitude limit, or
            the search reaches beyond it where its categories have profiles.
        AreaTooLarge: a radius or box search covers more than
            ``search.max_scan`` members.
        UnknownCategory: the index is built and no profile has one of the
            categories.
        IndexNotReady: no refresh has completed yet.
        BackendUnavailable: Redis is unreachable, too slow or failed.
    """
    area = _Area.of(search)
    script = _script(client)
    keys = [META_KEY, CATEGORIES_KEY]
    for category in search.categories:
        keys += _keys(category)
    probes = _probes(search, area) if search.shape is geo.Shape.NEAREST else ""
    count = search.depth
    most = search.depth + max_fetch
    after_key = search.after_key()

    with translate_errors():
        while True:
            reply = _run(
                client,
                script,
                keys,
                [
                    search.shape.value,
                    repr(area.lon),
                    repr(area.lat),
                    *area.extent(),
                    count,
                    search.max_scan,
                    search.depth,
                    NEAREST_DIRECT_FACTOR * search.depth,
                    probes,
                    *search.categories,
                ],
            )
            refreshed_at, beyond, radius_m, found = _outcome(search, reply)
            hits, certain_m = _hits(search, found, count, area.shift_m, after_key)
            certain = [hit for hit in hits if hit.distance_m <= certain_m]
            if certain_m == math.inf or len(certain) > search.limit:
                hits = certain
                break
            if count >= most:
                log.warning(
                    "search: %d members of %s sit too close to order exactly past "
                    "%d fetched; the page's order is approximate",
                    len(hits),
                    ",".join(search.categories),
                    count,
                )
                break
            count = min(count * 2, most)
            area = area.probed(radius_m)
            probes = ""

    hits = hits[: search.limit + 1]
    if beyond and search.shape is not geo.Shape.NEAREST:
        _check_reach(search, search.radius_m)
    if beyond and search.shape is geo.Shape.NEAREST:
        full = len(hits) > search.limit
        _check_reach(search, hits[-1].distance_m if full else search.radius_m)
    return Answer(hits, refreshed_at)


_SCRIPTS: "weakref.WeakKeyDictionary[redis.Redis, Script]" = weakref.WeakKeyDictionary()


def _script(client: redis.Redis) -> Script:
    """Return :data:`SEARCH_SCRIPT` registered on ``client``, once per client.

    Calls run it by its SHA1 digest, loading it first where Redis lacks it.
    """
    script = _SCRIPTS.get(client)
    if script is None:
        script = _SCRIPTS[client] = client.register_script(SEARCH_SCRIPT)
    return script


def _run(client: redis.Redis, script: Script, keys: list[str], args: list) -> list:
    """Run ``script`` on a connection of ``client``'s pool and return its reply.

    One EVALSHA straight on the connection, without the client's per-command
    layers (retries, which are off here, and reply callbacks, which EVALSHA
    has none of): they cost about a quarter of the call's CPU in the web
    worker. Where Redis lacks the script (after a restart or SCRIPT FLUSH),
    EVAL sends its text, which Redis then keeps for the calls after.
    """
    pool = client.connection_pool
    connection = pool.get_connection()
    try:
        connection.send_command("EVALSHA", script.sha, len(keys), *keys, *args)
        try:
            return connection.read_response()
        except NoScriptError:
            connection.send_command("EVAL", script.script, len(keys), *keys, *args)
            return connection.read_response()
    except BaseException as exc:
        # A reply cut short leaves the connection out of step with Redis.
        if not isinstance(exc, redis.ResponseError):
            connection.disconnect()
        raise
    finally:
        pool.release(connection)


def _outcome(search: geo.Search, reply: list) -> tuple[float, int, float, list]:
    """Decode the script's reply; raise the error it reports."""
    status = reply[0]
    if status == "not_ready":
        raise IndexNotReady("the Redis index has not been built yet")
    if status == "unknown":
        raise UnknownCategory(reply[1])
    if status == "too_large":
        raise AreaTooLarge(box=search.box is not None, max_scan=search.max_scan)

    _, refreshed_at, beyond, radius_m, *found = reply
    pairs = list(zip(found[::2], found[1::2], strict=True))
    return float(refreshed_at), int(beyond), float(radius_m), pairs


@dataclass(frozen=True, slots=True)
class _Area:
    """The GEOSEARCH area of a search: a circle, or a rectangle around a box.

    ``lon``/``lat`` is where Redis searches from; ``shift_m`` is how far that
    lies from the search's own centre (a centre at Redis's latitude limit is
    moved 9 mm). Extents include :data:`REDIS_SLACK_M`.
    """

    lon: float
    lat: float
    shift_m: float
    radius_m: float | None = None
    width_m: float | None = None
    height_m: float | None = None

    @classmethod
    def of(cls, search: geo.Search) -> "_Area":
        if not geo.within_redis_latitude(search.lat):
            param = "bbox" if search.box else "lat"
            raise BeyondRedisLatitude(
                param,
                "Redis cannot search around latitudes beyond "
                f"±{geo.REDIS_MAX_LATITUDE}; /nearby/postgis or /nearby serves "
                "this centre",
            )

        lon = redis_longitude(search.lon)
        lat = max(
            -geo.REDIS_MEMBER_MAX_LATITUDE,
            min(geo.REDIS_MEMBER_MAX_LATITUDE, search.lat),
        )
        shift_m = geo.great_circle_m(search.lon, search.lat, search.lon, lat)
        if search.box is None:
            radius_m = search.radius_m + shift_m + REDIS_SLACK_M
            return cls(lon, lat, shift_m, radius_m=radius_m)

        width_m, height_m = _rectangle_m(search.box)
        margin_m = 2 * (shift_m + REDIS_SLACK_M)
        return cls(
            lon, lat, shift_m, width_m=width_m + margin_m, height_m=height_m + margin_m
        )

    def probed(self, radius_m: float) -> "_Area":
        """Return a circle's area cut to the circle a nearest search probed."""
        if self.radius_m is None:
            return self
        return dataclasses.replace(self, radius_m=radius_m)

    def extent(self) -> tuple[str, str]:
        """Return the script's radius, or width and height, in metres."""
        if self.radius_m is not None:
            return repr(self.radius_m), ""
        return repr(self.width_m), repr(self.height_m)


def _probes(search: geo.Search, area: _Area) -> str:
    """Return the radii a nearest search probes, as the script takes them."""
    radii = []
    radius_m = NEAREST_FIRST_RADIUS_M
    while radius_m < search.radius_m:
        radii.append(repr(radius_m + area.shift_m + REDIS_SLACK_M))
        radius_m *= NEAREST_GROWTH
    return ",".join(radii)


def _rectangle_m(box: geo.Box) -> tuple[float, float]:
    """Return the width and height in metres of a BYBOX rectangle around ``box``.

    Redis keeps a member when its distance along the meridian from the centre
    is within half the height, and its great-circle distance along its own
    parallel from the centre's meridian is within half the width. The width is
    the length of the box's parallel nearest the equator, which exceeds every
    such distance in the box and makes Redis's candidate area cover the box's
    longitudes; results are then filtered to the exact bounds.
    """
    if box.south <= 0 <= box.north:
        widest_lat = 0.0
    else:
        widest_lat = min(abs(box.south), abs(box.north))
    width_m = (
        geo.EARTH_RADIUS_M
        * math.radians(box.lon_span)
        * math.cos(math.radians(widest_lat))
    )
    height_m = geo.EARTH_RADIUS_M * math.radians(box.north - box.south)
    return width_m, height_m


def _check_reach(search: geo.Search, radius_m: float) -> None:
    """Refuse a search that reaches where its categories have profiles that
    Redis does not hold."""
    if search.box is not None:
        reach = max(abs(search.box.south), abs(search.box.north))
        param = "bbox"
    else:
        reach = geo.reach_latitude(search.lat, radius_m)
        param = "radius" if search.shape is geo.Shape.RADIUS else "lat"
    if reach > geo.REDIS_MEMBER_MAX_LATITUDE:
        raise BeyondRedisLatitude(
            param,
            f"the search reaches beyond latitude ±{geo.REDIS_MAX_LATITUDE}, where "
            "Redis holds none of the profiles these categories have there; "
            "/nearby/postgis or /nearby serves it",
        )


def _hits(
    search: geo.Search,
    found: list[tuple[list, list]],
    count: int,
    shift_m: float,
    after_key: tuple[float, int] | None,
) -> tuple[list[Hit], float]:
    """Return the fetched members in the search's area and past its page start,
    sorted, and the distance up to which no unfetched member can lie.

    ``found`` holds, for each category, its members nearest first by Redis's
    rounded positions, and their info entries. A category that returned fewer
    than ``count`` members returned all of its area's. For one that returned
    ``count``, a member it left out is no nearer to Redis than the last one it
    returned, so no nearer to the centre than that one's exact distance less
    the rounding of both (:data:`REDIS_SLACK_M` each) and twice the shift of
    the searched centre.
    """
    certain_m = math.inf
    seen = set()
    hits = []
    for members, infos in found:
        last_m = None
        for member, info in zip(members, infos, strict=True):
            if info is None:
                log.debug("search: member %s has no info entry", member)
                continue

            name, city, lon, lat = orjson.loads(info)
            lon, lat = float(lon), float(lat)
            distance_m = geo.great_circle_m(search.lon, search.lat, lon, lat)
            last_m = distance_m
            if member in seen or not search.covers(lon, lat, distance_m):
                continue
            seen.add(member)

            hit = Hit(int(member), name, city, lon, lat, distance_m)
            if after_key is not None and (distance_m, hit.id) <= after_key:
                continue
            hits.append(hit)

        if len(members) >= count:
            bound_m = -math.inf if last_m is None else last_m
            certain_m = min(certain_m, bound_m - 2 * (REDIS_SLACK_M + shift_m))

    hits.sort(key=lambda hit: (hit.distance_m, hit.id))
    return hits, certain_m


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
        return geo.redis_holds(self.lat)


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
