#!/bin/sh
# extract.sh TABLE DATE REGION: write a day's synthetic extract of TABLE as CSV.
# The rows are derived from the date, so reruns produce the same data.
set -eu
table=$1 date=$2 region=$3
out="data/$date/raw/$table.csv"
mkdir -p "$(dirname "$out")"
seed=$(printf '%s' "$date" | tr -d '-')
tmp="$out.tmp.$$"
case "$table" in
  orders)
    echo "order_id,customer_id,amount_cents,region" > "$tmp"
    awk -v seed="$seed" -v region="$region" 'BEGIN {
      srand(seed); n = 200 + int(rand() * 100)
      for (i = 1; i <= n; i++) printf "%d,%d,%d,%s\n", i, 1 + int(rand() * 50), 100 + int(rand() * 9900), region
    }' >> "$tmp" ;;
  customers)
    echo "customer_id,name" > "$tmp"
    awk 'BEGIN { for (i = 1; i <= 50; i++) printf "%d,customer-%02d\n", i, i }' >> "$tmp" ;;
  *) echo "extract.sh: unknown table $table" >&2; exit 2 ;;
esac
mv "$tmp" "$out"
echo "extracted $(($(wc -l < "$out") - 1)) $table rows for $date ($region)"
