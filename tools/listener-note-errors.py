#!/usr/bin/env python3
"""Breakdown of the trained listener's note errors on the held-out set.

Reads what `cargo xtask eval listener-dump [N] [--clean]` writes (runs/dump*/clipNNN.json) and
prints, for the notes the decoder made (`est`) against the reference notes:

- the score with the eval's greedy matching, and with mir_eval's maximum bipartite matching
  when the `mir_eval` package is installed (a check that the two agree);
- every unmatched reference note by what went wrong (wrong pitch at the right time, right pitch
  but late/early, or nothing) and by how it was sung (onset kind, scoop, glide);
- every unmatched estimated note by where it fell (in a rest, on the sounding reference note's
  pitch, on the previous note's pitch, elsewhere);
- the same against the reference with legato glides starting at their half-way point
  (`--glide-mid`).
- the score by augmentation condition (noise kind and SNR, room or dry);
- with `--lookahead`, all of it for the notes placed with lookahead (`est_lookahead`, as
  `hummingface render` places them) instead of the live decoder's.

usage: python3 tools/listener-note-errors.py runs/dump-clean [--glide-mid] [--lookahead] [--only CONDITION]
(--only keeps the clips with a condition that starts with CONDITION, e.g. "room" or "dry")
"""
import collections
import glob
import json
import re
import sys


def greedy(ref, est, tol=0.05, ptol=0.5):
    pairs = sorted((abs(e[0] - r[0]), i, j) for i, r in enumerate(ref) for j, e in enumerate(est)
                   if abs(e[0] - r[0]) <= tol and abs(e[1] - r[1]) <= ptol)
    used_r, used_e, m = set(), set(), []
    for _, i, j in pairs:
        if i not in used_r and j not in used_e:
            used_r.add(i)
            used_e.add(j)
            m.append((i, j))
    return m


def kind(s):
    k = s["onset"].split(" ")[0].split("{")[0]
    if s["scoop"]:
        k += "+scoop"
    if s["glide"] > 0:
        k += "+glide"
    return k


def conditions(augment):
    """The clip's noise (kind and SNR under or over 15 dB) and room (dry, RT60 under or over 0.6 s)."""
    noise = re.search(r'noise: Some\(\("(\w+)", ([\d.]+)\)\)', augment)
    rt60 = re.search(r"rt60: Some\(([\d.]+)\)", augment)
    n = f"{noise.group(1)} {'<' if float(noise.group(2)) < 15 else '>='} 15 dB SNR" if noise else "no noise"
    r = ("room, RT60 < 0.6 s" if float(rt60.group(1)) < 0.6 else "room, RT60 >= 0.6 s") if rt60 else "dry"
    return [n, r]


def main():
    d = sys.argv[1]
    glide_mid = "--glide-mid" in sys.argv
    lookahead = "--lookahead" in sys.argv
    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
    try:
        import mir_eval
        import numpy as np
    except ImportError:
        mir_eval = None
    R = E = M = MM = 0
    glides = reachable = 0
    rcat, ecat, per_kind = collections.Counter(), collections.Counter(), collections.defaultdict(lambda: [0, 0])
    per_cond = collections.defaultdict(lambda: [0, 0, 0])
    for f in sorted(glob.glob(d + "/clip*.json")):
        c = json.load(open(f))
        if only and not any(k.startswith(only) for k in conditions(c["augment"])):
            continue
        sung, est = c["sung"], [tuple(e) for e in c["est_lookahead" if lookahead else "est"]]
        ref = [((t + s["glide"] / 2) if (glide_mid and s["glide"] > 0) else t, m) for (t, m), s in zip(c["ref"], sung)]
        m = greedy(ref, est)
        R, E, M = R + len(ref), E + len(est), M + len(m)
        for k in conditions(c["augment"]):
            per_cond[k][0] += len(ref)
            per_cond[k][1] += len(est)
            per_cond[k][2] += len(m)
        if mir_eval and ref and est:
            ri = np.array([[r[0], r[0] + 0.1] for r in ref])
            ei = np.array([[e[0], e[0] + 0.1] for e in est])
            rp = mir_eval.util.midi_to_hz(np.array([r[1] for r in ref]))
            ep = mir_eval.util.midi_to_hz(np.array([e[1] for e in est]))
            MM += len(mir_eval.transcription.match_notes(ri, rp, ei, ep, offset_ratio=None))
        mr, me = {i for i, _ in m}, {j for _, j in m}
        # Glides whose sung pitch is within half a semitone of the target 50 ms after the glide
        # begins (what a note starting in the tolerance window must already know).
        hop = c["hop_s"]
        for (t0, m_), s in zip(c["ref"], sung):
            if s["glide"] > 0:
                glides += 1
                h = int((t0 + 0.05) / hop)
                f = c["f0"][h] if h < len(c["f0"]) else None
                reachable += f is not None and abs(f - round(m_)) < 0.5
        for i, r in enumerate(ref):
            k = kind(sung[i])
            per_kind[k][0] += 1
            if i in mr:
                continue
            per_kind[k][1] += 1
            end = c["ref"][i][0] + sung[i]["dur"]
            near = [e for e in est if abs(e[0] - r[0]) <= 0.05]
            same = [e for e in est if abs(e[1] - r[1]) <= 0.5 and r[0] - 0.3 <= e[0] <= end]
            if near and not any(abs(e[1] - r[1]) <= 0.5 for e in near):
                cat = "on time, wrong pitch"
            elif same:
                cat = "right pitch, late" if min((e[0] - r[0] for e in same), key=abs) > 0 else "right pitch, early"
            else:
                cat = "no note"
            rcat[cat] += 1
        for j, e in enumerate(est):
            if j in me:
                continue
            inside = [(i, r) for i, r in enumerate(c["ref"]) if r[0] - 0.05 <= e[0] <= r[0] + sung[i]["dur"] + 0.05]
            if not inside:
                cat = "in a rest"
            else:
                i, r = inside[-1]
                if abs(e[1] - r[1]) <= 0.5:
                    cat = "on the sounding note's pitch (split or late)"
                elif i > 0 and abs(e[1] - c["ref"][i - 1][1]) <= 0.5:
                    cat = "on the previous note's pitch"
                else:
                    cat = "other pitch"
            ecat[cat] += 1
    p, r = M / max(E, 1), M / max(R, 1)
    print(f"reference {R}, estimated {E}, matched {M}: P {p:.3f} R {r:.3f} F1 {2 * M / max(R + E, 1):.3f}"
          + (f" (mir_eval maximum matching: {MM} matched)" if mir_eval else ""))
    print(f"legato glides: {glides}; sung pitch within 0.5 semitone of the target 50 ms after the glide begins: {reachable}")
    print("unmatched reference notes:")
    for k, v in rcat.most_common():
        print(f"  {v:4d}  {k}")
    print("unmatched estimated notes:")
    for k, v in ecat.most_common():
        print(f"  {v:4d}  {k}")
    print("note F1 by condition:")
    for k, (r, e, mm) in sorted(per_cond.items()):
        print(f"  {k:24s} {2 * mm / max(r + e, 1):.3f}  ({r} reference notes)")
    print("reference notes missed, by how they were sung:")
    for k, (n, miss) in sorted(per_kind.items(), key=lambda x: -x[1][0]):
        print(f"  {k:24s} {miss:4d} of {n:4d}")


if __name__ == "__main__":
    main()
