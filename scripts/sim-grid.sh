#!/usr/bin/env bash
# The simulator grid of issues 10 and 11: N in {100, 1000, 10000} x {no
# faults, 10% churn + 5% loss} x profiles {default, fabric}, 20 blocks of
# 10 KiB at 5 blocks/s, seed 1, each profile in its own process (so that
# its wall time, CPU and peak RSS are its own). Prints the markdown tables
# of the sim README (the third one: issue 11's churn measures, each churn
# row's live p99 over the p99 of the healthy row of the same N and profile)
# and writes sim-grid.json ({"runs": [...]}, deterministic) in the current
# directory (override with OUT=prefix). Extra arguments go to every
# `blockgossip sim` call. NS="100 1000" and FAULTS="none churn loss crash"
# change the grid (loss: 5% loss only; crash: 10% churn only).
set -euo pipefail
out="${OUT:-$PWD/sim-grid}"
cd "$(dirname "$0")/.."
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/blockgossip" ./cmd/blockgossip
host="$tmp/host.tsv"
for n in ${NS:-100 1000 10000}; do
	for faults in ${FAULTS:-none churn}; do
		case "$faults" in
		none) args=() ;;
		churn) args=(--churn 0.1 --loss 0.05) ;;
		loss) args=(--loss 0.05) ;;
		crash) args=(--churn 0.1) ;;
		*) echo "FAULTS: unknown $faults (none, churn, loss, crash)" >&2 && exit 2 ;;
		esac
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
files=()
for n in ${NS:-100 1000 10000}; do
	for faults in ${FAULTS:-none churn}; do
		files+=("$tmp/$n-$faults-default.json" "$tmp/$n-$faults-fabric.json")
	done
done
jq -s '{runs: [.[].runs[]]}' "${files[@]}" >"$out.json"

echo "| N | churn / loss | profile | delivery | time to last p50 / p99 (ms) | hops p50 / p99 | log_f N / log3 N | push coverage (theory) | msgs / peer / block | KiB / peer / block | amplification |"
echo "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
jq -r '.runs[] | "| \(.peers) | \(.churn) / \(.loss) | \(.profile)\(if .theory.push_once_coverage == null then " (tree)" else "" end) | \(.delivery_ratio * 10000 | round / 10000) | \(.time_to_last_ms.p50 * 10 | round / 10) / \(.time_to_last_ms.p99 * 10 | round / 10) | \(.hops_to_last.p50) / \(.hops_to_last.p99) | \(.theory.hops_log_fanout * 10 | round / 10) / \(.theory.push_pull_rounds * 10 | round / 10) | \(.push_coverage * 1000 | round / 1000) (\(.theory.push_once_coverage | if . == null then "-" else (. * 1000 | round / 1000 | tostring) end)) | \(.messages_per_peer_per_block * 10 | round / 10) | \(.bytes_per_peer_per_block / 1024 * 10 | round / 10) | \(.amplification * 100 | round / 100) |"' "$out.json"
echo
echo "| N | churn / loss | profile | to last peer p99 (ms) | to last live peer p50 / p99 (ms) | live p99 / healthy p99 | without catching-up peers p99 (ms) | catch-up p50 / p99 / max (ms) | restarts | pairs left out |"
echo "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|"
jq -r '.runs as $all | .runs[] | . as $r
	| ([$all[] | select(.peers == $r.peers and .profile == $r.profile and .churn == 0 and .loss == 0)][0].time_to_last_ms.p99) as $h
	| "| \(.peers) | \(.churn) / \(.loss) | \(.profile) | \(.time_to_last_ms.p99 * 10 | round / 10) | \(.time_to_last_live_ms.p50 * 10 | round / 10) / \(.time_to_last_live_ms.p99 * 10 | round / 10) | \(if $h == null or $h == 0 then "-" else (.time_to_last_live_ms.p99 / $h * 100 | round / 100 | tostring) end) | \(.time_to_last_steady_ms.p99 * 10 | round / 10) | \(if .catch_up_restarts == 0 then "-" else "\(.catch_up_ms.p50 | round) / \(.catch_up_ms.p99 | round) / \(.catch_up_ms.max | round)" end) | \(.catch_up_restarts) | \(.live_excluded_pairs) |"' "$out.json"
echo
echo "| N | faults | profile | wall s | CPU s | peak RSS MiB |"
echo "|---:|---|---|---:|---:|---:|"
awk -F'\t' '{printf "| %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6}' "$host"
