"""The database itself enforces append-only audit, immutable evidence and transcript constraints."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from controller.storage.db import connect


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[DictRow]]:
    with connect(database_url, autocommit=True) as connection:
        yield connection


def insert_audit(conn: psycopg.Connection[DictRow]) -> int:
    row = conn.execute(
        "INSERT INTO audit_events (correlation_id, actor, action) VALUES ('c-1', 'dev-admin', 'Created') RETURNING id"
    ).fetchone()
    assert row is not None
    return int(str(row["id"]))


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET actor = 'mallory'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
    ],
)
def test_audit_events_are_append_only(conn: psycopg.Connection[DictRow], statement: str) -> None:
    insert_audit(conn)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match=r"audit_events is append-only"):
        conn.execute(statement)
    assert conn.execute("SELECT actor FROM audit_events").fetchall() == [{"actor": "dev-admin"}]


def insert_evidence(conn: psycopg.Connection[DictRow]) -> uuid.UUID:
    body = {"app": "vpn-client", "version": "1.2.3"}
    pack_id = uuid.uuid4()
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    conn.execute(
        "INSERT INTO evidence_packs (id, correlation_id, task, sha256, body) VALUES (%s, 'c-1', 't', %s, %s)",
        (pack_id, digest, Jsonb(body)),
    )
    return pack_id


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE evidence_packs SET body = '{}'::jsonb",
        "UPDATE evidence_packs SET sha256 = repeat('0', 64)",
        "DELETE FROM evidence_packs",
        "TRUNCATE evidence_packs",
    ],
)
def test_evidence_packs_are_immutable(conn: psycopg.Connection[DictRow], statement: str) -> None:
    insert_evidence(conn)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match=r"evidence_packs is append-only"):
        conn.execute(statement)
    row = conn.execute("SELECT body FROM evidence_packs").fetchone()
    assert row == {"body": {"app": "vpn-client", "version": "1.2.3"}}


def test_evidence_needs_a_sha256(conn: psycopg.Connection[DictRow]) -> None:
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "INSERT INTO evidence_packs (id, correlation_id, sha256, body) VALUES (%s, 'c', 'abc', '{}')",
            (uuid.uuid4(),),
        )


def test_messages_keep_order_and_store_each_turn_once(conn: psycopg.Connection[DictRow]) -> None:
    conn.execute(
        "INSERT INTO conversations (id, namespace, name, user_id, correlation_id) "
        "VALUES ('conv-1', 'default', 'chat', 'dev-publisher', 'c-1')"
    )
    insert = "INSERT INTO messages (conversation_id, seq, message_id, role, content) VALUES ('conv-1', %s, %s, %s, %s)"
    conn.execute(insert, (1, "m-1", "user", Jsonb({"text": "hi"})))
    conn.execute(insert, (2, None, "assistant", Jsonb({"text": "hello"})))
    conn.execute(insert, (3, None, "tool", Jsonb({"result": 1})))
    with pytest.raises(psycopg.errors.UniqueViolation, match="messages_conversation_seq_key"):
        conn.execute(insert, (2, None, "assistant", Jsonb({})))
    with pytest.raises(psycopg.errors.UniqueViolation, match="messages_conversation_message_id_key"):
        conn.execute(insert, (4, "m-1", "user", Jsonb({"text": "hi again"})))
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(insert, (5, None, "system", Jsonb({})))
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        conn.execute("INSERT INTO messages (conversation_id, seq, role, content) VALUES ('nope', 1, 'user', '{}')")
    last_two = conn.execute(
        "SELECT seq FROM messages WHERE conversation_id = 'conv-1' ORDER BY seq DESC LIMIT 2"
    ).fetchall()
    assert last_two == [{"seq": 3}, {"seq": 2}]


def test_plane_manifests_keep_every_revision(conn: psycopg.Connection[DictRow]) -> None:
    insert = "INSERT INTO plane_manifests (namespace, name, app, revision, manifest) VALUES (%s, %s, %s, %s, %s)"
    conn.execute(insert, ("ring-0", "vpn", "vpn-client", 1, Jsonb({"image": "v1"})))
    conn.execute(insert, ("ring-0", "vpn", "vpn-client", 2, Jsonb({"image": "v2"})))
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute(insert, ("ring-0", "vpn", "vpn-client", 2, Jsonb({})))
    latest = conn.execute(
        "SELECT manifest FROM plane_manifests WHERE namespace = 'ring-0' AND name = 'vpn' "
        "ORDER BY revision DESC LIMIT 1"
    ).fetchone()
    assert latest == {"manifest": {"image": "v2"}}
