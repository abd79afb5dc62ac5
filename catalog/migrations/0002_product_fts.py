"""Full-text index over products (SQLite FTS5, BM25), kept in sync by triggers.

An external-content table: the text lives once, in catalog_product; the triggers keep the index
current for every write path (ORM, bulk pipeline upserts, admin, raw SQL). Porter stemming makes
"pillows" find "pillow"; remove_diacritics makes "creme" find "crème".
"""

from django.db import migrations

COLUMNS = "title, brand, category, tags, description"
NEW = "new.title, new.brand, new.category, new.tags, new.description"
OLD = "old.title, old.brand, old.category, old.tags, old.description"

FORWARD = [
    f"""CREATE VIRTUAL TABLE catalog_product_fts USING fts5(
        {COLUMNS}, content='catalog_product', content_rowid='id',
        tokenize='porter unicode61 remove_diacritics 2')""",
    f"""CREATE TRIGGER catalog_product_fts_ai AFTER INSERT ON catalog_product BEGIN
        INSERT INTO catalog_product_fts(rowid, {COLUMNS}) VALUES (new.id, {NEW});
    END""",
    f"""CREATE TRIGGER catalog_product_fts_ad AFTER DELETE ON catalog_product BEGIN
        INSERT INTO catalog_product_fts(catalog_product_fts, rowid, {COLUMNS})
        VALUES ('delete', old.id, {OLD});
    END""",
    f"""CREATE TRIGGER catalog_product_fts_au AFTER UPDATE OF {COLUMNS} ON catalog_product BEGIN
        INSERT INTO catalog_product_fts(catalog_product_fts, rowid, {COLUMNS})
        VALUES ('delete', old.id, {OLD});
        INSERT INTO catalog_product_fts(rowid, {COLUMNS}) VALUES (new.id, {NEW});
    END""",
    "INSERT INTO catalog_product_fts(catalog_product_fts) VALUES ('rebuild')",
]
BACKWARD = [
    "DROP TRIGGER IF EXISTS catalog_product_fts_au",
    "DROP TRIGGER IF EXISTS catalog_product_fts_ad",
    "DROP TRIGGER IF EXISTS catalog_product_fts_ai",
    "DROP TABLE IF EXISTS catalog_product_fts",
]


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]

    operations = [migrations.RunSQL(sql=FORWARD, reverse_sql=BACKWARD)]
