#!/usr/bin/env python3
"""verify_counts.py DATE DB: the warehouse must hold exactly as many orders for DATE as the raw
extract has rows. Exit 1 (and say why) otherwise."""
import sqlite3, sys

date, db = sys.argv[1], sys.argv[2]
with open(f"data/{date}/raw/orders.csv") as f:
    expected = sum(1 for _ in f) - 1
(loaded,) = sqlite3.connect(db).execute("SELECT COUNT(*) FROM orders WHERE day = ?", (date,)).fetchone()
if loaded != expected:
    print(f"row count mismatch for {date}: extract has {expected}, warehouse has {loaded}", file=sys.stderr)
    sys.exit(1)
print(f"verified {loaded} orders for {date}")
