#!/usr/bin/env bash
# HummingFace — the one prepared check for a lent GPU machine (issue 7).
#
# Runs in the repository root of a copy of the working tree, on a machine with
# an NVIDIA GPU + driver, no Rust and no network. No step can fail the whole
# script: each one runs under `timeout`, and its exit code, time, and the tails
# of its stdout/stderr are appended to $OUT/summary.txt as it goes (so a run
# cut off by the device tool's limit still brings back what it did).
#
# The device tool brings back at most 8 files from $OUT, so $OUT gets only:
#   summary.txt   everything in short, written step by step
#   steps.tsv     step, exit code, seconds, timeout
#   nvidia-smi.txt, info-cuda.json, compare.json, bench-gpu.json, probe.json (at the end)
#   device-check-logs.tar.gz   every step's full stdout/stderr, ldd, MIDI files
# Full logs are written to a scratch folder first (WORK, default a mktemp -d).
#
# Needs, carried with the working tree (target/ is git-ignored, so name the
# files in the device tool's `carry`; a call carries 64 MiB in all, and the
# plain binaries are ~45 + ~40 MiB, so carry the .gz copies):
#   target/cuda-dist/hummingface-cuda.gz  (cargo xtask build-cuda; plain or .xz also work)
#   target/cuda-dist/cudaprobe.gz         (optional: the toolchain probe)
#   assets/demo-vocal.wav                 (tracked; else the first assets/*.wav)
# e.g. run(command="bash tools/gpu/device-check.sh",
#          carry=["target/cuda-dist/hummingface-cuda.gz", "target/cuda-dist/cudaprobe.gz"],
#          timeout_s=360)
#
# Knobs (environment): OUT, HF_BIN, HF_INPUT, HF_BUDGET_S (whole-script time
# budget, default 300 s), HF_SKIP (space-separated step names to skip).
set -u
START=$(date +%s)
BUDGET=${HF_BUDGET_S:-300}
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
W=${WORK:-$(mktemp -d)}
mkdir -p "$W"
LOG="$OUT/steps.tsv"
: > "$OUT/summary.txt"
printf 'step\trc\tseconds\ttimeout_s\n' > "$LOG"
SKIP=" ${HF_SKIP:-} "

note() { echo "[device-check $(( $(date +%s) - START ))s] $*" | tee -a "$OUT/summary.txt" >&2; }

# step NAME TIMEOUT_S CMD...   — stdout → $W/NAME.out, stderr → $W/NAME.err
step() {
    local name=$1 limit=$2; shift 2
    if [[ "$SKIP" == *" $name "* ]]; then note "$name: skipped (HF_SKIP)"; return 0; fi
    local left=$(( BUDGET - ( $(date +%s) - START ) - 5 ))
    if (( left < 5 )); then
        note "$name: not run, script budget (${BUDGET}s) spent"
        printf '%s\t%s\t%s\t%s\n' "$name" "budget" 0 0 >> "$LOG"; return 0
    fi
    (( limit > left )) && limit=$left
    local t0 rc
    t0=$(date +%s.%N)
    timeout --kill-after=5 "$limit" "$@" > "$W/$name.out" 2> "$W/$name.err"
    rc=$?
    local dt
    dt=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}')
    printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$dt" "$limit" >> "$LOG"
    if (( rc == 124 || rc == 137 )); then note "$name: TIMED OUT after ${limit}s"
    elif (( rc != 0 )); then note "$name: exit $rc (${dt}s) — see $name.err"
    else note "$name: ok (${dt}s)"; fi
    {
        if [[ -s "$W/$name.out" ]]; then echo "  --- $name stdout (tail)"; tail -c 2500 "$W/$name.out" | sed 's/^/  | /'; echo; fi
        if [[ -s "$W/$name.err" ]]; then echo "  --- $name stderr (tail)"; tail -c 1500 "$W/$name.err" | sed 's/^/  ! /'; echo; fi
    } >> "$OUT/summary.txt"
    return 0
}

# ---------------------------------------------------------------- machine
step nvidia-smi 30 nvidia-smi
step nvidia-smi-query 30 nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap,clocks.max.sm --format=csv
{
    echo "date: $(date -u +%FT%TZ)"; uname -a
    echo "cpus: $(nproc)"; grep -m1 'model name' /proc/cpuinfo
    free -m | head -2
    python3 --version 2>&1
} > "$W/machine.txt" 2>&1
cat "$W/machine.txt" >> "$OUT/summary.txt"

# ---------------------------------------------------------------- CUDA runtime libraries
# The CUDA 13 runtime libs come with the machine's PyTorch wheels:
# <site-packages>/nvidia/cu13/lib. libcuda.so.1 itself comes with the driver.
find_cu13_lib() {
    local d
    for d in $(python3 - 2>/dev/null <<'PY'
import os
try:
    import nvidia
    for p in list(nvidia.__path__):
        print(os.path.join(p, "cu13", "lib"))
except Exception:
    pass
PY
    ) /usr/local/lib/python3*/{site,dist}-packages/nvidia/cu13/lib \
      /usr/lib/python3*/{site,dist}-packages/nvidia/cu13/lib \
      /opt/conda/lib/python3*/site-packages/nvidia/cu13/lib \
      "$HOME"/.local/lib/python3*/site-packages/nvidia/cu13/lib \
      /opt/*/lib/python3*/site-packages/nvidia/cu13/lib; do
        if [[ -e "$d/libcublas.so.13" && -e "$d/libcudart.so.13" ]]; then echo "$d"; return 0; fi
    done
    # Last resort: search (bounded).
    d=$(timeout 20 find / -xdev -path '*/nvidia/cu13/lib/libcublas.so.13' 2>/dev/null | head -1)
    [[ -n "$d" ]] && dirname "$d"
}
CU13_LIB=$(find_cu13_lib)
if [[ -n "$CU13_LIB" ]]; then
    export LD_LIBRARY_PATH="$CU13_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    note "CUDA 13 runtime libraries: $CU13_LIB"
    ls -l "$CU13_LIB" > "$W/cu13-lib.txt" 2>&1
    python3 -c 'import importlib.metadata as m; [print(d.metadata["Name"], d.version) for d in m.distributions() if (d.metadata["Name"] or "").lower().startswith(("nvidia-","torch"))]' \
        > "$W/python-nvidia-packages.txt" 2>&1
    sed 's/^/  python: /' "$W/python-nvidia-packages.txt" >> "$OUT/summary.txt"
else
    note "CUDA 13 runtime libraries NOT FOUND (no site-packages/nvidia/cu13/lib); the CUDA binaries will not load"
fi
echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}" | tee -a "$W/machine.txt" >> "$OUT/summary.txt"

# ---------------------------------------------------------------- binaries
# Plain file, or .xz / .gz of it (unpacked to a scratch folder).
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT   # the unpacked binaries only; $W is kept
unpack() {  # unpack PATH → prints a runnable path or nothing
    local p=$1 base; base=$(basename "$p")
    if [[ -f "$p" ]]; then chmod +x "$p" 2>/dev/null || { cp "$p" "$SCRATCH/$base"; chmod +x "$SCRATCH/$base"; p="$SCRATCH/$base"; }; echo "$p"
    elif [[ -f "$p.xz" ]]; then xz -dc "$p.xz" > "$SCRATCH/$base" && chmod +x "$SCRATCH/$base" && echo "$SCRATCH/$base"
    elif [[ -f "$p.gz" ]]; then gzip -dc "$p.gz" > "$SCRATCH/$base" && chmod +x "$SCRATCH/$base" && echo "$SCRATCH/$base"
    fi
}
HF=$(unpack "${HF_BIN:-target/cuda-dist/hummingface-cuda}")
PROBE=$(unpack target/cuda-dist/cudaprobe)

for b in "$HF" "$PROBE"; do
    [[ -n "$b" ]] || continue
    n=$(basename "$b")
    { ls -l "$b"; sha256sum "$b"; echo; ldd "$b"; } > "$W/ldd-$n.txt" 2>&1
    sed 's/^/  ldd: /' "$W/ldd-$n.txt" >> "$OUT/summary.txt"
    if grep -q 'not found' "$W/ldd-$n.txt"; then note "$n: unresolved libraries: $(grep 'not found' "$W/ldd-$n.txt" | awk '{print $1}' | tr '\n' ' ')"; fi
done

# The binaries are stripped, so backtraces would be frames of <unknown>; they
# would also be glued onto candle's error messages. Off unless asked for.
export RUST_BACKTRACE=${HF_BACKTRACE:-0}

# ---------------------------------------------------------------- toolchain probe (optional)
if [[ -n "$PROBE" ]]; then
    step probe 60 "$PROBE"
fi

# ---------------------------------------------------------------- the CUDA variant
INPUT=${HF_INPUT:-assets/demo-vocal.wav}
if [[ ! -f "$INPUT" ]]; then
    alt=$(ls assets/*.wav 2>/dev/null | head -1)
    [[ -n "$alt" ]] && { note "input $INPUT missing; using $alt"; INPUT=$alt; }
fi

if [[ -z "$HF" ]]; then
    note "target/cuda-dist/hummingface-cuda not carried — nothing more to run"
else
    step version 30 "$HF" --version
    step info-cuda 45 "$HF" info --json --device cuda
    step info-auto 45 "$HF" info --json
    if [[ -f "$INPUT" ]]; then
        note "input: $INPUT ($(stat -c %s "$INPUT") bytes)"
        step render-cpu 90 "$HF" render "$INPUT" -o "$W/render-cpu.wav" --midi "$W/render-cpu.mid" --json --device cpu
        step render-cuda 90 "$HF" render "$INPUT" -o "$W/render-cuda.wav" --midi "$W/render-cuda.mid" --json --device cuda
        # Twice on CUDA: run-to-run determinism on the GPU.
        step render-cuda-2 90 "$HF" render "$INPUT" -o "$W/render-cuda-2.wav" --json --device cuda
        # The trained listener (issue 3, `--listener trained`; the default since the twelfth
        # session, kept explicit so the check covers it whatever the default) on both devices.
        step render-cpu-trained 90 "$HF" render "$INPUT" -o "$W/render-cpu-trained.wav" --json --device cpu --listener trained
        step render-cuda-trained 90 "$HF" render "$INPUT" -o "$W/render-cuda-trained.wav" --json --device cuda --listener trained
        cat > "$W/compare.py" <<'PY'
# Max |a-b| between WAVs (PCM 16/24/32 or float 32/64), stdlib only.
import json, struct, sys, array, math
def read(path):
    with open(path, "rb") as f: d = f.read()
    assert d[:4] == b"RIFF" and d[8:12] == b"WAVE", "not RIFF/WAVE"
    i, fmt, data = 12, None, None
    while i + 8 <= len(d):
        cid, n = d[i:i+4], struct.unpack("<I", d[i+4:i+8])[0]
        body = d[i+8:i+8+n]
        if cid == b"fmt ": fmt = struct.unpack("<HHIIHH", body[:16]) + ((struct.unpack("<H", body[24:26])[0],) if len(body) >= 26 else (None,))
        elif cid == b"data": data = body
        i += 8 + n + (n & 1)
    tag, ch, rate, _, _, bits, sub = fmt
    if tag == 0xFFFE: tag = sub
    if tag == 3:
        a = array.array("f" if bits == 32 else "d"); a.frombytes(data[: len(data) // (bits // 8) * (bits // 8)]); x = list(a)
    elif bits == 16:
        a = array.array("h"); a.frombytes(data[: len(data) // 2 * 2]); x = [v / 32768 for v in a]
    elif bits == 24:
        x = [int.from_bytes(data[j:j+3], "little", signed=True) / 8388608 for j in range(0, len(data) - 2, 3)]
    else:
        a = array.array("i"); a.frombytes(data[: len(data) // 4 * 4]); x = [v / 2147483648 for v in a]
    return rate, ch, x
def device_of(wav):
    # The render's --json line (saved as NAME.out beside NAME.wav) says which
    # device really ran: `--device cuda` may fall back to the CPU.
    try:
        for line in reversed(open(wav[:-4] + ".out").read().splitlines()):
            if line.strip().startswith("{"):
                return json.loads(line).get("device")
    except Exception as e:
        return "unknown (%r)" % (e,)
res = {}
try:
    res["devices"] = {p.rsplit("/", 1)[-1]: device_of(p) for p in sys.argv[1:]}
    fell_back = [k for k, d in res["devices"].items() if "cuda" in k and "cuda" not in str(d).lower()]
    if fell_back:
        res["WARNING"] = "these renders did not run on CUDA, so their difference says nothing about the GPU: " + ", ".join(fell_back)
    r0, c0, ref = read(sys.argv[1])
    res["cpu"] = {"rate": r0, "channels": c0, "samples": len(ref), "peak": max((abs(v) for v in ref), default=0.0)}
    for p in sys.argv[2:]:
        try:
            r, c, x = read(p)
        except Exception as e:
            res[p] = {"error": repr(e)}; continue
        n = min(len(ref), len(x))
        diffs = [abs(ref[j] - x[j]) for j in range(n)]
        m = max(diffs, default=0.0)
        rms = math.sqrt(sum(v * v for v in diffs) / n) if n else 0.0
        res[p.rsplit("/", 1)[-1]] = {"max_abs_diff_vs_cpu": m, "rms_diff_vs_cpu": rms, "samples": len(x),
                                     "same_length": len(x) == len(ref), "rate": r, "channels": c,
                                     "nonfinite": sum(1 for v in x if not math.isfinite(v))}
except Exception as e:
    res["error"] = repr(e)
print(json.dumps(res, indent=1))
PY
        step compare 30 python3 "$W/compare.py" "$W/render-cpu.wav" "$W/render-cuda.wav" "$W/render-cuda-2.wav"
        step compare-trained 30 python3 "$W/compare.py" "$W/render-cpu-trained.wav" "$W/render-cuda-trained.wav"
        grep -q '"WARNING"' "$W/compare.out" 2>/dev/null && note "compare: WARNING — a --device cuda render fell back to the CPU (see compare.json)"
        step bench-gpu 150 "$HF" bench-gpu --input "$INPUT" --json
        # The same with Candle's CPU side on one thread (the "one core" figure).
        step bench-gpu-1t 150 env RAYON_NUM_THREADS=1 "$HF" bench-gpu --input "$INPUT" --json
    else
        note "no input WAV carried (assets/demo-vocal.wav); renders and bench skipped"
        step bench-gpu 150 "$HF" bench-gpu --json
    fi
fi

# ---------------------------------------------------------------- pack for the trip back (≤ 8 files)
[[ -s "$W/nvidia-smi.out" ]] && { cat "$W/nvidia-smi.out"; echo; cat "$W/nvidia-smi-query.out" 2>/dev/null; } > "$OUT/nvidia-smi.txt"
[[ -s "$W/info-cuda.out" ]] && cp "$W/info-cuda.out" "$OUT/info-cuda.json"
[[ -s "$W/compare.out" ]] && { echo '{"default":'; cat "$W/compare.out"; echo ', "trained":'; if [[ -s "$W/compare-trained.out" ]]; then cat "$W/compare-trained.out"; else echo null; fi; echo '}'; } > "$OUT/compare.json"
[[ -s "$W/bench-gpu.out" ]] && cp "$W/bench-gpu.out" "$OUT/bench-gpu.json"
[[ -s "$W/probe.out" ]] && cp "$W/probe.out" "$OUT/probe.json"
[[ -s "$W/bench-gpu-1t.out" ]] && cp "$W/bench-gpu-1t.out" "$OUT/bench-gpu-1t.json"
# Full logs, without the rendered WAVs (compare.json has their differences).
tar -C "$W" --exclude='*.wav' -czf "$OUT/device-check-logs.tar.gz" . 2>/dev/null \
    || note "packing the logs failed"
note "done in $(( $(date +%s) - START ))s; results in $OUT"
cat "$LOG" >&2
exit 0
