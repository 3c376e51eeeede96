#!/usr/bin/env python3
"""load.py --date DATE --db PATH: load a day's shards into the SQLite warehouse, replacing
that day's rows in one transaction (so a rerun never duplicates them)."""
import argparse, csv, glob, os, sqlite3

ap = argparse.ArgumentParser()
ap.add_argument("--date", required=True)
ap.add_argument("--db", required=True)
a = ap.parse_args()
batch = int(os.environ.get("BATCH_SIZE", "1000"))
os.makedirs(os.path.dirname(a.db) or ".", exist_ok=True)
con = sqlite3.connect(a.db)
con.execute("""CREATE TABLE IF NOT EXISTS orders (
    day TEXT, order_id INTEGER, customer_id INTEGER, customer TEXT, amount_cents INTEGER, region TEXT,
    PRIMARY KEY (day, order_id))""")
rows = 0
with con:
    con.execute("DELETE FROM orders WHERE day = ?", (a.date,))
    for path in sorted(glob.glob(f"data/{a.date}/shards/*.csv")):
        with open(path, newline="") as f:
            chunk = []
            for r in csv.reader(f):
                chunk.append((a.date, int(r[0]), int(r[1]), r[2], int(r[3]), r[4]))
                if len(chunk) >= batch:
                    con.executemany("INSERT INTO orders VALUES (?,?,?,?,?,?)", chunk)
                    rows += len(chunk); chunk = []
            con.executemany("INSERT INTO orders VALUES (?,?,?,?,?,?)", chunk)
            rows += len(chunk)
print(f"loaded {rows} orders for {a.date} into {a.db}")
# What plumb keeps and compares with earlier nights (pipelines/nightly_etl.toml, expect.rows).
metrics = os.environ.get("PLUMB_METRICS")
if metrics:
    with open(metrics, "a") as m:
        print(f"rows {rows}", file=m)
