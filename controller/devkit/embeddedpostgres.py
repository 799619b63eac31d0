"""Embedded PostgreSQL: the server from the pgserver wheel, initialised once into `<data_dir>/pg`.

It listens on 127.0.0.1 only, with no unix socket, and every connection must authenticate with the
`postgres` role's password (SCRAM): the password is generated once into `<data_dir>/pg-password`
(mode 0600) and set in single-user mode before the server first listens, so no network client ever
meets a password-less superuser.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import subprocess
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

from controller.devkit.serverchild import (
    HOST,
    EmbeddedError,
    ServerChild,
    allow_traverse,
    clear_stale_pid_file,
    credentials,
    ensure_system_user,
    package_dir,
    tail,
)

#: Unprivileged user PostgreSQL runs as when we are root (the same one pgserver itself uses).
PG_SYSTEM_USER = "pgserver"
DATABASE = "ringpilot"
#: Written by us into pg_hba.conf: password (SCRAM) over loopback TCP, nothing else.
HBA = "# written by ringpilot: loopback TCP with a password, no unix socket\nhost all all 127.0.0.1/32 scram-sha-256\n"


def postgres_bin_dir() -> Path:
    """`bin/` of the PostgreSQL build inside the pgserver wheel (initdb, postgres, pg_ctl, psql)."""
    return package_dir("pgserver") / "pginstall" / "bin"


class EmbeddedPostgres(ServerChild):
    """PostgreSQL in `<data_dir>/pg` on loopback TCP, role `postgres` with the password of `password_file`."""

    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: roll back open transactions, checkpoint, exit

    @property
    def password_file(self) -> Path:
        return self.home.parent / "pg-password"

    @property
    def password(self) -> str:
        if not self.password_file.exists():
            self.password_file.touch(mode=0o600)
            self.password_file.write_text(secrets.token_urlsafe(24))
        return self.password_file.read_text().strip()

    def spawn_user(self) -> str | None:
        if os.geteuid() != 0:
            return None
        ensure_system_user(PG_SYSTEM_USER)  # postgres refuses to run as root
        return PG_SYSTEM_USER

    def url_of(self, database: str) -> str:
        return f"postgresql://postgres:{quote(self.password, safe='')}@{HOST}:{self.port}/{database}"

    @property
    def url(self) -> str:
        return self.url_of(DATABASE)

    def command(self) -> list[str]:
        cmd = [
            str(postgres_bin_dir() / "postgres"),
            "-D",
            str(self.home),
            "-p",
            str(self.port),
            "-c",
            f"listen_addresses={HOST}",
            "-c",
            "unix_socket_directories=",
            "-c",
            "cluster_name=ringpilot",
            "-c",
            "max_connections=200",
            "-c",
            "password_encryption=scram-sha-256",
        ]
        if not self.durable:  # tests only: lose the last transactions on a crash, never corrupt data
            cmd += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        return cmd

    def prepare(self) -> None:
        user = self.spawn_user()
        self.home.parent.mkdir(parents=True, exist_ok=True)
        clear_stale_pid_file(self.home / "postmaster.pid", "postgres", signal.SIGQUIT)
        if not (self.home / "PG_VERSION").exists():
            self._initdb(user)
        elif user is not None:
            allow_traverse(self.home.parent)
        self._require_password(user)

    def _initdb(self, user: str | None) -> None:
        shutil.rmtree(self.home, ignore_errors=True)  # what a previous initdb left half-way
        self.home.mkdir(mode=0o700)
        if user is not None:
            os.chown(self.home, pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid)
            allow_traverse(self.home.parent)
        cmd = [
            str(postgres_bin_dir() / "initdb"),
            "-D",
            str(self.home),
            "-U",
            "postgres",
            "--auth=reject",  # nobody gets in until _require_password has set the password and pg_hba.conf
            "--encoding=UTF8",
            "--locale=C",
        ]
        if not self.durable:
            cmd.append("--no-sync")
        self._run(cmd, user, "initdb")

    def _require_password(self, user: str | None) -> None:
        """Set the role's password (single-user mode, no listener) and write pg_hba.conf, unless done."""
        hba = self.home / "pg_hba.conf"
        if hba.exists() and hba.read_text() == HBA:
            return
        statement = f"ALTER ROLE postgres WITH PASSWORD '{self.password}';\n"  # token_urlsafe: no quote in it
        cmd = [str(postgres_bin_dir() / "postgres"), "--single", "-D", str(self.home), "postgres"]
        self._run(cmd, user, "setting the postgres role's password", stdin=statement)
        hba.write_text(HBA)
        if user is not None:
            os.chown(hba, pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid)

    def _run(self, cmd: list[str], user: str | None, what: str, stdin: str | None = None) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            done = subprocess.run(
                cmd,
                input=stdin.encode() if stdin is not None else None,
                stdout=subprocess.DEVNULL if stdin is not None else log,  # single-user mode echoes its input
                stderr=log,
                check=False,
                **credentials(user),
            )
        if done.returncode != 0:
            raise EmbeddedError(f"{what} failed; log {self.log_path}:\n{tail(self.log_path)}")

    def ready(self) -> bool:
        try:
            lines = (self.home / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        pid = str(self.process.pid) if self.process is not None else ""
        return len(lines) >= 8 and lines[0].strip() == pid and lines[7].strip() == "ready"

    def ensure_database(self) -> None:
        """Create the `ringpilot` database on first start."""
        with psycopg.connect(self.url_of("postgres"), autocommit=True, connect_timeout=5) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
