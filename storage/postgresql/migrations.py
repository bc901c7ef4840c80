"""The PostgreSQL engine's schema, as numbered migrations the engine applies itself.

`migrate(connection)` brings a database up to `LATEST` and returns its version. Each migration
runs in one transaction that also records it in `schema_migrations` (version, name, checksum of
its SQL), so a failed migration leaves nothing half-done and the next start tries it again. A
transaction-level advisory lock serializes brokers starting together against one database: the
second waits, then finds the migration recorded and skips it.

Checked at every start, before anything is changed: a database migrated by a newer Ottla (a
version this code does not know) refuses with SchemaError, as does a recorded migration whose SQL
no longer matches the code's (a migration is never edited once released: add the next one).

Migrations are append-only: never renumber, edit or remove one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import asyncpg

# pg_advisory_xact_lock's key for schema changes: any constant, the same in every broker.
_LOCK_KEY = 0x6F74746C61  # "ottla"


@dataclass(slots=True, frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


class SchemaError(RuntimeError):
    """The database's schema is not one this code can use; the message says what to do."""


# Topics, partitions and record batches (issue 24, item 1).
#
# batches holds each produce batch as stored: the wire bytes as they arrived, with base offset and
# partition leader epoch assigned (both outside the CRC), so Fetch sends them back unchanged.
# Offsets are contiguous and batches never overlap within a partition: partitions.next_offset is
# advanced in the transaction that inserts the batch, under that row's lock.
#
# Fetch by offset: the batch holding offset X is the first whose last_offset >= X (the primary
# key); whole batches up to max_bytes are a range of end_position (bytes appended to the partition
# up to and including the batch, monotone in offset order, as a segment file's position is).
#
# ListOffsets by timestamp (Kafka's time index): max_timestamp_so_far is the largest batch max
# timestamp up to and including the batch, so it never decreases in offset order; the first batch
# whose own max_timestamp reaches a target is the first at which max_timestamp_so_far does,
# found in the (max_timestamp_so_far, last_offset) index without walking the partition.
_TOPICS_PARTITIONS_BATCHES = """
CREATE TABLE topics (
    topic_id uuid PRIMARY KEY,
    name text NOT NULL UNIQUE,
    configs jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(configs) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE partitions (
    topic_id uuid NOT NULL REFERENCES topics ON DELETE CASCADE,
    partition_index integer NOT NULL CHECK (partition_index >= 0),
    log_start_offset bigint NOT NULL DEFAULT 0,
    -- The log end offset; one copy of the data (PostgreSQL's), so also the high watermark.
    next_offset bigint NOT NULL DEFAULT 0,
    next_position bigint NOT NULL DEFAULT 0,
    max_timestamp bigint NOT NULL DEFAULT -1,
    leader_epoch integer NOT NULL DEFAULT 0,
    PRIMARY KEY (topic_id, partition_index),
    CHECK (0 <= log_start_offset AND log_start_offset <= next_offset)
);

CREATE TABLE batches (
    topic_id uuid NOT NULL,
    partition_index integer NOT NULL,
    base_offset bigint NOT NULL,
    last_offset bigint NOT NULL,
    end_position bigint NOT NULL,
    max_timestamp bigint NOT NULL,
    max_timestamp_so_far bigint NOT NULL,
    producer_id bigint NOT NULL,
    producer_epoch smallint NOT NULL,
    base_sequence integer NOT NULL,
    last_sequence integer NOT NULL,
    is_transactional boolean NOT NULL,
    is_control boolean NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (topic_id, partition_index, last_offset),
    FOREIGN KEY (topic_id, partition_index) REFERENCES partitions ON DELETE CASCADE,
    CHECK (base_offset >= 0 AND last_offset >= base_offset),
    CHECK (max_timestamp_so_far >= max_timestamp)
);
-- Batches are written once and read as they are: keep the bytes out of TOAST's compression.
ALTER TABLE batches ALTER COLUMN data SET STORAGE EXTERNAL;

CREATE INDEX batches_by_position ON batches (topic_id, partition_index, end_position);
CREATE INDEX batches_by_time ON batches (topic_id, partition_index, max_timestamp_so_far, last_offset);
"""

# Producer state for idempotence and transactions (Kafka's ProducerStateManager, rules in
# storage/producer_state.py), written by the statement that stores the batches it accounts for.
#
# producers: per (partition, producer id) what ProducerEntry holds: the epoch, the metadata of
# the last five batches (a JSON array of [first_seq, last_seq, first_offset, last_offset,
# timestamp], oldest first), the first offset of its open transaction, the coordinator epoch of
# the last marker. aborted_transactions: Kafka's .txnindex. The last stable offset is the
# smallest current_txn_first_offset of the partition (partial index), else the high watermark.
#
# partitions.producer_state_version counts the appends that changed the partition's producer
# state: a broker appends an idempotent or transactional batch only if the version (and the log
# end offset) it decided against is still the row's, checked under the row's lock in the
# statement that stores the batch, so two brokers can never both accept one sequence.
_PRODUCER_STATE = """
ALTER TABLE partitions ADD COLUMN producer_state_version bigint NOT NULL DEFAULT 0;

CREATE TABLE producers (
    topic_id uuid NOT NULL,
    partition_index integer NOT NULL,
    producer_id bigint NOT NULL CHECK (producer_id >= 0),
    producer_epoch smallint NOT NULL,
    batches jsonb NOT NULL CHECK (jsonb_typeof(batches) = 'array'),
    current_txn_first_offset bigint,
    last_timestamp bigint NOT NULL,
    coordinator_epoch integer NOT NULL,
    PRIMARY KEY (topic_id, partition_index, producer_id),
    FOREIGN KEY (topic_id, partition_index) REFERENCES partitions ON DELETE CASCADE
);
CREATE INDEX producers_open_transactions ON producers (topic_id, partition_index, current_txn_first_offset)
    WHERE current_txn_first_offset IS NOT NULL;

CREATE TABLE aborted_transactions (
    topic_id uuid NOT NULL,
    partition_index integer NOT NULL,
    producer_id bigint NOT NULL,
    first_offset bigint NOT NULL,
    last_offset bigint NOT NULL,
    last_stable_offset bigint NOT NULL,
    PRIMARY KEY (topic_id, partition_index, last_offset),
    FOREIGN KEY (topic_id, partition_index) REFERENCES partitions ON DELETE CASCADE,
    CHECK (first_offset <= last_offset)
);
"""

# Several brokers over one database: each broker's registration and lease, and who leads each
# partition.
#
# brokers: one row per live (or lately live) node id; a broker renews `lease_expires_at` (the
# database's clock, so brokers' clocks never disagree about it) every few seconds and is live
# while it lies ahead. `incarnation` is drawn at each start: a renewal that finds another
# incarnation's row was fenced by a newer start of the same node id. `endpoints` is what
# Metadata tells clients: {"LISTENER": ["host", port], ...}.
#
# partitions.leader_id: the node that last claimed leadership of the partition; each claim by a
# different node bumps partitions.leader_epoch, which appends stamp into their batches, so
# leader epochs only grow, whichever brokers come and go.
_BROKERS = """
CREATE TABLE brokers (
    node_id integer PRIMARY KEY CHECK (node_id >= 0),
    incarnation uuid NOT NULL,
    rack text,
    endpoints jsonb NOT NULL CHECK (jsonb_typeof(endpoints) = 'object'),
    lease_expires_at timestamptz NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE partitions ADD COLUMN leader_id integer NOT NULL DEFAULT -1;
"""

# The transaction coordinator's producer ids: the next id no broker was given. A broker reserves a
# block by advancing it in one statement (coordinator_topics.reserve_producer_ids); the row's lock
# serializes brokers, so an id is never handed out twice (Kafka's ProducerIdsRecord).
_PRODUCER_ID_BLOCK = """
CREATE TABLE producer_id_block (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    next_producer_id bigint NOT NULL CHECK (next_producer_id >= 0)
);
INSERT INTO producer_id_block (next_producer_id) VALUES (0);
"""

# What Kafka keeps in its metadata log besides topics, shared by every broker on the database
# (metadata.py): SCRAM credentials (the mechanism by its SASL name; keys, never a password),
# ACL bindings (Kafka's codes; a binding is its seven fields, so stored once), client quotas
# (the entity as its sorted [type, name or null] pairs, the quotas as {key: value}) and group
# configs (a group's overrides as {name: value}).
_METADATA = """
CREATE TABLE scram_credentials (
    user_name text NOT NULL CHECK (user_name <> ''),
    mechanism text NOT NULL,
    salt bytea NOT NULL,
    stored_key bytea NOT NULL,
    server_key bytea NOT NULL,
    iterations integer NOT NULL CHECK (iterations > 0),
    PRIMARY KEY (user_name, mechanism)
);

CREATE TABLE acls (
    resource_type smallint NOT NULL,
    resource_name text NOT NULL,
    pattern_type smallint NOT NULL,
    principal text NOT NULL,
    host text NOT NULL,
    operation smallint NOT NULL,
    permission_type smallint NOT NULL,
    PRIMARY KEY (resource_type, resource_name, pattern_type, principal, host, operation, permission_type)
);

CREATE TABLE client_quotas (
    entity jsonb PRIMARY KEY CHECK (jsonb_typeof(entity) = 'array'),
    quotas jsonb NOT NULL CHECK (jsonb_typeof(quotas) = 'object')
);

CREATE TABLE group_configs (
    group_id text PRIMARY KEY,
    configs jsonb NOT NULL CHECK (jsonb_typeof(configs) = 'object')
);
"""

# The log cleaner's state (storage/postgresql/compaction.py): where each partition's dirty
# section starts (Kafka's cleaner-offset-checkpoint) and the segments the local engine would have
# rolled. Batches are not in segment files here, but the cleaner's rules are per segment (the
# active one is never cleaned, tombstones are timed by their segment's largest timestamp), so a
# pass replays segment.bytes and segment.ms over the batches appended since the last pass, and
# keeps each segment's offsets [base_offset, next_offset), size in bytes as stored now, first
# batch's and largest timestamps, as a local segment file would have them. The segment with the
# largest base offset is the active one.
_CLEANER = """
ALTER TABLE partitions ADD COLUMN first_dirty_offset bigint NOT NULL DEFAULT 0;

CREATE TABLE segments (
    topic_id uuid NOT NULL,
    partition_index integer NOT NULL,
    base_offset bigint NOT NULL,
    next_offset bigint NOT NULL,
    size bigint NOT NULL,
    first_batch_timestamp bigint NOT NULL,
    max_timestamp bigint NOT NULL,
    PRIMARY KEY (topic_id, partition_index, base_offset),
    FOREIGN KEY (topic_id, partition_index) REFERENCES partitions ON DELETE CASCADE,
    CHECK (base_offset <= next_offset AND size >= 0)
);
"""

# Delegation tokens (KIP-48), shared by every broker on the database as SCRAM credentials are
# (metadata.py): a token's information, never its HMAC, which each broker derives again from
# delegation.token.secret.key (as Kafka's DelegationTokenRecord leaves it out).
_DELEGATION_TOKENS = """
CREATE TABLE delegation_tokens (
    token_id text PRIMARY KEY,
    owner text NOT NULL,
    requester text NOT NULL,
    renewers jsonb NOT NULL CHECK (jsonb_typeof(renewers) = 'array'),
    issue_ms bigint NOT NULL,
    expiry_ms bigint NOT NULL,
    max_ms bigint NOT NULL
);
"""

# Finalized feature levels (KIP-584), one for every broker on the database (metadata.py): a row
# per feature, with the epoch of the change that last set it (the cluster's epoch is the largest).
_FINALIZED_FEATURES = """
CREATE TABLE finalized_features (
    name text PRIMARY KEY,
    level smallint NOT NULL CHECK (level >= 0),
    epoch bigint NOT NULL CHECK (epoch >= 0)
);
"""

# Dynamic broker configs (IncrementalAlterConfigs and AlterConfigs on a BROKER resource), one set
# for every broker on the database as Kafka's metadata log keeps them (metadata.py): a row per
# config, under the resource name it was set on, a node id or '' for the cluster default, so
# changes of two keys made through two brokers at once both land.
_BROKER_CONFIGS = """
CREATE TABLE broker_configs (
    resource_name text NOT NULL,
    name text NOT NULL,
    value text NOT NULL,
    PRIMARY KEY (resource_name, name)
);
"""

# When a batch carrying no timestamp (magic 0, or every record at -1) was stored, by the
# database's clock in ms: what time retention compares for it, as Kafka's LogSegment.largestTimestamp
# falls back to the segment file's modification time. NULL for batches with a timestamp, and for
# those stored before this column, which time retention then keeps.
_STORED_AT = """
ALTER TABLE batches ADD COLUMN stored_at_ms bigint;
"""

# ListOffsets -3 (KIP-734) after DeleteRecords: the largest max timestamp of the batches
# DeleteRecords removed, and the offset of the first record carrying it (-1, -1: none). Kafka
# keeps a segment wholly below the log start until its next retention check (the active one for
# good), and its records count for the max timestamp meanwhile; this engine deletes the batches at
# once and keeps only what that answer needs. Retention forgets it, as Kafka's check drops them.
_DELETED_MAX_TIMESTAMP = """
ALTER TABLE partitions
    ADD COLUMN deleted_max_timestamp bigint NOT NULL DEFAULT -1,
    ADD COLUMN deleted_max_timestamp_offset bigint NOT NULL DEFAULT -1;
"""

# OffsetForLeaderEpoch (Kafka's leader epoch cache, LeaderEpochFileCache): where each leader epoch
# that has batches starts, the offset of its first batch, written by the append that stores it
# (`appended_epoch` is the epoch of the partition's last batch, so an append knows it starts a new
# one). Rows are never moved by DeleteRecords or retention: Kafka's truncation of the cache from
# the log start is applied when it is read (log.py). Filled here from the batches stored, each
# one's epoch read from its bytes (partitionLeaderEpoch, offset 12); the epochs of batches deleted
# before this migration are lost, and those below the log start no longer matter.
_LEADER_EPOCHS = """
CREATE TABLE leader_epochs (
    topic_id uuid NOT NULL,
    partition_index integer NOT NULL,
    leader_epoch integer NOT NULL,
    start_offset bigint NOT NULL,
    PRIMARY KEY (topic_id, partition_index, leader_epoch),
    FOREIGN KEY (topic_id, partition_index) REFERENCES partitions ON DELETE CASCADE
);
ALTER TABLE partitions ADD COLUMN appended_epoch integer NOT NULL DEFAULT -1;

INSERT INTO leader_epochs (topic_id, partition_index, leader_epoch, start_offset)
SELECT topic_id, partition_index, epoch, min(base_offset) FROM (
    SELECT topic_id, partition_index, base_offset,
        (get_byte(h, 0) << 24) | (get_byte(h, 1) << 16) | (get_byte(h, 2) << 8) | get_byte(h, 3) AS epoch
    FROM (SELECT topic_id, partition_index, base_offset, substring(data FROM 13 FOR 4) AS h FROM batches) b
) e
GROUP BY topic_id, partition_index, epoch;

UPDATE partitions p SET appended_epoch = e.leader_epoch
FROM (SELECT topic_id, partition_index, max(leader_epoch) AS leader_epoch FROM leader_epochs GROUP BY topic_id, partition_index) e
WHERE p.topic_id = e.topic_id AND p.partition_index = e.partition_index;
"""

# Names differing only by '.' and '_' (Kafka's collision key: their metric names are the same). A
# CreateTopics refuses a name whose key an existing topic has (ReplicationControlManager's
# validateNewTopicNames), but creates both names of one request, as Kafka's controller judges a
# request's names against the topics it had before it; so no unique index can say it. The check
# is create_topic's, under a transaction-level advisory lock on the key that serializes brokers
# creating colliding names; `created_by_request` tells a topic of the same CreateTopics (NULL: not
# created by one), the index finds a key's topics.
_COLLISION_KEY = """
ALTER TABLE topics ADD COLUMN created_by_request uuid;
CREATE INDEX topics_by_collision_key ON topics ((replace(name, '.', '_')));
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "topics, partitions and record batches", _TOPICS_PARTITIONS_BATCHES),
    Migration(2, "producer state and aborted transactions", _PRODUCER_STATE),
    Migration(3, "brokers, their leases and partition leaders", _BROKERS),
    Migration(4, "the producer-id block", _PRODUCER_ID_BLOCK),
    Migration(5, "SCRAM credentials, ACLs, client quotas and group configs", _METADATA),
    Migration(6, "the log cleaner's checkpoint and segments", _CLEANER),
    Migration(7, "delegation tokens", _DELEGATION_TOKENS),
    Migration(8, "finalized feature levels", _FINALIZED_FEATURES),
    Migration(9, "dynamic broker configs", _BROKER_CONFIGS),
    Migration(10, "when batches without a timestamp were stored", _STORED_AT),
    Migration(11, "the max timestamp of the batches DeleteRecords removed", _DELETED_MAX_TIMESTAMP),
    Migration(12, "where each leader epoch starts", _LEADER_EPOCHS),
    Migration(13, "topics by the key of their colliding names", _COLLISION_KEY),
)
LATEST = MIGRATIONS[-1].version

_SCHEMA_MIGRATIONS = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


async def migrate(connection: asyncpg.Connection, migrations: tuple[Migration, ...] = MIGRATIONS) -> int:
    """Apply the migrations the database lacks, each in its own transaction; returns the
    database's version. Raises SchemaError, changing nothing, when the database is newer than
    `migrations` or a recorded migration differs from the code's."""
    for migration in migrations:
        async with connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
            await connection.execute(_SCHEMA_MIGRATIONS)
            applied = await _applied(connection)
            _check(applied, migrations)
            if migration.version not in applied:
                await connection.execute(migration.sql)
                await connection.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version, migration.name, migration.checksum,
                )
    return migrations[-1].version


async def _applied(connection: asyncpg.Connection) -> dict[int, str]:
    rows = await connection.fetch("SELECT version, checksum FROM schema_migrations")
    return {int(row["version"]): str(row["checksum"]) for row in rows}


def _check(applied: dict[int, str], migrations: tuple[Migration, ...]) -> None:
    known = {migration.version: migration for migration in migrations}
    newer = sorted(version for version in applied if version not in known)
    if newer:
        raise SchemaError(
            f"the database's schema is at version {max(applied)}, newer than this Ottla knows "
            f"(up to {migrations[-1].version}): upgrade Ottla, or point it at another database"
        )
    for version, checksum in applied.items():
        if checksum != known[version].checksum:
            raise SchemaError(
                f"migration {version} ({known[version].name}) as recorded in the database differs from this "
                "Ottla's: the schema was changed by another build; use the Ottla that created it"
            )
