#!/usr/bin/env bash
# Side-by-side throughput of recur, ripgrep, jq and cat on generated JSON-lines corpora.
#
#   benches/compare.sh [SIZE_MB] [RUNS]        (defaults: 1024 MiB, 5 runs)
#
# 1. Builds recur and the corpus generator in release mode
#    (`cargo build --release --offline --bin recur --example gen_corpus`; set COMPARE_NO_BUILD=1
#    to use the binaries already in target/release).
# 2. Generates, under target/bench-corpus/SIZE_MBmb/, three corpora of SIZE_MB MiB with
#    examples/gen_corpus.rs: flat JSON lines at 0.05% target lines (`flat 500`), flat at 5%
#    (`flat 50000`) and the GCP envelope at 0.05% (`gcp 500`), plus one file made of a single
#    line of SIZE_MB MiB (over the line cap: it must be skipped with bounded memory) and a slice
#    of the first 1/20 of the flat corpus for jq. Files of the right size are reused. The rule
#    sets target/bench-corpus/rules-{1,10,100,1000} are rewritten on every run.
# 3. With each file in the page cache, in a defined state (COMPARE_PAGE_CACHE, see settle()
#    below) and locked there by a helper for the whole measurement (see pin() below; then one checked run of every command whose exit code and output are
#    verified), times the commands in RUNS rounds, each command
#    once per round in turn, and takes each one's median (interleaved, so that a slow spell of
#    a shared machine costs every command alike and the ratios hold):
#      cat FILE > /dev/null                         the ceiling
#      rg -c NO_TOKEN FILE                          one literal
#      rg -c -F -f LITERALS FILE                    the 100 rules' quoted error_code literals
#      jq -c 'select(…)' SLICE > /dev/null          the same field test as the rule, on the slice
#      recur scan --threads 1 --rules rules-N FILE  N = 1, 100, 1000; and 100 rules on the 5%
#                                                   and GCP corpora, and with --threads 2
#      recur grep -c -j 1 -w error_code=NO_TOKEN -w environment=staging FILE
#    Each median is less the median time of an empty command started the same way (the
#    wrapper's and the shell's own start, timed in every round).
#    It also measures the peak RSS (/usr/bin/time -f %M) of `recur scan` with 100 rules on the flat
#    corpus and on the single line.
# 4. Prints (stdout, also saved as target/bench-corpus/SIZE_MBmb/report.md) the machine, the
#    tool versions, a Markdown table of MB/s (MB = 10^6 bytes) and median CPU seconds (user +
#    system) with the ratio of each command to
#    `rg -c <literal>`, and the throughput and memory targets with PASS/MISS. Progress goes to
#    stderr; every command's output and its times are kept in .../logs/.
#
# Needs bash 5, python3 (for pinning), rg (`cargo install ripgrep` or `apt-get install
# ripgrep`), jq and GNU time (`apt-get install jq time`). No network use: the build is offline (`cargo fetch` first on a
# fresh checkout). The corpora take 4 x SIZE_MB MiB of disk and should fit in the page cache
# together. The numbers are only meaningful on an otherwise idle machine.
set -euo pipefail

die() {
    echo "compare.sh: error: $*" >&2
    exit 2
}
say() { echo "compare.sh: $*" >&2; }

size_mb=${1:-1024}
runs=${2:-5}
[[ $size_mb =~ ^[1-9][0-9]*$ ]] || die "SIZE_MB must be a positive integer (MiB), got '$size_mb'"
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, got '$runs'"
[ $# -le 2 ] || die "usage: benches/compare.sh [SIZE_MB] [RUNS]"

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$root/target}
recur=$target_dir/release/recur
gen=$target_dir/release/examples/gen_corpus
bench=$root/target/bench-corpus
dir=$bench/${size_mb}mb
logs=$dir/logs

# The environment must not change what is measured (rules dir, config, threads, line cap...).
for v in $(compgen -e); do
    case $v in RECUR_*) unset "$v" ;; esac
done

# --- tools --------------------------------------------------------------------------------
command -v rg >/dev/null || die "ripgrep (rg) not found: install it with 'cargo install ripgrep' (or 'apt-get install ripgrep')"
command -v jq >/dev/null || die "jq not found: install it with 'apt-get install jq'"
[ -x /usr/bin/time ] || die "GNU time (/usr/bin/time) not found: install it with 'apt-get install time'"
# --- 1. build -------------------------------------------------------------------------------
if [ "${COMPARE_NO_BUILD:-0}" = 1 ]; then
    say "COMPARE_NO_BUILD=1: using the existing release binaries"
else
    command -v cargo >/dev/null || die "cargo not found (install Rust from https://rustup.rs)"
    say "building: cargo build --release --offline --bin recur --example gen_corpus"
    (cd "$root" && cargo build --release --offline --bin recur --example gen_corpus) ||
        die "release build failed (with missing dependencies run 'cargo fetch' first: the build is offline)"
fi
[ -x "$recur" ] || die "$recur not found: build with 'cargo build --release --bin recur'"
[ -x "$gen" ] || die "$gen not found: build with 'cargo build --release --example gen_corpus'"

mkdir -p "$dir" "$logs"
# Run from the corpus directory: a ./recur.toml in the caller's directory must not apply.
cd "$dir"

# --- 2. corpora and rules -----------------------------------------------------------------
want=$((size_mb << 20)) # the generator writes SIZE_MB MiB, ending with the line that crosses it
filesize() { stat -c %s "$1"; }

# Free disk for what has to be written (the three corpora, the single line, the slice).
missing=0
for f in corpus-flat-500.jsonl corpus-flat-50000.jsonl corpus-gcp-500.jsonl one-line.jsonl; do
    [ -f "$f" ] || missing=$((missing + want))
done
missing=$((missing + want / 20))
avail=$(($(df --output=avail -k "$dir" | tail -n1) * 1024))
[ "$avail" -gt "$missing" ] ||
    die "not enough disk under $dir: need about $((missing >> 20)) MiB, $((avail >> 20)) MiB free"

# corpus SHAPE RATE: generates corpus-SHAPE-RATE.jsonl unless a complete one is there; the number
# of target lines the generator reported is kept beside it (.targets).
corpus() {
    local f=corpus-$1-$2.jsonl size out
    if [ -f "$f" ] && [ -s "$f.targets" ]; then
        size=$(filesize "$f")
        if [ "$size" -ge "$want" ] && [ "$size" -lt $((want + 65536)) ]; then
            say "reusing $dir/$f"
            return
        fi
    fi
    say "generating $dir/$f ($size_mb MiB, $1, $2 target lines per million)"
    rm -f "$f" "$f.targets"
    out=$("$gen" "$dir" "$size_mb" "$1" "$2") || die "gen_corpus failed for $1 $2"
    rm -rf "$dir"/rules-1 "$dir"/rules-10 "$dir"/rules-100 "$dir"/rules-1000
    echo "${out##* }" >"$f.targets"
}
corpus flat 500
corpus flat 50000
corpus gcp 500
flat=$dir/corpus-flat-500.jsonl
dense=$dir/corpus-flat-50000.jsonl
gcp=$dir/corpus-gcp-500.jsonl

# Rules: written by the generator with an empty corpus into a scratch directory.
scratch=$bench/.rules-scratch
rm -rf "$scratch"
"$gen" "$scratch" 0 flat 500 >/dev/null || die "gen_corpus failed writing the rules"
for n in 1 10 100 1000; do
    rm -rf "${bench:?}/rules-$n"
    mv "$scratch/rules-$n" "$bench/rules-$n"
done
rm -rf "$scratch"
[ "$(find "$bench/rules-1000" -name '*.toml' | wc -l)" -eq 1000 ] || die "rules-1000 is incomplete"

# The 100 rules' literals, quoted as they appear in the JSON (`"NO_TOKEN"`), one a line.
literals=$bench/literals-100.txt
sed -n 's/^error_code = \("[^"]*"\)$/\1/p' "$bench"/rules-100/*.toml >"$literals"
[ "$(wc -l <"$literals")" -eq 100 ] || die "expected 100 error_code literals in rules-100"

# One line of SIZE_MB MiB, over the line cap.
one=$dir/one-line.jsonl
if [ -f "$one" ] && [ "$(filesize "$one")" -eq "$want" ]; then
    say "reusing $one"
else
    say "generating $one (one line of $size_mb MiB)"
    { printf '{"pad":"'; head -c $((want - 11)) /dev/zero | tr '\0' x; printf '"}\n'; } >"$one.tmp"
    mv "$one.tmp" "$one"
fi
[ "$(filesize "$one")" -eq "$want" ] || die "$one has the wrong size"

# The jq slice: the first 1/20 of the flat corpus, cut at a line boundary.
slice=$dir/slice-flat-500.jsonl
head -c $((want / 20)) "$flat" | head -n -1 >"$slice"

# recur maps the chunks of large files only once they have been left alone for 10 s (a file
# being written is read): let freshly generated corpora come to rest, as exports do.
newest=$(stat -c %Y "$flat" "$dense" "$gcp" "$one" "$slice" | sort -n | tail -n1)
rest=$((newest + 11 - $(date +%s)))
if [ "$rest" -gt 0 ]; then
    say "waiting ${rest}s for the new corpora to be at rest"
    sleep "$rest"
fi

# --- 3. measurements ----------------------------------------------------------------------
q() { printf '%q ' "$@"; } # a command line for sh -c, each argument quoted

# How a file sits in the page cache changes what mapping it costs, and `rg -c` is little else:
# pages read back with read(2) or through a map (what `cat`, `cp`, a download or a restart
# leave behind) come in large folios (up to 2 MiB here, ext4 on Linux 6.18), which one fault
# maps hundreds of pages at a time; a file written by small appends (a live log, or a
# generator writing through a small buffer) sits in 4 KiB folios, a fault maps 16 of them,
# and the same `rg -c` takes about twice as long. So each timed corpus is first brought into
# one defined state (COMPARE_PAGE_CACHE): `read` (the default: dropped from the cache and
# read back with read(2)), `written` (written again in 4 KiB appends, as a live log is), or
# `as-is` (left as its history left it: results then depend on that history).
page_cache=${COMPARE_PAGE_CACHE:-read}
case $page_cache in read | written | as-is) ;; *) die "COMPARE_PAGE_CACHE must be read, written or as-is, got '$page_cache'" ;; esac
settle() {
    [ "$page_cache" = as-is ] && return
    command -v python3 >/dev/null || { say "warning: python3 not found: the corpora stay as they are in the page cache"; return; }
    say "page cache: bringing the corpora into a defined state ($page_cache)"
    python3 - "$page_cache" "$@" <<'PY'
import os, sys
mode, paths = sys.argv[1], sys.argv[2:]
for path in paths:
    if mode == "read":
        fd = os.open(path, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        while os.read(fd, 1 << 20):
            pass
        os.close(fd)
    else:
        # A copy written 4 KiB at a time replaces the file; its time is put back, so that it is
        # still at rest (recur maps only files left alone for 10 s).
        st = os.stat(path)
        tmp = path + ".rewrite"
        with open(path, "rb") as src:
            out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            while True:
                piece = src.read(1 << 20)
                if not piece:
                    break
                for i in range(0, len(piece), 4096):
                    os.write(out, piece[i:i + 4096])
            os.close(out)
        os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.replace(tmp, path)
PY
}

# Keep the timed corpora in memory while they are measured: a helper maps each file and locks
# it (mlock), so that its page-cache pages cannot be evicted. Without it, "in the page cache"
# is not a given: a kernel's proactive reclaim (DAMON, on the machines these numbers come from)
# drops file pages idle for about a minute, and a command then reads part of its file from
# disk. Needs python3 and the right to lock that much memory (root, or a large RLIMIT_MEMLOCK);
# without them the run goes on with a warning.
pinned=no
pin_pid=
pin() {
    command -v python3 >/dev/null || { say "warning: python3 not found: corpora are not pinned in memory"; return; }
    coproc PIN {
        exec python3 -u - "$@" <<'PY'
import ctypes, mmap, os, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.mlock.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
ok = True
for path in sys.argv[1:]:
    fd = os.open(path, os.O_RDONLY)
    n = os.fstat(fd).st_size
    p = libc.mmap(None, n, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
    if p is None or p == ctypes.c_void_p(-1).value or libc.mlock(p, n) != 0:
        print(f"cannot lock {path} (errno {ctypes.get_errno()})", file=sys.stderr)
        ok = False
print("pinned" if ok else "partly", flush=True)
signal.pause()
PY
    } 2>&2
    pin_pid=$PIN_PID
    trap '[ -n "$pin_pid" ] && kill "$pin_pid" 2>/dev/null' EXIT
    local line=
    read -r -t 120 line <&"${PIN[0]}" || true
    if [ "$line" = pinned ]; then
        pinned=yes
    else
        say "warning: the corpora could not all be pinned in memory; they may be read from disk between runs"
    fi
}

keys=()
declare -A label input bytes median command expected
mbps() { awk -v b="${bytes[$1]}" -v s="${median[$1]}" 'BEGIN { printf "%.1f", b / 1e6 / s }'; }

# measure KEY LABEL FILE EXPECTED_EXIT COMMAND_LINE: one checked run (also a warm-up) whose exit
# code must be the expected one; the command joins the timed rounds below.
measure() {
    local key=$1 lbl=$2 file=$3 expect=$4 cmd=$5 rc=0
    cat "$file" >/dev/null # page cache
    say "checking $lbl"
    bash -c "$cmd" >"$logs/$key.out" 2>"$logs/$key.err" || rc=$?
    if [ "$rc" -ne "$expect" ]; then
        sed -n 1,20p "$logs/$key.err" >&2
        die "'$cmd' exited with $rc (expected $expect)"
    fi
    keys+=("$key")
    label[$key]=$lbl
    input[$key]=$(basename "$file")
    bytes[$key]=$(filesize "$file")
    command[$key]=$cmd
    expected[$key]=$expect
    : >"$logs/$key.times"
    : >"$logs/$key.cpu"
}

# Runs every measured command once per round, in turn, RUNS rounds; the median of each
# command's times is its figure. Interleaving matters more than any statistics on a shared
# machine: a slow minute (a neighbour's load, a host-side memory scan) then costs every command
# alike instead of one of them, and the ratios, which are what the targets are about, hold.
median_of() { awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
declare -A cpu
# Every command is started as `/usr/bin/time … bash -c COMMAND`, which costs a few
# milliseconds of its own: an empty command started the same way is timed in every round too,
# and its median is taken off every command's median (as hyperfine corrects for its shell),
# so that a command's figure, and a ratio between two quick ones, is the command's own.
overhead=0
time_rounds() {
    local r key rc s e
    : >"$logs/empty.times"
    for ((r = 1; r <= runs; r++)); do
        say "round $r of $runs"
        s=$EPOCHREALTIME
        /usr/bin/time -f '%U %S' -o "$logs/empty.cpu1" bash -c ":" >/dev/null 2>&1
        e=$EPOCHREALTIME
        awk -v s="$s" -v e="$e" 'BEGIN { printf "%.6f\n", e - s }' >>"$logs/empty.times"
        for key in "${keys[@]}"; do
            rc=0
            s=$EPOCHREALTIME
            /usr/bin/time -f '%U %S' -o "$logs/$key.cpu1" bash -c "${command[$key]}" >/dev/null 2>&1 || rc=$?
            e=$EPOCHREALTIME
            [ "$rc" -eq "${expected[$key]}" ] || die "'${command[$key]}' exited with $rc (expected ${expected[$key]})"
            awk -v s="$s" -v e="$e" 'BEGIN { printf "%.6f\n", e - s }' >>"$logs/$key.times"
            # CPU seconds (user + system, 10 ms resolution): more than the wall time where a
            # command keeps two cores busy (a dense scan stores on a second thread while one
            # reads), and what a busy machine's other tenants are competing for.
            # (The last line: GNU time writes a line about a non-zero exit status before it.)
            awk 'END { printf "%.2f\n", $1 + $2 }' "$logs/$key.cpu1" >>"$logs/$key.cpu"
        done
    done
    overhead=$(sort -g "$logs/empty.times" | median_of)
    say "starting an empty command the same way: median $(awk -v s="$overhead" 'BEGIN { printf "%.4f", s }') s, taken off every median"
    for key in "${keys[@]}"; do
        median[$key]=$(sort -g "$logs/$key.times" | median_of | awk -v o="$overhead" '{ printf "%.6f\n", $1 - o }')
        cpu[$key]=$(sort -g "$logs/$key.cpu" | median_of)
        say "${label[$key]}: median $(awk -v s="${median[$key]}" 'BEGIN { printf "%.3f", s }') s, $(mbps "$key") MB/s"
    done
}

scan() { # scan RULES_DIR THREADS FILE: the recur scan command line
    q "$recur" scan --no-state --no-notify --threads "$2" --format json --rules "$bench/$1" "$3"
}
jq_filter='select(.error_code=="NO_TOKEN" and .environment=="staging")'

say "pinning the corpora in memory"
settle "$flat" "$dense" "$gcp" "$slice"
pin "$flat" "$dense" "$gcp" "$slice"
measure cat "cat > /dev/null" "$flat" 0 "$(q cat "$flat")> /dev/null"
measure rg_lit "rg -c NO_TOKEN" "$flat" 0 "$(q rg -c NO_TOKEN "$flat")"
measure rg_f100 "rg -c -F -f (100 literals)" "$flat" 0 "$(q rg -c -F -f "$literals" "$flat")"
measure jq "jq select(error_code, environment), 1/20 slice" "$slice" 0 "$(q jq -c "$jq_filter" "$slice")> /dev/null"
measure scan1 "recur scan, 1 rule" "$flat" 1 "$(scan rules-1 1 "$flat")> /dev/null"
measure scan100 "recur scan, 100 rules" "$flat" 1 "$(scan rules-100 1 "$flat")> /dev/null"
measure scan1000 "recur scan, 1000 rules" "$flat" 1 "$(scan rules-1000 1 "$flat")> /dev/null"
measure grep "recur grep -c -w error_code=NO_TOKEN -w environment=staging" "$flat" 0 \
    "$(q "$recur" grep -c -j 1 -w error_code=NO_TOKEN -w environment=staging "$flat")"
measure scan100_dense "recur scan, 100 rules, 5% targets" "$dense" 1 "$(scan rules-100 1 "$dense")> /dev/null"
measure scan100_gcp "recur scan, 100 rules, GCP envelope" "$gcp" 1 "$(scan rules-100 1 "$gcp")> /dev/null"
measure scan100_t2 "recur scan, 100 rules, --threads 2" "$flat" 1 "$(scan rules-100 2 "$flat")> /dev/null"
time_rounds

# Peak RSS (KiB) of recur scan with 100 rules: rss KEY FILE THREADS EXPECTED_EXITS (e.g. "0 1")
declare -A rss
rss() {
    local key=$1 file=$2 rc=0
    cat "$file" >/dev/null
    say "peak RSS: recur scan, 100 rules, --threads $3, $(basename "$file")"
    /usr/bin/time -f %M -o "$logs/$key.rss" "$recur" scan --no-state --no-notify --threads "$3" \
        --format json --rules "$bench/rules-100" "$file" >"$logs/$key.json" 2>"$logs/$key.err" || rc=$?
    [[ " $4 " == *" $rc "* ]] || { sed -n 1,20p "$logs/$key.err" >&2; die "recur scan of $file exited with $rc (expected $4)"; }
    rss[$key]=$(tail -n1 "$logs/$key.rss")
    [[ ${rss[$key]} =~ ^[0-9]+$ ]] || die "no peak RSS in $logs/$key.rss"
}
rss rss_flat "$flat" 1 1
rss rss_slice "$slice" 1 "0 1" # a small slice may hold no target line
rss rss_flat_t2 "$flat" 2 1
rss rss_one "$one" 1 0

# --- sanity checks on what the commands found ---------------------------------------------
warnings=()
targets=$(cat "$flat.targets")
grep_count=$(tr -d '[:space:]' <"$logs/grep.out")
[ "$grep_count" = "$targets" ] ||
    warnings+=("recur grep -c counted $grep_count events, the generator wrote $targets target lines")
found=$(jq '[.remediations[] | select(.id == "WEBSOCKET_AUTH_NO_TOKEN_PERSISTENT_001") | .occurrences] | add // 0' "$logs/rss_flat.json")
[ "$found" = "$targets" ] ||
    warnings+=("recur scan (100 rules) found $found occurrences, the generator wrote $targets target lines")
one_lines=$(jq '.inputs.lines' "$logs/rss_one.json")
one_events=$(jq '.inputs.events' "$logs/rss_one.json")
one_invalid=$(jq '.inputs.invalid' "$logs/rss_one.json")
[ "$one_events" = 0 ] && [ "$one_invalid" = 1 ] ||
    warnings+=("the single line gave lines=$one_lines events=$one_events invalid=$one_invalid (expected 1 skipped line)")

# --- 4. report ----------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

declare -A tput
for key in "${keys[@]}"; do tput[$key]=$(mbps "$key"); done

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -z "$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null)" ] || rev="$rev (with uncommitted changes)"
timer="median of $runs rounds, each command once per round in turn, less the median start of an empty command ($(awk -v s="$overhead" 'BEGIN { printf "%.1f", s * 1000 }') ms)"
if [ "$pinned" = yes ]; then where="files locked in memory (mlock) while measured"; else where="files read once before measuring, NOT pinned (may be read from disk)"; fi
case $page_cache in
read) where="$where; page cache filled by read(2) (COMPARE_PAGE_CACHE=read)" ;;
written) where="$where; page cache filled by writing the files in 4 KiB appends (COMPARE_PAGE_CACHE=written)" ;;
*) where="$where; page cache as the files' history left it (COMPARE_PAGE_CACHE=as-is)" ;;
esac

report() {
    echo "## recur side by side ($size_mb MiB corpora, $(date -u +%Y-%m-%d))"
    echo
    echo "- machine: $(nproc) CPUs, $cpu, $mem RAM, $(uname -sr)"
    echo "- recur: $("$recur" --version) at $rev"
    echo "- tools: $(rg --version | sed -n 1p), $(jq --version)"
    echo "- timing: $timer, $where; one thread unless stated; MB = 10^6 bytes"
    echo "- corpora: flat JSON lines with 0.05% target lines ($targets of them) unless stated; jq on the first 1/20 ($(filesize "$slice") bytes)"
    echo
    echo "| command | input | median (s) | CPU (s) | MB/s | × rg -c literal |"
    echo "|---|---|---:|---:|---:|---:|"
    for key in "${keys[@]}"; do
        printf '| %s | %s | %.3f | %.2f | %s | %s |\n' "${label[$key]}" "${input[$key]}" "${median[$key]}" "${cpu[$key]}" \
            "${tput[$key]}" "$(ratio "${tput[$key]}" "${tput[rg_lit]}")"
    done
    echo
    echo "| peak RSS of recur scan, 100 rules | input | MiB |"
    echo "|---|---|---:|"
    echo "| 1 thread | corpus-flat-500.jsonl ($size_mb MiB) | $(mib "${rss[rss_flat]}") |"
    echo "| 1 thread | slice-flat-500.jsonl ($((size_mb / 20)) MiB) | $(mib "${rss[rss_slice]}") |"
    echo "| 2 threads | corpus-flat-500.jsonl ($size_mb MiB) | $(mib "${rss[rss_flat_t2]}") |"
    echo "| 1 thread | one-line.jsonl (one line of $size_mb MiB) | $(mib "${rss[rss_one]}") |"
    echo
    echo "| target | measured | |"
    echo "|---|---:|---|"
    target() { # target TEXT MEASURED THRESHOLD UNIT
        local verdict=MISS
        ge "$2" "$3" && verdict=PASS
        echo "| $1 | $2$4 | $verdict |"
    }
    target "100 rules ≥ 0.5× rg -c literal" "$(ratio "${tput[scan100]}" "${tput[rg_lit]}")" 0.5 ×
    target "100 rules ≥ 3× rg -c -F -f (100 literals)" "$(ratio "${tput[scan100]}" "${tput[rg_f100]}")" 3 ×
    target "100 rules ≥ 50× jq" "$(ratio "${tput[scan100]}" "${tput[jq]}")" 50 ×
    target "1000 rules ≥ 0.25× rg -c literal" "$(ratio "${tput[scan1000]}" "${tput[rg_lit]}")" 0.25 ×
    target "5% targets, 100 rules ≥ 0.3× rg -c literal" "$(ratio "${tput[scan100_dense]}" "${tput[rg_lit]}")" 0.3 ×
    target "GCP envelope ≥ 0.7× flat (100 rules)" "$(ratio "${tput[scan100_gcp]}" "${tput[scan100]}")" 0.7 ×
    target "2 threads ≥ 1.7× 1 thread (100 rules)" "$(ratio "${tput[scan100_t2]}" "${tput[scan100]}")" 1.7 ×
    target "grep -c ≥ 0.8× scan with the same filter (1 rule)" "$(ratio "${tput[grep]}" "${tput[scan1]}")" 0.8 ×
    rss_target() { # rss_target TEXT KIB
        local verdict=MISS
        [ "$2" -le 65536 ] && verdict=PASS
        echo "| $1 | $(mib "$2") MiB | $verdict |"
    }
    rss_target "peak RSS ≤ 64 MiB, $size_mb MiB input" "${rss[rss_flat]}"
    rss_target "peak RSS ≤ 64 MiB, one line of $size_mb MiB" "${rss[rss_one]}"
    if [ "$size_mb" -lt 1024 ]; then
        echo
        echo "Note: the targets are stated for about 1 GB of input; this run used $size_mb MiB."
    fi
    for w in "${warnings[@]}"; do
        echo
        echo "**Warning**: $w."
    done
}
report | tee "$dir/report.md"
say "report saved to $dir/report.md, logs in $logs"
