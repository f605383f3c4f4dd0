#!/usr/bin/env python3
"""The trained listener at note starts, from what `cargo xtask eval listener-dump N --out DIR`
writes (DIR/clipNNN.json and DIR/clipNNN.logits).

Prints
- the raw pitch accuracy (within 50 cents) on the hops of a note's first 60 ms, by room size
  (dry, RT60 under 0.3 s, 0.3-0.6, 0.6-1.0, 1 s and more), and on the later hops;
- the raw pitch accuracy on all voiced hops by room (dry, RT60 under / from 0.6 s) and added
  noise (none, white, pink, mains hum, babble; under / from 15 dB SNR);
- what the listener reported on the wrong start hops of notes sung after a rest and of
  connected notes (under 0.15 s after the previous one): the previous note's pitch, an octave,
  a pitch inside the glide's range, something else;
- the onset head: per reference onset its highest value within 4 hops, and how often it passes
  0.5 in the middle of notes (more than 12 hops from any onset);
- with --second-peak: in rooms, on the start hops of connected notes (a semitone or more from
  the previous one) that the listener puts on the previous note, the share of its pitch
  distribution within a semitone of the sung pitch; and on the middle hops of notes, the share
  more than a semitone from the sung pitch (what a rule following a second peak would mistake).

Frame k of the dump describes hop k - delay (the listener's detection delay).

usage: python3 tools/listener-starts.py DIR [--second-peak]
"""
import collections
import glob
import json
import math
import re
import statistics
import sys

N_CANDIDATES = 270
CAND_MIN_MIDI = 36.0
CAND_PER_SEMITONE = 5
START_S = 0.06


def room(augment):
    m = re.search(r"rt60: Some\(([\d.]+)\)", augment)
    if not m:
        return "dry"
    rt = float(m.group(1))
    return "RT60 < 0.3 s" if rt < 0.3 else "RT60 0.3-0.6 s" if rt < 0.6 else "RT60 0.6-1.0 s" if rt < 1.0 else "RT60 >= 1 s"


def noise(augment):
    m = re.search(r'noise: Some\(\("(\w+)", ([\d.\-]+)\)\)', augment)
    if not m:
        return "no noise"
    return m.group(1) + (" < 15 dB" if float(m.group(2)) < 15 else " >= 15 dB")


def shares(logits, centre, far):
    """Softmax mass within a semitone of `centre` (MIDI), or beyond it when `far`."""
    mx = max(logits)
    tot = near = 0.0
    for i, v in enumerate(logits):
        w = math.exp(v - mx)
        tot += w
        d = abs(CAND_MIN_MIDI + i / CAND_PER_SEMITONE - centre)
        if (d > 1.0) if far else (d <= 1.0):
            near += w
    return near / tot


def main():
    d = sys.argv[1]
    second = "--second-peak" in sys.argv
    rpa = collections.defaultdict(lambda: [0, 0])
    by_condition = collections.defaultdict(lambda: [0, 0])
    kinds = collections.Counter()
    peaks, room_peaks, mid = [], [], []
    prev_share, mid_far = [], []
    for f in sorted(glob.glob(d + "/clip*.json")):
        c = json.load(open(f))
        h, fr, f0, dl = c["hop_s"], c["frames"], c["f0"], c["delay"]
        rm = room(c["augment"])
        condition = ("dry" if rm == "dry" else "RT60 < 0.6 s" if rm in ("RT60 < 0.3 s", "RT60 0.3-0.6 s") else "RT60 >= 0.6 s", noise(c["augment"]))
        for j, v in enumerate(f0):
            if v is not None and j + dl < len(fr):
                e = fr[j + dl][0]
                by_condition[condition][0] += e == e and abs(e - v) < 0.5
                by_condition[condition][1] += 1
        sung = c["sung"]
        logits = None
        if second and rm != "dry":
            import array
            logits = array.array("f")
            with open(f[: -len(".json")] + ".logits", "rb") as lf:
                logits.frombytes(lf.read())
        start = set()
        for i, s in enumerate(sung):
            prev = sung[i - 1] if i > 0 else None
            gap = s["start"] - (prev["start"] + prev["dur"]) if prev else 9.0
            where = "connected" if gap < 0.15 else "after a rest"
            for j in range(int(s["start"] / h), int((s["start"] + START_S) / h) + 1):
                start.add(j)
                k = j + dl
                if j >= len(f0) or k >= len(fr) or f0[j] is None:
                    continue
                e, v = fr[k][0], f0[j]
                ok = e == e and abs(e - v) < 0.5
                rpa[(rm, "start")][0] += ok
                rpa[(rm, "start")][1] += 1
                if ok:
                    continue
                if e != e:
                    kind = "no pitch"
                elif prev and abs(e - prev["midi"]) < 0.5:
                    kind = "the previous note's pitch"
                elif abs(abs(e - v) - 12) < 0.5:
                    kind = "an octave off"
                elif prev and s["glide"] > 0 and min(prev["midi"], s["midi"]) - 0.5 <= e <= max(prev["midi"], s["midi"]) + 0.5:
                    kind = "inside the glide's range"
                else:
                    kind = "elsewhere"
                kinds[("dry" if rm == "dry" else "room", where, kind)] += 1
                if logits is not None and where == "connected" and abs(prev["midi"] - s["midi"]) >= 1 and kind == "the previous note's pitch":
                    prev_share.append(shares(logits[k * N_CANDIDATES:(k + 1) * N_CANDIDATES], v, False))
        for j, v in enumerate(f0):
            k = j + dl
            if v is None or j in start or k >= len(fr):
                continue
            e = fr[k][0]
            rpa[(rm, "later")][0] += e == e and abs(e - v) < 0.5
            rpa[(rm, "later")][1] += 1
            if logits is not None and j % 4 == 0:
                mid_far.append(shares(logits[k * N_CANDIDATES:(k + 1) * N_CANDIDATES], v, True))
        # Onset head (column 2 of a frame).
        onsets = [int(round(t / h)) for t, _ in c["ref"]]
        near = set()
        for o in onsets:
            w = [fr[k][2] for k in range(max(0, o + dl - 4), min(len(fr), o + dl + 5))]
            if w:
                peaks.append(max(w))
                if rm != "dry":
                    room_peaks.append(max(w))
            near.update(range(o - 12, o + 13))
        for j, v in enumerate(f0):
            if v is not None and j not in near and j + dl < len(fr):
                mid.append(fr[j + dl][2])
    print("raw pitch accuracy, a note's first 60 ms / later:")
    for rm in ["dry", "RT60 < 0.3 s", "RT60 0.3-0.6 s", "RT60 0.6-1.0 s", "RT60 >= 1 s"]:
        a, b = rpa[(rm, "start")], rpa[(rm, "later")]
        if a[1]:
            print(f"  {rm:<16} {a[0] / a[1]:.3f} of {a[1]:>5} hops / {b[0] / max(b[1], 1):.3f} of {b[1]:>6}")
    print("raw pitch accuracy on all voiced hops, by room and noise (errors):")
    for rm in ["dry", "RT60 < 0.6 s", "RT60 >= 0.6 s"]:
        row = [(n, v) for (r, n), v in sorted(by_condition.items()) if r == rm]
        tot = [sum(v[0] for _, v in row), sum(v[1] for _, v in row)]
        print(f"  {rm:<14} all {tot[0] / max(tot[1], 1):.3f} ({tot[1] - tot[0]} of {tot[1]}): " + ", ".join(f"{n} {v[0] / v[1]:.3f} ({v[1] - v[0]})" for n, v in row))
    print("wrong start hops, by what the listener reported:")
    for k, v in sorted(kinds.items()):
        print(f"  {k[0]:<4} {k[1]:<13} {k[2]:<26} {v:>5}")
    if peaks:
        print(f"onset head: peak within 4 hops of a reference onset > 0.5 for {sum(p > 0.5 for p in peaks) / len(peaks):.3f} of {len(peaks)} onsets "
              f"(median {statistics.median(peaks):.2f}); rooms {sum(p > 0.5 for p in room_peaks) / max(len(room_peaks), 1):.3f} "
              f"(median {statistics.median(room_peaks) if room_peaks else float('nan'):.2f}); > 0.5 on {sum(m > 0.5 for m in mid) / max(len(mid), 1):.4f} of {len(mid)} mid-note hops")
    if second:
        for th in (0.1, 0.2, 0.3):
            print(f"second peak >= {th}: on {sum(s >= th for s in prev_share) / max(len(prev_share), 1):.3f} of {len(prev_share)} start hops put on the previous note; "
                  f"away from the sung pitch on {sum(s >= th for s in mid_far) / max(len(mid_far), 1):.4f} of {len(mid_far)} mid-note hops (every 4th)")


if __name__ == "__main__":
    main()
