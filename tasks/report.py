#!/usr/bin/env python3
"""report.py DATE DB: a one-page summary of a day's orders."""
import os, sqlite3, sys

date, db = sys.argv[1], sys.argv[2]
con = sqlite3.connect(db)
n, total = con.execute("SELECT COUNT(*), COALESCE(SUM(amount_cents), 0) FROM orders WHERE day = ?", (date,)).fetchone()
top = con.execute("""SELECT customer, SUM(amount_cents) s FROM orders WHERE day = ?
                     GROUP BY customer ORDER BY s DESC LIMIT 3""", (date,)).fetchall()
out = f"data/{date}/report.txt"
with open(out + ".tmp", "w") as f:
    f.write(f"orders on {date}: {n}, revenue {total / 100:.2f}\n")
    for name, s in top:
        f.write(f"  top customer {name}: {s / 100:.2f}\n")
os.replace(out + ".tmp", out)
print(open(out).read(), end="")
