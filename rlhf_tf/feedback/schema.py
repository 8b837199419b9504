"""The feedback store's SQLite schema. Version 2 added `attachments` (what people need to see a candidate: a
control segment's observations); version 3 added `items.labels_given` (the item's answers that are not skips, kept
by the store as labels come and go) and `items_open`, an index of the items that still want labels, so that the next
item and the counts the labeling app shows cost the same with 50 items pending or 50,000, `settings` (the
labeling app's signing secret, so that open pages survive a server restart) and labelers' token expiry and
revocation. An older store gains what
it lacks when opened (`ADDED_COLUMNS`; new tables and indexes come from SCHEMA's IF NOT EXISTS).
"""

SCHEMA_VERSION = 3
SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    prompt TEXT NOT NULL DEFAULT '',
    candidates TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT '',
    metadata TEXT NOT NULL DEFAULT '{}',
    priority REAL NOT NULL DEFAULT 0,
    labels_wanted INTEGER NOT NULL DEFAULT 1,
    created_at REAL NOT NULL,
    labels_given INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS labels (
    id INTEGER PRIMARY KEY,
    item_id INTEGER NOT NULL REFERENCES items(id),
    labeler TEXT NOT NULL,
    choice TEXT NOT NULL,
    comment TEXT NOT NULL DEFAULT '',
    seconds REAL,
    created_at REAL NOT NULL,
    UNIQUE (item_id, labeler)
);
CREATE INDEX IF NOT EXISTS labels_by_item ON labels (item_id);
CREATE INDEX IF NOT EXISTS labels_by_labeler ON labels (labeler, id);
CREATE INDEX IF NOT EXISTS items_by_priority ON items (priority DESC, id);
CREATE INDEX IF NOT EXISTS items_open ON items (priority DESC, id) WHERE labels_given < labels_wanted;
CREATE INDEX IF NOT EXISTS items_open_by_source ON items (source, kind) WHERE labels_given < labels_wanted;
CREATE TABLE IF NOT EXISTS leases (
    item_id INTEGER PRIMARY KEY REFERENCES items(id),
    labeler TEXT NOT NULL,
    until REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS attachments (
    item_id INTEGER NOT NULL REFERENCES items(id),
    position INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (item_id, position)
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS labelers (
    name TEXT PRIMARY KEY,
    token_sha256 TEXT NOT NULL UNIQUE,
    admin INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    expires_at REAL,
    revoked_at REAL
);
"""

# Columns added after a table first shipped: (table, column, definition, backfill statement or None). A store
# missing one gains it when opened (the backfill runs once, right after).
ADDED_COLUMNS = (
    (
        "items",
        "labels_given",
        "INTEGER NOT NULL DEFAULT 0",
        "UPDATE items SET labels_given = (SELECT COUNT(*) FROM labels WHERE labels.item_id = items.id"
        " AND labels.choice != '{\"skip\": true}')",
    ),
    ("labelers", "expires_at", "REAL", None),
    ("labelers", "revoked_at", "REAL", None),
)

# The number of items that still want labels, kept by the database itself as items come and their answers go (a
# page shows it; counting the open-items index costs a few milliseconds per page at 50,000 items). Each statement
# is executed on its own (they contain semicolons), after SCHEMA.
TRIGGERS = (
    "CREATE TRIGGER IF NOT EXISTS open_items_insert AFTER INSERT ON items"
    " WHEN NEW.labels_given < NEW.labels_wanted"
    " BEGIN UPDATE counters SET value = value + 1 WHERE name = 'open_items'; END",
    "CREATE TRIGGER IF NOT EXISTS open_items_update AFTER UPDATE OF labels_given, labels_wanted ON items"
    " BEGIN UPDATE counters SET value = value + (NEW.labels_given < NEW.labels_wanted)"
    " - (OLD.labels_given < OLD.labels_wanted) WHERE name = 'open_items'; END",
    "CREATE TRIGGER IF NOT EXISTS open_items_delete AFTER DELETE ON items"
    " WHEN OLD.labels_given < OLD.labels_wanted"
    " BEGIN UPDATE counters SET value = value - 1 WHERE name = 'open_items'; END",
    "INSERT OR IGNORE INTO counters (name, value) VALUES ('open_items',"
    " (SELECT COUNT(*) FROM items WHERE labels_given < labels_wanted))",
)
