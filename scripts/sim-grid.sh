#!/usr/bin/env bash
# The simulator grid of issue 10: N in {100, 1000, 10000} x {no faults,
# 10% churn + 5% loss} x profiles {default, fabric}, 20 blocks of 10 KiB at
# 5 blocks/s, seed 1, each profile in its own process (so that its wall
# time, CPU and peak RSS are its own). Prints the markdown tables of the
# sim README and writes sim-grid.json ({"runs": [...]}, deterministic) in
# the current directory (override with OUT=prefix). Extra arguments go to
# every `blockgossip sim` call.
set -euo pipefail
out="${OUT:-$PWD/sim-grid}"
cd "$(dirname "$0")/.."
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/blockgossip" ./cmd/blockgossip
host="$tmp/host.tsv"
for n in 100 1000 10000; do
	for faults in none churn; do
		args=()
		[ "$faults" = churn ] && args=(--churn 0.1 --loss 0.05)
		for p in default fabric; do
			j="$tmp/$n-$faults-$p.json"
			"$tmp/blockgossip" sim --peers "$n" --blocks 20 --seed 1 --profile "$p" "${args[@]}" --json "$j" "$@" \
				>/dev/null 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
			# "sim default: host: 51.9 s wall, 35.0 s CPU, peak RSS 1546 MiB (...)"
			sed -n 's/^sim \([a-z]*\): host: \([0-9.]*\) s wall, \([0-9.]*\) s CPU, peak RSS \([0-9]*\) MiB.*/\1\t\2\t\3\t\4/p' "$tmp/err" |
				sed "s/^/$n\t$faults\t/" >>"$host"
			echo "done: $n peers, faults $faults, profile $p" >&2
		done
	done
done
jq -s '{runs: [.[].runs[]]}' "$tmp"/100-none-*.json "$tmp"/100-churn-*.json "$tmp"/1000-none-*.json \
	"$tmp"/1000-churn-*.json "$tmp"/10000-none-*.json "$tmp"/10000-churn-*.json >"$out.json"

echo "| N | churn / loss | profile | delivery | time to last p50 / p99 (ms) | hops p50 / p99 | log_f N / log3 N | push coverage (theory) | msgs / peer / block | KiB / peer / block | amplification |"
echo "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
jq -r '.runs[] | "| \(.peers) | \(.churn) / \(.loss) | \(.profile)\(if .theory.push_once_coverage == null then " (tree)" else "" end) | \(.delivery_ratio * 10000 | round / 10000) | \(.time_to_last_ms.p50 * 10 | round / 10) / \(.time_to_last_ms.p99 * 10 | round / 10) | \(.hops_to_last.p50) / \(.hops_to_last.p99) | \(.theory.hops_log_fanout * 10 | round / 10) / \(.theory.push_pull_rounds * 10 | round / 10) | \(.push_coverage * 1000 | round / 1000) (\(.theory.push_once_coverage | if . == null then "-" else (. * 1000 | round / 1000 | tostring) end)) | \(.messages_per_peer_per_block * 10 | round / 10) | \(.bytes_per_peer_per_block / 1024 * 10 | round / 10) | \(.amplification * 100 | round / 100) |"' "$out.json"
echo
echo "| N | faults | profile | wall s | CPU s | peak RSS MiB |"
echo "|---:|---|---|---:|---:|---:|"
awk -F'\t' '{printf "| %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6}' "$host"
