"""The feedback store: items awaiting labels and the labels people (or simulated labelers) gave, in SQLite.

SQLite in WAL mode is the embedded default: one file, many readers, writers serialised by the database itself.
Several processes may add items and labels at once (training runs, a labeling web app, scripts); every write is
one `BEGIN IMMEDIATE` transaction, so no label is lost and an item never gets more labels than it wants: when two
labelers answer the same item at once, one wins and the other gets `ItemAlreadyLabeled`.

An item is a prompt with candidate responses (a pair, K responses to rank, or one response to rate) or two
references to trajectory segments. A label records who answered (labeler id), what (a choice), when, how long it
took, and an optional free-text comment.

The item and label types and the valid choices: `rlhf_tf.feedback.items`; the schema: `rlhf_tf.feedback.schema`.
"""

import contextlib
import hashlib
import json
import os
import secrets
import sqlite3
import threading
import time

from rlhf_tf.data import reader, records, tfrecord
from rlhf_tf.errors import UserInputError
from rlhf_tf.feedback.items import (  # noqa: F401  (the store's types, importable from here too)
    ITEM_KINDS,
    PAIR_KINDS,
    AlreadyAnswered,
    Item,
    ItemAlreadyLabeled,
    Label,
    decode_arrays,
    encode_arrays,
    record_item_id,
    validate_choice,
)
from rlhf_tf.feedback.schema import ADDED_COLUMNS, SCHEMA, SCHEMA_VERSION, TRIGGERS

# Items that still want a (non-skip) label (the partial index `items_open`), and those of them that the labeler
# bound to `?` has not answered (the labels' (item_id, labeler) key).
_OPEN = "items.labels_given < items.labels_wanted"
_WANTS_LABEL_FROM = (
    _OPEN + " AND NOT EXISTS (SELECT 1 FROM labels WHERE labels.item_id = items.id AND labels.labeler = ?)"
)
_SKIP = '{"skip": true}'
_WRITE_LOCKS = {}
_WRITE_LOCKS_GUARD = threading.Lock()


def _process_write_lock(path):
    """One lock per database file in this process, shared by all its connections (`FeedbackStore._write`)."""
    key = os.path.realpath(path)
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(key, threading.RLock())


class FeedbackStore:
    """A feedback store in one SQLite file, safe for several processes.

    Args:
      path: the database file (created with its folder if missing).
      timeout: seconds a writer waits for another writer's transaction before giving up.
    """

    def __init__(self, path, timeout=60.0):
        self.path = os.fspath(path)
        directory = os.path.dirname(self.path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        created = not os.path.exists(self.path)
        self._timeout = timeout
        self._process_lock = _process_write_lock(self.path)
        self._connection = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
        if created:  # labels and labelers' token hashes are for the owner only (SQLite gives -wal and -shm the same)
            os.chmod(self.path, 0o600)
        self._connection.row_factory = sqlite3.Row
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=NORMAL")
        self._connection.execute("PRAGMA foreign_keys=ON")
        with self._write() as cursor:
            version = cursor.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise UserInputError(
                    f"The feedback store was written by a newer rlhf-tf (schema {version}). Received: {self.path}"
                )
            for table, column, definition, backfill in ADDED_COLUMNS:
                columns = {row["name"] for row in cursor.execute(f"PRAGMA table_info({table})")}
                if columns and column not in columns:  # the table exists, from an older schema
                    cursor.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
                    if backfill:
                        cursor.execute(backfill)
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    cursor.execute(statement)
            for statement in TRIGGERS:
                cursor.execute(statement)
            cursor.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self):
        self._connection.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    @contextlib.contextmanager
    def _write(self):
        # Writers of this process (a label server's threads, each with its own connection) queue on a lock before
        # asking SQLite for the write lock: SQLite's busy handler would make them poll it with sleeps of up to
        # 100 ms instead, which under many concurrent labelers is most of an answer's wait. Other processes still
        # meet at SQLite's lock.
        if not self._process_lock.acquire(timeout=self._timeout):
            raise sqlite3.OperationalError(f"database is locked: no write turn in {self._timeout:g} s ({self.path})")
        try:
            cursor = self._connection.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                yield cursor
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            else:
                cursor.execute("COMMIT")
        finally:
            self._process_lock.release()

    # Items -------------------------------------------------------------------------------------------------------

    def add_items(self, items):
        """Adds items in one transaction; returns their ids."""
        now = time.time()
        ids = []
        with self._write() as cursor:
            for item in items:
                cursor.execute(
                    "INSERT INTO items (kind, prompt, candidates, source, metadata, priority, labels_wanted,"
                    " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        item.kind,
                        item.prompt,
                        json.dumps(list(item.candidates), ensure_ascii=False),
                        item.source,
                        json.dumps(item.metadata, ensure_ascii=False),
                        float(item.priority),
                        int(item.labels_wanted),
                        now,
                    ),
                )
                ids.append(cursor.lastrowid)
                cursor.executemany(
                    "INSERT INTO attachments (item_id, position, data) VALUES (?, ?, ?)",
                    [(cursor.lastrowid, position, bytes(data)) for position, data in enumerate(item.attachments)],
                )
        return ids

    def attachment(self, item_id, position):
        """The bytes stored with candidate `position` of an item (`Item.attachments`), or None."""
        row = self._connection.execute(
            "SELECT data FROM attachments WHERE item_id = ? AND position = ?", (item_id, position)
        ).fetchone()
        return None if row is None else bytes(row["data"])

    def item(self, item_id):
        row = self._connection.execute("SELECT * FROM items WHERE id = ?", (item_id,)).fetchone()
        if row is None:
            raise UserInputError(f"No item with that id in {self.path}. Received: item_id={item_id}")
        return _item(row)

    def items(self, source=None):
        """Every item (from `source`, when given), in id order."""
        if source is None:
            rows = self._connection.execute("SELECT * FROM items ORDER BY id")
        else:
            rows = self._connection.execute("SELECT * FROM items WHERE source = ? ORDER BY id", (source,))
        return [_item(row) for row in rows]

    def next_items(self, labeler, limit=1, kind=None):
        """Items that still want labels and that `labeler` has not answered, highest priority first."""
        query = "SELECT items.* FROM items WHERE " + _WANTS_LABEL_FROM
        parameters = [labeler]
        if kind is not None:
            query += " AND items.kind = ?"
            parameters.append(kind)
        query += " ORDER BY items.priority DESC, items.id LIMIT ?"
        parameters.append(int(limit))
        return [_item(row) for row in self._connection.execute(query, parameters)]

    def item_count(self, source=None):
        """How many items the store holds (from `source`, when given)."""
        if source is None:
            return self._connection.execute("SELECT COUNT(*) FROM items").fetchone()[0]
        return self._connection.execute("SELECT COUNT(*) FROM items WHERE source = ?", (source,)).fetchone()[0]

    def lease_next(self, labeler, seconds=300.0, kind=None):
        """The next item for `labeler`, held for them for `seconds` so that labelers working at once are shown
        different items (an item held by someone else is offered only when nothing else is left, or once the hold
        expires). Returns None when nothing is left. A labeler who reloads gets the item they already hold."""
        now = time.time()
        kind_clause, kind_parameters = (" AND items.kind = ?", [kind]) if kind is not None else ("", [])
        # Own hold first, then free items, then items held by others; highest priority first within each. Three
        # queries, each stopping at its first row of the open-items index, not one ordering of every open item.
        own = (
            "SELECT items.* FROM leases JOIN items ON items.id = leases.item_id WHERE leases.labeler = ? AND"
            " leases.until > ? AND " + _WANTS_LABEL_FROM + kind_clause + " ORDER BY items.priority DESC, items.id"
        )
        free = (
            "SELECT items.* FROM items WHERE " + _WANTS_LABEL_FROM + kind_clause + " AND NOT EXISTS (SELECT 1 FROM"
            " leases WHERE leases.item_id = items.id AND leases.until > ?) ORDER BY items.priority DESC, items.id"
        )
        anyone = "SELECT items.* FROM items WHERE " + _WANTS_LABEL_FROM + kind_clause
        anyone += " ORDER BY items.priority DESC, items.id"
        with self._write() as cursor:
            row = None
            for query, parameters in (
                (own, [labeler, now, labeler, *kind_parameters]),
                (free, [labeler, *kind_parameters, now]),
                (anyone, [labeler, *kind_parameters]),
            ):
                row = cursor.execute(query + " LIMIT 1", parameters).fetchone()
                if row is not None:
                    break
            if row is None:
                return None
            cursor.execute(
                "INSERT INTO leases (item_id, labeler, until) VALUES (?, ?, ?) "
                "ON CONFLICT(item_id) DO UPDATE SET labeler = excluded.labeler, until = excluded.until",
                (row["id"], labeler, now + seconds),
            )
            return _item(row)

    def wait_for_labels(self, source, timeout, kind=None, poll_seconds=2.0, on_wait=None):
        """Waits until every item from `source` has the labels it wants (people answer through the labeling app)
        or `timeout` seconds pass, calling `on_wait(waiting)` at each poll while some wait. Returns how many still
        wait."""
        deadline = time.monotonic() + timeout
        while True:
            waiting = self.pending_count(source=source, kind=kind)
            if waiting == 0 or time.monotonic() >= deadline:
                return waiting
            if on_wait is not None:
                on_wait(waiting)
            time.sleep(min(poll_seconds, max(0.0, deadline - time.monotonic())))

    def pending_count(self, labeler=None, source=None, kind=None):
        """How many items still want labels (from `labeler`, when given: less those they answered), of `source`
        and `kind` when given. Without `source` and `kind` the total is the store's running count (kept by triggers
        as items and answers come and go); with them, a count of the open-items index."""
        clauses, parameters = [_OPEN], []
        for column, value in (("source", source), ("kind", kind)):
            if value is not None:
                clauses.append(f"items.{column} = ?")
                parameters.append(value)
        where = " AND ".join(clauses)
        if source is None and kind is None:  # the store's own count (schema.TRIGGERS), not a count of the index
            total = self._connection.execute("SELECT value FROM counters WHERE name = 'open_items'").fetchone()[0]
        else:
            total = self._connection.execute(f"SELECT COUNT(*) FROM items WHERE {where}", parameters).fetchone()[0]
        if not labeler:
            return total
        answered = self._connection.execute(
            f"SELECT COUNT(*) FROM labels JOIN items ON items.id = labels.item_id WHERE labels.labeler = ? AND {where}",
            [labeler, *parameters],
        ).fetchone()[0]
        return total - answered

    # Labels ------------------------------------------------------------------------------------------------------

    def add_label(self, item_id, labeler, choice, comment="", seconds=None):
        """Records one answer; returns the label id.

        Raises:
          ItemAlreadyLabeled: the item already has all the labels it wants (another labeler answered first).
          AlreadyAnswered: this labeler answered this item before.
          UserInputError: an unknown item, an empty labeler name or a choice that does not fit the item.
        """
        if not isinstance(labeler, str) or not labeler.strip():
            raise UserInputError(f"`labeler` must be a non-empty name. Received: labeler={labeler!r}")
        if not isinstance(comment, str):
            raise UserInputError(f"`comment` must be a string. Received: {type(comment).__name__}")
        with self._write() as cursor:
            row = cursor.execute(
                "SELECT kind, candidates, labels_wanted, labels_given FROM items WHERE id = ?", (item_id,)
            ).fetchone()
            if row is None:
                raise UserInputError(f"No item with that id in {self.path}. Received: item_id={item_id}")
            validate_choice(row["kind"], choice, len(json.loads(row["candidates"])))
            if "skip" not in choice and row["labels_given"] >= row["labels_wanted"]:
                raise ItemAlreadyLabeled(f"Item {item_id} already has the {row['labels_given']} label(s) it wants.")
            try:
                cursor.execute(
                    "INSERT INTO labels (item_id, labeler, choice, comment, seconds, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (item_id, labeler, json.dumps(choice, sort_keys=True), comment, seconds, time.time()),
                )
            except sqlite3.IntegrityError as error:
                raise AlreadyAnswered(f"{labeler} has already answered item {item_id}.") from error
            label_id = cursor.lastrowid
            if "skip" not in choice:
                cursor.execute("UPDATE items SET labels_given = labels_given + 1 WHERE id = ?", (item_id,))
            return label_id

    def count_labels(self, label_ids):
        """How many of `label_ids` the store still holds."""
        label_ids = [int(label_id) for label_id in label_ids]
        found = 0
        for start in range(0, len(label_ids), 500):
            chunk = label_ids[start : start + 500]
            query = f"SELECT COUNT(*) FROM labels WHERE id IN ({', '.join('?' * len(chunk))})"
            found += self._connection.execute(query, chunk).fetchone()[0]
        return found

    def undo_last(self, labeler):
        """Deletes `labeler`'s most recent label and returns it (None when there is none)."""
        with self._write() as cursor:
            row = cursor.execute(
                "SELECT * FROM labels WHERE labeler = ? ORDER BY id DESC LIMIT 1", (labeler,)
            ).fetchone()
            if row is None:
                return None
            cursor.execute("DELETE FROM labels WHERE id = ?", (row["id"],))
            if row["choice"] != _SKIP:
                cursor.execute("UPDATE items SET labels_given = labels_given - 1 WHERE id = ?", (row["item_id"],))
            return _label(row)

    # Labelers (people answering through the labeling app) ---------------------------------------------------------

    def server_secret(self):
        """The labeling app's signing secret (32 random bytes made on first use and kept in the store)."""
        with self._write() as cursor:
            row = cursor.execute("SELECT value FROM settings WHERE name = 'server_secret'").fetchone()
            if row is not None:
                return bytes(row["value"])
            secret = secrets.token_bytes(32)
            cursor.execute("INSERT INTO settings (name, value) VALUES ('server_secret', ?)", (secret,))
            return secret

    def guidelines(self):
        """The project's labeling guidelines (markdown; "" until set)."""
        row = self._connection.execute("SELECT value FROM settings WHERE name = 'guidelines'").fetchone()
        return bytes(row["value"]).decode("utf-8") if row is not None else ""

    def set_guidelines(self, markdown_text):
        """Sets the guidelines every labeling page shows (markdown)."""
        if not isinstance(markdown_text, str) or len(markdown_text) > 100_000:
            raise UserInputError("Guidelines are text of at most 100,000 characters.")
        with self._write() as cursor:
            cursor.execute(
                "INSERT INTO settings (name, value) VALUES ('guidelines', ?) "
                "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                (markdown_text.encode("utf-8"),),
            )

    def add_labeler(self, name, admin=False, days=None):
        """Creates a labeler and returns their access token (shown once; only its SHA-256 is stored), valid for
        `days` (None: until revoked).

        Raises UserInputError for an empty name or one that exists.
        """
        if not isinstance(name, str) or not name.strip() or len(name) > 64:
            raise UserInputError(f"A labeler name must be 1-64 characters. Received: {name!r}")
        token = secrets.token_urlsafe(24)
        try:
            with self._write() as cursor:
                cursor.execute(
                    "INSERT INTO labelers (name, token_sha256, admin, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                    (name.strip(), _token_hash(token), int(bool(admin)), time.time(), _expiry(days)),
                )
        except sqlite3.IntegrityError:
            raise UserInputError(f"A labeler of that name exists in {self.path}. Received: {name!r}") from None
        return token

    def rotate_token(self, name, days=None):
        """Gives labeler `name` a new token (returned, shown once) valid for `days` (None: until revoked); the old
        one stops working at once, and a revoked labeler is active again."""
        token = secrets.token_urlsafe(24)
        with self._write() as cursor:
            cursor.execute(
                "UPDATE labelers SET token_sha256 = ?, expires_at = ?, revoked_at = NULL WHERE name = ?",
                (_token_hash(token), _expiry(days), name),
            )
            if cursor.rowcount == 0:
                raise UserInputError(f"No labeler of that name in {self.path}. Received: {name!r}")
        return token

    def revoke_labeler(self, name):
        """Stops labeler `name`'s token from working (their next request is refused); their labels stay."""
        with self._write() as cursor:
            cursor.execute("UPDATE labelers SET revoked_at = ? WHERE name = ?", (time.time(), name))
            if cursor.rowcount == 0:
                raise UserInputError(f"No labeler of that name in {self.path}. Received: {name!r}")

    def labeler_for_token(self, token):
        """(name, is_admin, expires_at or None) of the labeler holding `token` when it is neither revoked nor
        expired, else None."""
        if not isinstance(token, str) or not token:
            return None
        row = self._connection.execute(
            "SELECT name, admin, expires_at FROM labelers WHERE token_sha256 = ? AND revoked_at IS NULL"
            " AND (expires_at IS NULL OR expires_at > ?)",
            (_token_hash(token), time.time()),
        ).fetchone()
        return None if row is None else (row["name"], bool(row["admin"]), row["expires_at"])

    def labeler_status(self):
        """[{"name", "admin", "created_at", "expires_at", "revoked_at"}] of every labeler, by name."""
        rows = self._connection.execute(
            "SELECT name, admin, created_at, expires_at, revoked_at FROM labelers ORDER BY name"
        )
        return [dict(row) for row in rows]

    def labelers(self):
        return [
            (row["name"], bool(row["admin"]))
            for row in self._connection.execute("SELECT name, admin FROM labelers ORDER BY name")
        ]

    def labels(self, item_id=None, labeler=None):
        query, parameters = "SELECT * FROM labels WHERE 1=1", []
        if item_id is not None:
            query += " AND item_id = ?"
            parameters.append(item_id)
        if labeler is not None:
            query += " AND labeler = ?"
            parameters.append(labeler)
        return [_label(row) for row in self._connection.execute(query + " ORDER BY id", parameters)]

    def counts(self):
        """{"items": n, "labels": n, "labels/<labeler>": n, ...}"""
        result = {
            "items": self._connection.execute("SELECT COUNT(*) FROM items").fetchone()[0],
            "labels": self._connection.execute("SELECT COUNT(*) FROM labels").fetchone()[0],
        }
        for row in self._connection.execute("SELECT labeler, COUNT(*) FROM labels GROUP BY labeler"):
            result[f"labels/{row[0]}"] = row[1]
        return result

    def labeled(self, kind=None, since_label_id=0):
        """(item, label) pairs for every non-skip label after `since_label_id`, in label order."""
        query = (
            "SELECT items.*, labels.id AS label_id, labels.labeler, labels.choice, labels.comment, labels.seconds,"
            " labels.created_at AS labeled_at FROM labels JOIN items ON items.id = labels.item_id"
            " WHERE labels.id > ? AND labels.choice != '{\"skip\": true}'"
        )
        parameters = [since_label_id]
        if kind is not None:
            query += " AND items.kind = ?"
            parameters.append(kind)
        pairs = []
        for row in self._connection.execute(query + " ORDER BY labels.id", parameters):
            label = Label(
                row["label_id"],
                row["id"],
                row["labeler"],
                json.loads(row["choice"]),
                row["comment"],
                row["seconds"],
                row["labeled_at"],
            )
            pairs.append((_item(row), label))
        return pairs

    # Export ------------------------------------------------------------------------------------------------------

    def export_records(self, kind=None):
        """Labels of text items as records: comparisons (ties kept as ties), rankings and ratings, each with the id
        "item<item id>-label<label id>" (`record_item_id` reads the item back)."""
        exported = []
        for item, label in self.labeled(kind):
            if item.kind in ("segment_comparison", "slate_comparison"):
                continue  # their runs read them back (`LabelingRound.answers`)
            identifier = f"item{item.id}-label{label.id}"
            ((key, value),) = label.choice.items()
            if item.kind == "comparison":
                first, second = item.candidates
                if key == "tie":
                    exported.append(records.Comparison(item.prompt, first, second, tie=True, id=identifier))
                else:
                    chosen, rejected = (first, second) if value == 0 else (second, first)
                    exported.append(records.Comparison(item.prompt, chosen, rejected, id=identifier))
            elif item.kind == "ranking":
                exported.append(records.Ranking(item.prompt, tuple(item.candidates[i] for i in value), id=identifier))
            elif item.kind == "rating":
                exported.append(records.Rating(item.prompt, item.candidates[0], float(value), id=identifier))
        return exported

    def export(self, output, kind="comparison", num_shards=1, compression=""):
        """Writes one kind of labels to `output.jsonl`, or to TFRecord shards with that prefix; returns the count."""

        exported = self.export_records(kind)
        if os.fspath(output).endswith(".jsonl"):
            return reader.write_jsonl(output, exported)
        return tfrecord.write_tfrecords(exported, output, num_shards, compression)[1]


def _expiry(days):
    if days is None:
        return None
    if not days > 0:
        raise UserInputError(f"A token lasts a positive number of days. Received: days={days}")
    return time.time() + 86400.0 * days


def _token_hash(token):
    # Tokens are 192 random bits, so a plain SHA-256 is enough: nothing to guess, nothing to brute-force.
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _item(row):
    return Item(
        kind=row["kind"],
        candidates=tuple(json.loads(row["candidates"])),
        prompt=row["prompt"],
        source=row["source"],
        metadata=json.loads(row["metadata"]),
        priority=row["priority"],
        labels_wanted=row["labels_wanted"],
        id=row["id"],
    )


def _label(row):
    return Label(
        row["id"],
        row["item_id"],
        row["labeler"],
        json.loads(row["choice"]),
        row["comment"],
        row["seconds"],
        row["created_at"],
    )
