#!/usr/bin/env bash
# bench.sh — build a VXLAN lab, capture >= BENCH_PACKETS packets of tunnelled
# TCP + DNS + ICMP on the underlay, and time tcpdump, tshark and vpndiag on
# the same file in the same run.
#
# Usage (root, from anywhere):
#   testdata/lab/bench.sh
# Environment:
#   BENCH_PACKETS  packets to capture on the underlay   (default 1000000)
#   BENCH_SIZE_MB  also time a copy concatenated with mergecap -a up to this
#                  size, for the memory test (default 0 = skip; e.g. 2048)
#   BENCH_RUNS     runs per tool, the median wall time is reported (default 3)
#   BENCH_DIR      work directory (default: a new /tmp/vpndiag-bench.XXXXXX)
#   BENCH_KEEP     1 = keep the captures in BENCH_DIR (default: delete them)
#   BENCH_FILE     skip the lab and time this existing capture instead
#   VPNDIAG        vpndiag binary (default: go build -o BENCH_DIR/vpndiag ./cmd/vpndiag)
# Needs: iproute2 nftables ethtool tcpdump tshark (mergecap, capinfos) iperf3
#        dnsmasq-base iputils-ping time, and Go to build labtool and vpndiag.
set -euo pipefail

PACKETS=${BENCH_PACKETS:-1000000}
SIZE_MB=${BENCH_SIZE_MB:-0}
RUNS=${BENCH_RUNS:-3}
KEEP=${BENCH_KEEP:-0}
CAPTURE_TIMEOUT=${BENCH_CAPTURE_TIMEOUT:-300} # seconds, bounds the capture phase

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

die() { echo "bench.sh: $*" >&2; exit 2; }
log() { echo "bench.sh: $*" >&2; }

[ "$(id -u)" = 0 ] || die "must run as root (network namespaces)"
need() { command -v "$1" >/dev/null 2>&1 || die "missing $1 (apt-get install $2)"; }
need ip iproute2; need nft nftables; need ethtool ethtool; need tcpdump tcpdump
need tshark tshark; need mergecap wireshark-common; need capinfos wireshark-common
need iperf3 iperf3; need dnsmasq dnsmasq-base; need ping iputils-ping; need go golang
[ -x /usr/bin/time ] || die "missing /usr/bin/time (apt-get install time)"

if [ -n "${BENCH_DIR:-}" ]; then
	WORK=$BENCH_DIR
	mkdir -p "$WORK"
else
	WORK=$(mktemp -d /tmp/vpndiag-bench.XXXXXX)
fi

pids=()    # background processes this script started, killed on exit
created=() # captures this script wrote, deleted on exit unless BENCH_KEEP=1
labpid=""
cleanup() {
	local rc=$?
	set +e
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	if [ -n "$labpid" ]; then
		kill -TERM "$labpid" 2>/dev/null # labtool lab takes the namespaces down
		for _ in $(seq 1 100); do kill -0 "$labpid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$labpid" 2>/dev/null
	fi
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
	if [ "$KEEP" != 1 ]; then
		for f in "${created[@]}"; do rm -f "$f"; done
		[ -n "${BENCH_DIR:-}" ] || rm -rf "$WORK"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for FILE TEXT SECONDS: wait until FILE contains TEXT.
wait_for() {
	local i
	for i in $(seq 1 $(($3 * 20))); do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	die "timed out waiting for '$2' in $1: $(tail -5 "$1" 2>/dev/null)"
}

if [ -z "${VPNDIAG:-}" ]; then
	log "building vpndiag"
	(cd "$root" && CGO_ENABLED=0 go build -o "$WORK/vpndiag" ./cmd/vpndiag)
	VPNDIAG=$WORK/vpndiag
fi
[ -x "$VPNDIAG" ] || die "VPNDIAG=$VPNDIAG is not executable"

capture_lab() {
	local file=$1
	log "building labtool"
	(cd "$here" && CGO_ENABLED=0 go build -o "$WORK/labtool" ./labtool)
	cat >"$WORK/bench.topo" <<-'EOF'
		# bench: VXLAN (VNI 42) between a and b over one underlay veth
		host a
		host b
		link a:eth0=198.18.1.1/24 b:eth0=198.18.1.2/24
		vxlan a:vx0 vni 42 local 198.18.1.1 remote 198.18.1.2 dstport 4789 addr 198.18.100.1/24 mtu 1450
		vxlan b:vx0 vni 42 local 198.18.1.2 remote 198.18.1.1 dstport 4789 addr 198.18.100.2/24 mtu 1450
	EOF
	"$WORK/labtool" lab -f "$WORK/bench.topo" -duration 30m >"$WORK/lab.out" 2>&1 &
	labpid=$!
	wait_for "$WORK/lab.out" '^ready' 120
	local nsa nsb
	nsa=$(awk '$1=="a"{print $2}' "$WORK/lab.out")
	nsb=$(awk '$1=="b"{print $2}' "$WORK/lab.out")
	log "lab up: a=$nsa b=$nsb"

	ip netns exec "$nsb" iperf3 -s -B 198.18.100.2 -p 5201 --forceflush >"$WORK/iperf-s.log" 2>&1 &
	pids+=($!)
	ip netns exec "$nsb" dnsmasq --no-daemon --no-resolv --no-hosts --address=/lab.test/198.18.9.9 \
		--listen-address=198.18.100.2 --bind-interfaces --pid-file= --log-facility=- \
		--user=root --group=root >"$WORK/dnsmasq.log" 2>&1 &
	pids+=($!)
	wait_for "$WORK/dnsmasq.log" 'started, version' 30
	wait_for "$WORK/iperf-s.log" 'Server listening' 30

	ip netns exec "$nsa" tcpdump -i eth0 -w "$file" -c "$PACKETS" -B 65536 -n -Z root >"$WORK/tcpdump.log" 2>&1 &
	local tdpid=$!
	pids+=($tdpid)
	wait_for "$WORK/tcpdump.log" 'listening on' 30

	log "sending: iperf3 (MSS 88, 64-byte writes) + DNS + ping through the tunnel"
	ip netns exec "$nsa" iperf3 -c 198.18.100.2 -p 5201 -t "$CAPTURE_TIMEOUT" -M 88 -l 64 -N >"$WORK/iperf-c.log" 2>&1 &
	pids+=($!)
	ip netns exec "$nsa" "$WORK/labtool" dns -to 198.18.100.2:53 -count 200000 -rate 1000 \
		-name bench.lab.test -duration "${CAPTURE_TIMEOUT}s" >"$WORK/dns.log" 2>&1 &
	pids+=($!)
	ip netns exec "$nsa" ping -q -i 0.002 -w "$CAPTURE_TIMEOUT" 198.18.100.2 >"$WORK/ping.log" 2>&1 &
	pids+=($!)

	local waited=0
	while kill -0 "$tdpid" 2>/dev/null; do
		[ "$waited" -lt $((CAPTURE_TIMEOUT * 10)) ] || { kill -INT "$tdpid"; log "capture timed out after ${CAPTURE_TIMEOUT}s"; break; }
		sleep 0.1
		waited=$((waited + 1))
	done
	wait "$tdpid" || true
	cat "$WORK/tcpdump.log" >&2
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	kill -TERM "$labpid" 2>/dev/null || true
	wait "$labpid" 2>/dev/null || true
	labpid=""
	pids=()
}

if [ -n "${BENCH_FILE:-}" ]; then
	FILE=$BENCH_FILE
	[ -r "$FILE" ] || die "BENCH_FILE=$FILE is not readable"
else
	FILE=$WORK/bench.pcap
	created+=("$FILE")
	capture_lab "$FILE"
fi
npk=$(capinfos -M -c -T "$FILE" | awk -F'\t' 'NR==2{print $2}')
log "capture: $FILE, $npk packets, $(du -h "$FILE" | cut -f1)"

median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }

# timeit NAME CMD...: run RUNS times, set T_NAME (median wall s), C_NAME
# (median CPU s, user + system) and M_NAME (max KiB).
declare -A T C M
timeit() {
	local name=$1
	shift
	local times=() cpus=() mems=() i rc t0 t1
	for i in $(seq 1 "$RUNS"); do
		set +e
		# Wall time in ms from the clock (time's %e has 10 ms steps, too
		# coarse for a 0.1 s run); CPU time and peak memory from time.
		t0=$(date +%s%N)
		/usr/bin/time -f '%e %M %U %S' -o "$WORK/time.txt" "$@" >/dev/null 2>"$WORK/err.txt"
		rc=$?
		t1=$(date +%s%N)
		set -e
		if [ "$rc" -gt 1 ] || { [ "$rc" = 1 ] && [ "$name" != vpndiag ]; }; then
			log "$name failed (exit $rc): $(tail -3 "$WORK/err.txt")"
			T[$name]=failed
			C[$name]=0
			M[$name]=0
			return 0
		fi
		read -r _ m u sy <"$WORK/time.txt"
		times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", (b-a)/1e9}')")
		cpus+=("$(awk -v u="$u" -v s="$sy" 'BEGIN{print u+s}')")
		mems+=("$m")
	done
	T[$name]=$(printf '%s\n' "${times[@]}" | median)
	C[$name]=$(printf '%s\n' "${cpus[@]}" | median)
	M[$name]=$(printf '%s\n' "${mems[@]}" | sort -n | tail -1)
}

# bench_file FILE [notshark]: time every tool on FILE. vpndiag runs twice:
# the summary pass alone (vpndiag-sum) and every analyzer (vpndiag). tshark
# is skipped with notshark (on the multi-GB memory test it needs minutes and
# gigabytes per run).
bench_file() {
	local f=$1 skip=${2:-}
	cat "$f" >/dev/null # same warm page cache for every tool
	timeit tcpdump tcpdump -r "$f" -w /dev/null
	if [ "$skip" = notshark ]; then
		T[tshark]=skipped
		M[tshark]=0
	else
		timeit tshark tshark -r "$f" -q -z conv,ip
	fi
	timeit vpndiag-sum "$VPNDIAG" analyze --analyzers summary "$f" --format json -o /dev/null
	timeit vpndiag "$VPNDIAG" analyze "$f" --format json -o /dev/null
	local n size
	n=$(capinfos -M -c -T "$f" | awk -F'\t' 'NR==2{print $2}')
	size=$(du -m "$f" | cut -f1)
	echo
	echo "file: $f ($n packets, $size MiB), median of $RUNS runs"
	printf '%-12s %10s %10s %12s %14s\n' tool "wall s" "cpu s" "peak RSS MiB" "packets/s"
	for t in tcpdump tshark vpndiag-sum vpndiag; do
		if [ "${T[$t]}" = failed ] || [ "${T[$t]}" = skipped ]; then
			printf '%-12s %10s\n' "$t" "${T[$t]}"
			continue
		fi
		awk -v t="$t" -v s="${T[$t]}" -v c="${C[$t]}" -v m="${M[$t]}" -v n="$n" \
			'BEGIN{printf "%-12s %10.3f %10.2f %12.1f %14.0f\n", t, s, c, m/1024, (s>0 ? n/s : 0)}'
	done
	ok() { [ "${T[$1]}" != failed ] && [ "${T[$1]}" != skipped ]; }
	if ok vpndiag-sum && ok tcpdump; then
		awk -v v="${T[vpndiag-sum]}" -v d="${T[tcpdump]}" 'BEGIN{printf "vpndiag summary pass / tcpdump copy:   %.2f (target <= 1.5)\n", (d>0 ? v/d : 0)}'
	fi
	if ok vpndiag-sum && ok tshark; then
		awk -v v="${T[vpndiag-sum]}" -v s="${T[tshark]}" 'BEGIN{printf "tshark conv,ip / vpndiag summary pass: %.2f (target >= 20)\n", (v>0 ? s/v : 0)}'
	fi
	if ok vpndiag && ok vpndiag-sum; then
		awk -v a="${T[vpndiag]}" -v v="${T[vpndiag-sum]}" 'BEGIN{printf "all analyzers / summary pass:          %.2f (target <= 1.5)\n", (v>0 ? a/v : 0)}'
		# All analyzers use a second core when there is one: the CPU
		# time ratio is their cost per core.
		awk -v a="${C[vpndiag]}" -v v="${C[vpndiag-sum]}" 'BEGIN{printf "all analyzers / summary pass, CPU time: %.2f\n", (v>0 ? a/v : 0)}'
	fi
	if ok vpndiag && ok tcpdump; then
		awk -v v="${T[vpndiag]}" -v d="${T[tcpdump]}" 'BEGIN{printf "all analyzers / tcpdump copy:          %.2f\n", (d>0 ? v/d : 0)}'
	fi
	echo "vpndiag peak memory: $(awk -v m="${M[vpndiag]}" 'BEGIN{printf "%.1f MiB", m/1024}') (target < 100 MiB)"
}

bench_file "$FILE"

if [ "$SIZE_MB" -gt 0 ]; then
	size=$(du -m "$FILE" | cut -f1)
	copies=$(((SIZE_MB + size - 1) / (size > 0 ? size : 1)))
	[ "$copies" -ge 1 ] || copies=1
	BIG=$WORK/bench-${SIZE_MB}MB.pcap
	created+=("$BIG")
	log "concatenating $copies copies into $BIG"
	args=()
	for _ in $(seq 1 "$copies"); do args+=("$FILE"); done
	mergecap -a -F pcap -w "$BIG" "${args[@]}"
	bench_file "$BIG" notshark
fi
