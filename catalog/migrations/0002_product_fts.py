"""Full-text index over products, maintained by the database for every write path.

SQLite: an FTS5 table (BM25) kept in sync by triggers. An external-content table: the text lives once, in catalog_product; the triggers keep the index
current for every write path (ORM, bulk pipeline upserts, admin, raw SQL). Porter stemming makes
"pillows" find "pillow"; remove_diacritics makes "creme" find "crème".

PostgreSQL: a generated tsvector column (`search_vector`, weights A-D for title, brand,
category + tags, description) with a GIN index, and a `meepo` text search configuration that
folds accents (unaccent) and stems English words without a stopword list, as FTS5 does here.
search.keyword.sqlite and search.keyword.postgres query them with the same contract.
"""

from django.db import migrations

from catalog.migrations._vendor import VendorRunSQL

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

POSTGRES_WORD_TOKENS = "asciiword, word, hword, hword_part, hword_asciipart, asciihword"
POSTGRES_FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS unaccent",
    "CREATE TEXT SEARCH DICTIONARY meepo_stem (TEMPLATE = snowball, LANGUAGE = english)",
    "CREATE TEXT SEARCH CONFIGURATION meepo (COPY = simple)",
    f"ALTER TEXT SEARCH CONFIGURATION meepo ALTER MAPPING FOR {POSTGRES_WORD_TOKENS} "
    "WITH unaccent, meepo_stem",
    """ALTER TABLE catalog_product ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('meepo'::regconfig, coalesce(title, '')), 'A')
        || setweight(to_tsvector('meepo'::regconfig, coalesce(brand, '')), 'B')
        || setweight(to_tsvector('meepo'::regconfig,
                coalesce(category, '') || ' ' || coalesce(tags::text, '')), 'C')
        || setweight(to_tsvector('meepo'::regconfig, coalesce(description, '')), 'D')
    ) STORED""",
    "CREATE INDEX catalog_product_search_gin ON catalog_product USING GIN (search_vector)",
]
POSTGRES_BACKWARD = [
    "DROP INDEX IF EXISTS catalog_product_search_gin",
    "ALTER TABLE catalog_product DROP COLUMN IF EXISTS search_vector",
    "DROP TEXT SEARCH CONFIGURATION IF EXISTS meepo",
    "DROP TEXT SEARCH DICTIONARY IF EXISTS meepo_stem",
]


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]

    operations = [
        VendorRunSQL("sqlite", sql=FORWARD, reverse_sql=BACKWARD),
        VendorRunSQL("postgresql", sql=POSTGRES_FORWARD, reverse_sql=POSTGRES_BACKWARD),
    ]
