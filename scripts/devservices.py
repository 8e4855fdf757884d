"""Start, stop and report the PostgreSQL+PostGIS and Redis that nearby uses.

``up`` uses the servers of DATABASE_URL and REDIS_URL when they answer. When
one does not and its host is loopback, it starts a project-local instance from
the system's binaries, every file of it under ``var/``:

    var/pg/data       the PostgreSQL cluster
    var/pg/socket     its Unix socket (mode 0700; local connections are trusted)
    var/redis         Redis's working directory, config file and pidfile
    var/log           postgresql.log, redis.log, apt-get.log

PostgreSQL listens on the URL's loopback address and port only, and the role
and database of the URL are created with its password; the role is a
superuser, so that the tests may create their database and the PostGIS
extension. Redis runs daemonized on the URL's address and port, persistence
off. The Debian packages postgresql-15-postgis-3 and redis-server are
installed with apt-get (through sudo when not root) when the binaries are
missing. PostgreSQL refuses to run as root: as root, the cluster belongs to
and runs as the ``postgres`` system account.

``down`` stops only the instances recorded under ``var/``; a server it did not
start is never stopped. ``status`` tells what answers and exits non-zero when
something does not. A server whose host is not loopback is only checked.

Run it with the virtualenv's Python (``.venv/bin/python scripts/devservices.py
up``); ``down`` needs no third-party package, so plain ``python3`` runs it too.
Passwords and full URLs are never printed.
"""

import argparse
import hashlib
import ipaddress
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
LOG_DIR = VAR / "log"
PG_HOME = VAR / "pg"
PG_DATA = PG_HOME / "data"
PG_SOCKET_DIR = PG_HOME / "socket"
PG_LOG = LOG_DIR / "postgresql.log"
PG_CONF_NAME = "nearby.conf"
REDIS_DIR = VAR / "redis"
REDIS_CONF = REDIS_DIR / "redis.conf"
REDIS_PIDFILE = REDIS_DIR / "redis.pid"
REDIS_LOG = LOG_DIR / "redis.log"
APT_LOG = LOG_DIR / "apt-get.log"

PG_BIN_ROOT = Path("/usr/lib/postgresql")
PG_SHARE_ROOT = Path("/usr/share/postgresql")
PG_SUPERUSER = "postgres"
"""Bootstrap superuser of the local cluster, reached through its socket."""
PG_SYSTEM_USER = "postgres"
"""System account that owns and runs the local cluster when we are root."""
PG_PACKAGE = "postgresql-15-postgis-3"
REDIS_PACKAGE = "redis-server"
BENCH_TOOLS = {
    "wrk": ("wrk", None),
    "redis-benchmark": ("redis-tools", "--version"),
    "pgbench": ("postgresql-15", "--version"),
}
"""The benchmark suite's load generators: command -> the Debian package that
provides it, and an argument that makes it exit 0 when it can run (Debian's
``pgbench`` on the PATH is a wrapper that fails without the server package)."""

CONNECT_TIMEOUT_S = 2
PG_START_TIMEOUT_S = 60
REDIS_START_TIMEOUT_S = 15
STOP_TIMEOUT_S = 30
COMMAND_TIMEOUT_S = 180
APT_TIMEOUT_S = 1800
SOCKET_PATH_MAX = 100
"""Longest Unix socket path used; the kernel's limit is 107 bytes."""


class ServiceError(Exception):
    """A service could not be checked, started or stopped; the message says why."""


@dataclass(frozen=True)
class PgTarget:
    """Where DATABASE_URL points, password kept out of every message."""

    host: str
    port: int
    user: str
    password: str | None
    database: str

    @property
    def label(self) -> str:
        return f"{self.host}:{self.port}/{self.database} as {self.user}"


@dataclass(frozen=True)
class RedisTarget:
    """Where REDIS_URL (or the Celery broker URL) points."""

    url: str
    host: str
    port: int
    password: str | None

    @property
    def label(self) -> str:
        return f"{self.host}:{self.port}"


def say(message: str) -> None:
    print(f"devservices: {message}", flush=True)


# Settings and targets


def load_targets() -> tuple[PgTarget, RedisTarget, RedisTarget]:
    """Return the PostgreSQL, Redis and Celery broker targets of the settings.

    Raises:
        ServiceError: the virtualenv is missing or a URL cannot be used.
    """
    sys.path.insert(0, str(ROOT))
    try:
        from pydantic import ValidationError
        from sqlalchemy.engine import make_url

        from config import get_settings
    except ModuleNotFoundError as exc:
        raise ServiceError(
            f"{exc.name} is not installed: run this with the virtualenv's Python, "
            ".venv/bin/python scripts/devservices.py (make venv creates it)"
        ) from None

    try:
        settings = get_settings()
    except ValidationError as exc:
        fields = ", ".join(str(error["loc"][0]).upper() for error in exc.errors())
        raise ServiceError(f"invalid settings in the environment: {fields}") from None

    try:
        url = make_url(settings.database_url)
    except Exception:
        raise ServiceError("DATABASE_URL is not a valid database URL") from None
    if not url.host or not url.database or not url.username:
        raise ServiceError("DATABASE_URL must name a host, a user and a database")
    pg = PgTarget(
        host=url.host,
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        database=url.database,
    )
    redis = redis_target(settings.redis_url, "REDIS_URL")
    broker = redis_target(settings.celery_broker_url, "CELERY_BROKER_URL")
    return pg, redis, broker


def redis_target(url: str, name: str) -> RedisTarget:
    """Parse a redis:// or rediss:// URL; ``name`` is its setting's name."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        port = parts.port or 6379
    except ValueError:
        raise ServiceError(f"{name} has an invalid port") from None
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ServiceError(f"{name} must be a redis:// URL with a host")
    return RedisTarget(url=url, host=parts.hostname, port=port, password=parts.password)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind_address(host: str) -> str:
    return "127.0.0.1" if host == "localhost" else host


def port_open(host: str, port: int) -> bool:
    """Tell whether anything accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((bind_address(host), port), timeout=1):
            return True
    except OSError:
        return False


# Processes and commands


def run(command: list, what: str, *, cwd: Path | None = None, timeout_s=None) -> str:
    """Run ``command`` without input and return its output.

    Raises:
        ServiceError: the command is missing, failed or ran out of time; the
            message ends with the last lines it printed.
    """
    limit_s = timeout_s or COMMAND_TIMEOUT_S
    try:
        result = subprocess.run(
            [str(part) for part in command],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=limit_s,
        )
    except FileNotFoundError:
        raise ServiceError(f"{what}: {command[0]} not found") from None
    except subprocess.TimeoutExpired:
        raise ServiceError(f"{what}: not done within {limit_s} s") from None

    if result.returncode != 0:
        raise ServiceError(
            f"{what} failed (exit {result.returncode}):\n{tail(result.stdout)}"
        )
    return result.stdout


def tail(text: str, lines: int = 15) -> str:
    return "\n".join("    " + line for line in text.strip().splitlines()[-lines:])


def tail_file(path: Path) -> str:
    try:
        return tail(path.read_text(errors="replace"))
    except OSError:
        return "    (no log written)"


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait_for_exit(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not process_alive(pid):
            return True
        time.sleep(0.2)
    return not process_alive(pid)


def is_root() -> bool:
    return os.geteuid() == 0


# Debian packages

_apt_updated = False


def apt_install(packages: list[str]) -> None:
    """Install Debian ``packages``, updating the package lists once per run.

    Raises:
        ServiceError: apt-get is missing, we may not become root, or it failed.
    """
    global _apt_updated

    wanted = " ".join(packages)
    if not shutil.which("apt-get"):
        raise ServiceError(f"{wanted} missing and no apt-get here: install them")
    if is_root():
        prefix = []
    elif shutil.which("sudo"):
        prefix = ["sudo", "env", "DEBIAN_FRONTEND=noninteractive"]
    else:
        raise ServiceError(f"{wanted} missing: install them as root with apt-get")

    LOG_DIR.mkdir(parents=True, exist_ok=True)
    say(f"installing {wanted} with apt-get (output in {APT_LOG})")
    steps = [] if _apt_updated else [["apt-get", "update"]]
    steps.append(["apt-get", "install", "-y", *packages])
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    with APT_LOG.open("a") as log:
        for step in steps:
            result = subprocess.run(
                prefix + step,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                timeout=APT_TIMEOUT_S,
            )
            if result.returncode != 0:
                raise ServiceError(
                    f"{' '.join(step)} failed (exit {result.returncode}); "
                    f"see {APT_LOG}:\n{tail_file(APT_LOG)}"
                )
    _apt_updated = True


# PostgreSQL


def pg_probe(target: PgTarget) -> tuple[str | None, bool]:
    """Connect to ``target``; return (error or None, whether PostGIS is available)."""
    import psycopg2

    try:
        conn = psycopg2.connect(
            host=target.host,
            port=target.port,
            user=target.user,
            password=target.password,
            dbname=target.database,
            connect_timeout=CONNECT_TIMEOUT_S,
        )
    except psycopg2.Error as exc:
        lines = str(exc).strip().splitlines()
        return (lines[0] if lines else type(exc).__name__), False

    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'")
            return None, cur.fetchone() is not None
    finally:
        conn.close()


def pg_bin_dir(version: str | None = None) -> Path | None:
    """Return the newest bin dir with initdb, postgres and PostGIS, or None.

    With ``version``, only that major version qualifies.
    """
    candidates = sorted(
        PG_BIN_ROOT.glob("*/bin"),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
        reverse=True,
    )
    for bin_dir in candidates:
        major = bin_dir.parent.name
        if version is not None and major != version:
            continue
        postgis = PG_SHARE_ROOT / major / "extension" / "postgis.control"
        has_server = (bin_dir / "initdb").exists() and (bin_dir / "postgres").exists()
        if has_server and postgis.exists():
            return bin_dir
    return None


def cluster_version() -> str | None:
    try:
        return (PG_DATA / "PG_VERSION").read_text().strip()
    except (FileNotFoundError, PermissionError):
        return None


def local_pg() -> tuple[int, int] | None:
    """Return (pid, port) of the project-local postmaster when it runs."""
    try:
        lines = (PG_DATA / "postmaster.pid").read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except (OSError, ValueError, IndexError):
        return None
    return (pid, port) if process_alive(pid) else None


def pg_socket_dir(port: int) -> Path:
    """Return the local cluster's socket directory: var/pg/socket when it fits.

    A clone whose path is too long for a Unix socket gets a directory in the
    system's temporary folder instead, named after the clone's path.
    """
    if len(os.fsencode(PG_SOCKET_DIR / f".s.PGSQL.{port}.lock")) <= SOCKET_PATH_MAX:
        return PG_SOCKET_DIR
    digest = hashlib.sha256(os.fsencode(ROOT)).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"nearby-pg-{digest}"


def system_account() -> pwd.struct_passwd | None:
    """Return the account the cluster runs as: postgres when root, else None."""
    if not is_root():
        return None
    try:
        return pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        raise ServiceError(
            f"running as root but there is no {PG_SYSTEM_USER} system user "
            f"to run PostgreSQL (install {PG_PACKAGE})"
        ) from None


def as_account(command: list, account: pwd.struct_passwd | None) -> list:
    if account is None:
        return command
    return ["runuser", "-u", account.pw_name, "--", *command]


def own(path: Path, account: pwd.struct_passwd | None) -> None:
    if account is not None:
        os.chown(path, account.pw_uid, account.pw_gid)


def grant_traversal(path: Path, account: pwd.struct_passwd) -> None:
    """Let ``account`` reach ``path``: o+x on each directory it cannot cross.

    A clone may sit under a 0700 directory of root's (``mktemp -d``), which
    the postgres account could not otherwise enter.
    """
    groups = set(os.getgrouplist(account.pw_name, account.pw_gid))
    for directory in [*reversed(path.parents), path]:
        mode = directory.stat()
        if mode.st_uid == account.pw_uid:
            allowed = mode.st_mode & stat.S_IXUSR
        elif mode.st_gid in groups:
            allowed = mode.st_mode & stat.S_IXGRP
        else:
            allowed = mode.st_mode & stat.S_IXOTH
        if not allowed:
            os.chmod(directory, mode.st_mode | stat.S_IXOTH)
            say(
                f"made {directory} traversable (o+x) so that {account.pw_name} "
                "reaches var/pg"
            )


def pg_conf_quote(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def write_pg_conf(target: PgTarget, account: pwd.struct_passwd | None) -> None:
    """Write the settings nearby needs into the cluster's nearby.conf."""
    settings = {
        "listen_addresses": bind_address(target.host),
        "port": target.port,
        "unix_socket_directories": pg_socket_dir(target.port),
        "unix_socket_permissions": "0700",
        # A development cluster: losing the last commits on a crash is fine,
        # waiting for each one to reach the disk while seeding is not.
        "synchronous_commit": "off",
    }
    path = PG_DATA / PG_CONF_NAME
    path.write_text(
        "# Written by scripts/devservices.py at every start; edits are lost.\n"
        + "".join(
            f"{name} = {pg_conf_quote(value)}\n" for name, value in settings.items()
        )
    )
    own(path, account)


def init_cluster(bin_dir: Path, target: PgTarget, account) -> None:
    """Run initdb into var/pg/data and include nearby.conf from its config."""
    # Local connections are trusted: the socket's directory admits only the
    # cluster's owner. TCP connections need the password, when the URL has one.
    host_auth = "scram-sha-256" if target.password else "trust"
    say(f"initialising a PostgreSQL {bin_dir.parent.name} cluster in {PG_DATA}")
    run(
        as_account(
            [
                bin_dir / "initdb",
                "--pgdata",
                PG_DATA,
                "--username",
                PG_SUPERUSER,
                "--auth-local=trust",
                f"--auth-host={host_auth}",
                "--encoding=UTF8",
                "--locale=C",
            ],
            account,
        ),
        "initdb",
        cwd=PG_HOME,
    )

    with (PG_DATA / "postgresql.conf").open("a") as conf:
        conf.write(f"\ninclude_if_exists = {pg_conf_quote(PG_CONF_NAME)}\n")


def start_pg(target: PgTarget) -> None:
    """Start the project-local cluster, creating it first when needed.

    Raises:
        ServiceError: binaries cannot be installed, or the server did not start
            within PG_START_TIMEOUT_S (the message names its log).
    """
    version = cluster_version()
    bin_dir = pg_bin_dir(version)
    if bin_dir is None:
        apt_install(
            [PG_PACKAGE if version is None else f"postgresql-{version}-postgis-3"]
        )
        bin_dir = pg_bin_dir(version)
        if bin_dir is None:
            raise ServiceError(f"{PG_PACKAGE} installed but no server found")

    account = system_account()
    socket_dir = pg_socket_dir(target.port)
    for directory in (PG_HOME, socket_dir, LOG_DIR):
        directory.mkdir(parents=True, exist_ok=True)
    PG_LOG.touch()
    for path in (PG_HOME, socket_dir, PG_LOG):
        own(path, account)
    socket_dir.chmod(0o700)
    if account is not None:
        grant_traversal(PG_HOME, account)
        grant_traversal(LOG_DIR, account)

    if version is None:
        if PG_DATA.exists() and any(PG_DATA.iterdir()):
            raise ServiceError(f"{PG_DATA} holds no cluster: remove it (make clean)")
        init_cluster(bin_dir, target, account)
    write_pg_conf(target, account)

    say(f"starting PostgreSQL on {bind_address(target.host)}:{target.port}")
    try:
        run(
            as_account(
                [
                    bin_dir / "pg_ctl",
                    "--pgdata",
                    PG_DATA,
                    "--log",
                    PG_LOG,
                    "--wait",
                    "--timeout",
                    PG_START_TIMEOUT_S,
                    "start",
                ],
                account,
            ),
            "pg_ctl start",
            cwd=PG_HOME,
            timeout_s=PG_START_TIMEOUT_S + 10,
        )
    except ServiceError as exc:
        raise ServiceError(
            f"PostgreSQL did not start within {PG_START_TIMEOUT_S} s ({exc}); "
            f"its log is {PG_LOG}:\n{tail_file(PG_LOG)}"
        ) from None


def provision_pg(target: PgTarget) -> None:
    """Create the URL's role (superuser, with its password), database and PostGIS.

    Works through the local cluster's socket as its bootstrap superuser.
    """
    import psycopg2
    from psycopg2 import sql

    def connect(database: str):
        conn = psycopg2.connect(
            host=str(pg_socket_dir(target.port)),
            port=target.port,
            user=PG_SUPERUSER,
            dbname=database,
            connect_timeout=CONNECT_TIMEOUT_S,
        )
        conn.autocommit = True
        return conn

    role = sql.Identifier(target.user)
    database = sql.Identifier(target.database)
    try:
        # No "with conn": psycopg2 would open a transaction, and CREATE
        # DATABASE refuses to run inside one.
        conn = connect("postgres")
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (target.user,))
            verb = "ALTER" if cur.fetchone() else "CREATE"
            cur.execute(
                sql.SQL("{} ROLE {} WITH LOGIN SUPERUSER PASSWORD %s").format(
                    sql.SQL(verb), role
                ),
                (target.password,),
            )
            if verb == "CREATE":
                say(f"created role {target.user} (superuser)")

            cur.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (target.database,)
            )
            if cur.fetchone() is None:
                cur.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(database, role)
                )
                say(f"created database {target.database}")
        conn.close()

        conn = connect(target.database)
        with conn.cursor() as cur:
            cur.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        conn.close()
    except psycopg2.Error as exc:
        lines = str(exc).strip().splitlines()
        raise ServiceError(
            f"could not create the role and database of DATABASE_URL: {lines[0]}"
        ) from None


def stop_pg(pid: int) -> None:
    """Stop the project-local cluster with a fast shutdown and wait for it."""
    bin_dir = pg_bin_dir(cluster_version())
    if bin_dir is not None and (bin_dir / "pg_ctl").exists():
        run(
            as_account(
                [
                    bin_dir / "pg_ctl",
                    "--pgdata",
                    PG_DATA,
                    "--mode=fast",
                    "--wait",
                    "--timeout",
                    STOP_TIMEOUT_S,
                    "stop",
                ],
                system_account(),
            ),
            "pg_ctl stop",
            cwd=PG_HOME,
            timeout_s=STOP_TIMEOUT_S + 10,
        )
        return

    # SIGINT is the postmaster's fast shutdown, what pg_ctl -m fast sends.
    os.kill(pid, signal.SIGINT)
    if not wait_for_exit(pid, STOP_TIMEOUT_S):
        raise ServiceError(
            f"PostgreSQL (pid {pid}) still runs after {STOP_TIMEOUT_S} s"
        )


def postgres_up(target: PgTarget) -> None:
    """Make DATABASE_URL answer, starting the project-local cluster if needed."""
    error, has_postgis = pg_probe(target)
    local = local_pg()
    if error is None:
        if not has_postgis:
            raise ServiceError(
                f"PostgreSQL at {target.label} answers but has no PostGIS: "
                f"install {PG_PACKAGE} on that server"
            )
        note = local_note(local, target.port, "var/pg")
        say(f"PostgreSQL at {target.label} answers{note}: using it")
        return

    if not is_loopback(target.host):
        raise ServiceError(
            f"PostgreSQL at {target.label} does not answer ({error}); it is not "
            "on this machine, so start it there or change DATABASE_URL"
        )

    if local and local[1] != target.port:
        say(f"project-local PostgreSQL runs on port {local[1]}; restarting it")
        stop_pg(local[0])
        local = None
    if local is None:
        if port_open(target.host, target.port):
            raise ServiceError(
                f"another server listens on {target.host}:{target.port} but "
                f"refuses {target.label} ({error}): fix DATABASE_URL or stop it"
            )
        start_pg(target)
    provision_pg(target)

    error, _ = pg_probe(target)
    if error is not None:
        raise ServiceError(
            f"project-local PostgreSQL started but {target.label} fails ({error}); "
            f"see {PG_LOG}"
        )
    say(f"PostgreSQL at {target.label} ready (project-local, log {PG_LOG})")


# Redis


def redis_error(target: RedisTarget) -> str | None:
    """PING ``target``; return None when it answers, else the error's first line."""
    import redis

    client = redis.Redis.from_url(
        target.url,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        socket_timeout=CONNECT_TIMEOUT_S,
    )
    try:
        client.ping()
    except redis.RedisError as exc:
        lines = str(exc).strip().splitlines()
        return lines[0] if lines else type(exc).__name__
    finally:
        client.close()
    return None


def local_redis() -> tuple[int, int] | None:
    """Return (pid, port) of the project-local redis-server when it runs."""
    try:
        pid = int(REDIS_PIDFILE.read_text().strip())
        port = next(
            int(line.split()[1].strip('"'))
            for line in REDIS_CONF.read_text().splitlines()
            if line.startswith("port ")
        )
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    if not process_alive(pid):
        return None

    # A pid left in a stale pidfile may have been reused by another program.
    try:
        command = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return pid, port
    return (pid, port) if command.startswith("redis") else None


def local_note(local: tuple[int, int] | None, port: int, where: str) -> str:
    """Say that the server answering on ``port`` is the project-local one."""
    return f" (project-local, {where})" if local and local[1] == port else ""


def redis_conf_quote(value: object) -> str:
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def start_redis(target: RedisTarget) -> None:
    """Start the project-local redis-server and wait until it answers PING.

    Raises:
        ServiceError: it cannot be installed, or it did not answer within
            REDIS_START_TIMEOUT_S (the message names its log).
    """
    binary = shutil.which("redis-server")
    if binary is None:
        apt_install([REDIS_PACKAGE])
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"

    REDIS_DIR.mkdir(parents=True, exist_ok=True)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    settings = {
        "bind": bind_address(target.host),
        "port": target.port,
        "protected-mode": "yes",
        "daemonize": "yes",
        "pidfile": REDIS_PIDFILE,
        "logfile": REDIS_LOG,
        "dir": REDIS_DIR,
        "save": "",
        "appendonly": "no",
    }
    if target.password:
        settings["requirepass"] = target.password
    # The file may hold the password: readable by its owner only.
    descriptor = os.open(REDIS_CONF, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as conf:
        conf.write("# Written by scripts/devservices.py at every start.\n")
        conf.writelines(
            f"{name} {redis_conf_quote(value)}\n" for name, value in settings.items()
        )

    say(f"starting Redis on {bind_address(target.host)}:{target.port}")
    run([binary, REDIS_CONF], "redis-server", cwd=REDIS_DIR)

    deadline = time.monotonic() + REDIS_START_TIMEOUT_S
    while (error := redis_error(target)) is not None:
        if time.monotonic() > deadline:
            raise ServiceError(
                f"Redis did not answer within {REDIS_START_TIMEOUT_S} s ({error}); "
                f"its log is {REDIS_LOG}:\n{tail_file(REDIS_LOG)}"
            )
        time.sleep(0.2)


def stop_redis(pid: int) -> None:
    """Stop the project-local redis-server; with persistence off, nothing is saved."""
    os.kill(pid, signal.SIGTERM)
    if not wait_for_exit(pid, STOP_TIMEOUT_S):
        os.kill(pid, signal.SIGKILL)
        say(f"Redis (pid {pid}) ignored SIGTERM for {STOP_TIMEOUT_S} s: killed")
    REDIS_PIDFILE.unlink(missing_ok=True)


def redis_up(target: RedisTarget) -> None:
    """Make REDIS_URL answer, starting the project-local redis-server if needed."""
    error = redis_error(target)
    local = local_redis()
    if error is None:
        note = local_note(local, target.port, "var/redis")
        say(f"Redis at {target.label} answers{note}: using it")
        return

    if not is_loopback(target.host):
        raise ServiceError(
            f"Redis at {target.label} does not answer ({error}); it is not on this "
            "machine, so start it there or change REDIS_URL"
        )

    if local is not None:
        say("project-local Redis does not match REDIS_URL; restarting it empty")
        stop_redis(local[0])
    if port_open(target.host, target.port):
        raise ServiceError(
            f"another server listens on {target.label} but refuses REDIS_URL "
            f"({error}): fix REDIS_URL or stop it"
        )
    start_redis(target)
    say(f"Redis at {target.label} ready (project-local, log {REDIS_LOG})")


def broker_check(redis: RedisTarget, broker: RedisTarget) -> str | None:
    """Check a Celery broker on another server than REDIS_URL's; never start it."""
    if (broker.host, broker.port) == (redis.host, redis.port):
        return None
    return redis_error(broker)


# Commands


def command_up() -> int:
    pg, redis, broker = load_targets()

    postgres_up(pg)
    redis_up(redis)

    error = broker_check(redis, broker)
    if error is not None:
        raise ServiceError(
            f"the Celery broker at {broker.label} does not answer ({error}); "
            "it is not started by this script"
        )
    return 0


def command_down() -> int:
    local = local_pg()
    if local is None:
        say("PostgreSQL: no project-local instance runs")
    else:
        stop_pg(local[0])
        say(f"PostgreSQL: project-local instance on port {local[1]} stopped")

    local = local_redis()
    if local is None:
        say("Redis: no project-local instance runs")
        REDIS_PIDFILE.unlink(missing_ok=True)
    else:
        stop_redis(local[0])
        say(f"Redis: project-local instance on port {local[1]} stopped")
    return 0


def command_status() -> int:
    pg, redis, broker = load_targets()
    healthy = True

    error, has_postgis = pg_probe(pg)
    where = local_note(local_pg(), pg.port, "var/pg")
    if error is None and not has_postgis:
        error = "answers, but PostGIS is not available"
    healthy &= error is None
    say(f"PostgreSQL {pg.label}: {error or 'answers'}{where}")

    error = redis_error(redis)
    where = local_note(local_redis(), redis.port, "var/redis")
    healthy &= error is None
    say(f"Redis {redis.label}: {error or 'answers'}{where}")

    if (broker.host, broker.port) != (redis.host, redis.port):
        error = redis_error(broker)
        healthy &= error is None
        say(f"Celery broker {broker.label}: {error or 'answers'}")
    return 0 if healthy else 1


def missing_tools() -> list[str]:
    """Return the benchmark suite's commands that are missing or cannot run."""
    return [
        command
        for command, (_, probe) in BENCH_TOOLS.items()
        if not _runs(command, probe)
    ]


def _runs(command: str, probe: str | None) -> bool:
    if shutil.which(command) is None:
        return False
    if probe is None:
        return True
    try:
        done = subprocess.run(
            [command, probe],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=COMMAND_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def command_tools() -> int:
    missing = missing_tools()
    if missing:
        apt_install(sorted({BENCH_TOOLS[command][0] for command in missing}))
        missing = missing_tools()
    if missing:
        raise ServiceError(
            f"{', '.join(missing)} still cannot run after apt-get; see {APT_LOG}"
        )
    say(f"benchmark tools present: {', '.join(BENCH_TOOLS)}")
    return 0


COMMANDS = {
    "up": command_up,
    "down": command_down,
    "status": command_status,
    "tools": command_tools,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="PostgreSQL+PostGIS and Redis for nearby's demo and tests."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="use the configured servers, or start local ones")
    commands.add_parser("down", help="stop the project-local servers under var/")
    commands.add_parser("status", help="tell which configured servers answer")
    commands.add_parser("tools", help="install the benchmark suite's load generators")
    args = parser.parse_args(argv)

    try:
        return COMMANDS[args.command]()
    except ServiceError as exc:
        print(f"devservices: error: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
