#!/bin/sh
# transform.sh SHARD SHARDS DATE: the orders of one shard (order_id mod SHARDS), joined with
# customer names.
set -eu
shard=$1 shards=$2 date=$3
raw="data/$date/raw"
out="data/$date/shards/$shard.csv"
mkdir -p "$(dirname "$out")"
tmp="$out.tmp.$$"
awk -F, -v shard="$shard" -v shards="$shards" '
  FNR == 1 { next }
  FILENAME ~ /customers/ { name[$1] = $2; next }
  ($1 % shards) == shard { printf "%s,%s,%s,%s,%s\n", $1, $2, name[$2], $3, $4 }
' "$raw/customers.csv" "$raw/orders.csv" > "$tmp"
mv "$tmp" "$out"
echo "shard $shard: $(wc -l < "$out") orders"
