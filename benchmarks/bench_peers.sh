#!/usr/bin/env bash
# Peers side by side on one generated log: psad and fwlogwatch (Debian packages), a naive Python
# regex loop, nfkit's full parser (`nfkit summarize`) and nfkit's fast engine.
#
#   benchmarks/bench_peers.sh [LINES]        (default 1000000; psad gets PSAD_LINES=100000)
#
# The peers are installed with apt-get when missing and this runs as root:
#   apt-get install -y --no-install-recommends psad fwlogwatch
# In a container without a mail transfer agent, psad's and exim4's post-install scripts may fail
# ("dpkg returned an error code"); the programs are unpacked anyway. psad then lacks
# /etc/psad/psad.conf: this script runs it on a private copy of the unpacked *.dpkg-new files.
# psad is slow (~3,000 lines/s) and fwlogwatch quadratic in distinct sources: they get fewer
# lines (PSAD_LINES, FWLOGWATCH_LINES); every figure is lines per second of wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
LINES=${1:-1000000}
PSAD_LINES=${PSAD_LINES:-100000}
FWLOGWATCH_LINES=${FWLOGWATCH_LINES:-100000}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

python3 benchmarks/genlog.py -n "$LINES" --seed 1 --sources 5000 -o "$WORK/kern.log"
head -n "$PSAD_LINES" "$WORK/kern.log" > "$WORK/psad.log"
head -n "$FWLOGWATCH_LINES" "$WORK/kern.log" > "$WORK/fwlogwatch.log"

if ! command -v fwlogwatch > /dev/null || ! command -v psad > /dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            psad fwlogwatch > "$WORK/apt.log" 2>&1 || echo "apt-get: see errors above; continuing"
    else
        echo "psad/fwlogwatch missing: sudo apt-get install psad fwlogwatch"
    fi
fi

# timed LABEL LINES COMMAND...: print lines/s of wall time
timed() {
    local label=$1 lines=$2
    shift 2
    local start end
    start=$(date +%s.%N)
    local status=0
    "$@" > "$WORK/out.txt" 2>&1 || status=$?
    if [ "$status" != 0 ]; then
        echo "$label: failed (exit $status); last output:"
        tail -3 "$WORK/out.txt"
        return 0
    fi
    end=$(date +%s.%N)
    python3 -c "import sys; s=$end-$start; print(f'{sys.argv[1]:34} {$lines/s:>12,.0f} lines/s' \
        f'  ({s:.1f} s for {$lines:,} lines)')" "$label"
}

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
if command -v psad > /dev/null; then
    PSAD_CONF=/etc/psad/psad.conf
    if [ ! -e "$PSAD_CONF" ] && [ -e /etc/psad/psad.conf.dpkg-new ]; then
        mkdir -p "$WORK/psad"
        for file in /etc/psad/*.dpkg-new; do
            cp "$file" "$WORK/psad/$(basename "$file" .dpkg-new)"
        done
        sed -i "s|/etc/psad|$WORK/psad|g; s|/var/log/psad|$WORK/psad/log|g; \
            s|/var/lib/psad|$WORK/psad/lib|g; s|/var/run/psad|$WORK/psad/run|g; \
            s#^\(mailCmd\|sendmailCmd\)\( *\).*#\1\2/bin/true;#" "$WORK/psad/psad.conf"
        mkdir -p "$WORK/psad/log" "$WORK/psad/lib" "$WORK/psad/run"
        PSAD_CONF=$WORK/psad/psad.conf
    fi
    timed "psad -A (analyze)" "$PSAD_LINES" \
        psad -c "$PSAD_CONF" -A -m "$WORK/psad.log" --no-whois --no-rdns
fi
if command -v fwlogwatch > /dev/null; then
    timed "fwlogwatch" "$FWLOGWATCH_LINES" fwlogwatch -o "$WORK/fw.txt" "$WORK/fwlogwatch.log"
fi
timed "naive Python regex loop" "$LINES" python3 -c '
import re, sys, collections
pattern = re.compile(r"([A-Z]+)=(\S*)")
counts = collections.Counter()
with open(sys.argv[1], encoding="utf-8") as handle:
    for line in handle:
        fields = dict(pattern.findall(line))
        counts[fields.get("SRC"), fields.get("DPT")] += 1
' "$WORK/kern.log"
# --state makes nfkit read incrementally, through the full parser (one core)
timed "nfkit summarize --state (full parser)" "$LINES" \
    python3 -m nfkit summarize --no-discover --state "$WORK/state.json" --format json \
    -o "$WORK/full.json" "$WORK/kern.log"
timed "nfkit summarize (fast engine, $(nproc) jobs)" "$LINES" \
    python3 -m nfkit summarize --no-discover --format json -o "$WORK/fast.json" "$WORK/kern.log"
cmp -s "$WORK/full.json" "$WORK/fast.json" && echo "full and fast JSON reports are identical" \
    || echo "full and fast reports differ (generated times? compare with jq)"
