"""The feedback store's SQLite schema. Version 2 added `attachments` (what people need to see a candidate: a
control segment's observations); a version-1 store gains the table when opened.
"""

SCHEMA_VERSION = 2
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
    created_at REAL NOT NULL
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
CREATE TABLE IF NOT EXISTS labelers (
    name TEXT PRIMARY KEY,
    token_sha256 TEXT NOT NULL UNIQUE,
    admin INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
"""
