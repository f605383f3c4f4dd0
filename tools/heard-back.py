#!/usr/bin/env python3
"""Note F1 of the piano audio as an independent transcriber hears it back (issue 3's third-party
figure, measured here on the held-out synthetic set), beside the MIDI file and beside that
transcriber on the vocal itself.

For every clipNNN.wav in DIR (made by `cargo xtask eval listener-dump N --wav --out DIR`, which
also writes the reference notes in clipNNN.json):

- `hummingface render clipNNN.wav -o piano.wav --mix 1 --json [EXTRA...]` renders the piano
  (the CLI's defaults unless EXTRA says otherwise) and reports its notes (the `--midi` file's);
- Spotify's Basic Pitch (`basic-pitch` on PyPI, its default thresholds) transcribes the piano
  audio, and, as a baseline, the vocal clip;
- each note list is scored against the clip's reference notes with mir_eval
  (onset ±50 ms, pitch ±50 cents, offsets ignored), pooled over the clips.

Basic Pitch needs TensorFlow: run with a venv made by
  python3 -m venv /tmp/bp && /tmp/bp/bin/pip install basic-pitch mir_eval
usage: /tmp/bp/bin/python tools/heard-back.py DIR [--cli target/release/hummingface] [-- EXTRA...]
"""
import glob
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import mir_eval
from basic_pitch import ICASSP_2022_MODEL_PATH
from basic_pitch.inference import Model, predict


def score(ref, est):
    """Matched, reference and estimated counts (mir_eval's note matching, offsets ignored)."""
    if not ref or not est:
        return 0, len(ref), len(est)
    ri = np.array([[t, t + 0.1] for t, _ in ref])
    ei = np.array([[t, t + 0.1] for t, _ in est])
    rp = mir_eval.util.midi_to_hz(np.array([m for _, m in ref], dtype=float))
    ep = mir_eval.util.midi_to_hz(np.array([m for _, m in est], dtype=float))
    m = mir_eval.transcription.match_notes(ri, rp, ei, ep, onset_tolerance=0.05, pitch_tolerance=50.0, offset_ratio=None)
    return len(m), len(ref), len(est)


def transcribe(model, path):
    _, _, events = predict(path, model)
    return sorted((float(s), float(p)) for s, _, p, _, _ in events)


def main():
    args = sys.argv[1:]
    extra = args[args.index("--") + 1:] if "--" in args else []
    args = args[:args.index("--")] if "--" in args else args
    d = args[0]
    cli = args[args.index("--cli") + 1] if "--cli" in args else "target/release/hummingface"
    model = Model(ICASSP_2022_MODEL_PATH)
    totals = {k: [0, 0, 0] for k in ("vocal, Basic Pitch", "MIDI (hummingface render)", "piano audio, Basic Pitch")}
    clips = sorted(glob.glob(os.path.join(d, "clip*.wav")))
    with tempfile.TemporaryDirectory() as tmp:
        for wav in clips:
            c = json.load(open(wav[:-4] + ".json"))
            ref = [(t, m) for t, m in c["ref"]]
            piano = os.path.join(tmp, "piano.wav")
            out = subprocess.run([cli, "render", wav, "-o", piano, "--mix", "1", "--json", *extra], check=True, capture_output=True, text=True).stdout
            report = json.loads(out.strip().splitlines()[-1])
            midi = [(n["start_s"], n["note"]) for n in report["notes"]]
            rows = {
                "vocal, Basic Pitch": transcribe(model, wav),
                "MIDI (hummingface render)": midi,
                "piano audio, Basic Pitch": transcribe(model, piano),
            }
            line = []
            for k, est in rows.items():
                m, r, e = score(ref, est)
                t = totals[k]
                t[0] += m
                t[1] += r
                t[2] += e
                line.append(f"{2 * m / max(r + e, 1):.2f}")
            print(f"{os.path.basename(wav)} ({c['augment'][:60]}…): F1 vocal/BP {line[0]}, MIDI {line[1]}, piano/BP {line[2]}", flush=True)
    print(f"{len(clips)} clips, CLI options {extra or '(defaults)'}:")
    for k, (m, r, e) in totals.items():
        p, rc = m / max(e, 1), m / max(r, 1)
        print(f"  {k:<28} reference {r}, estimated {e}, matched {m}: P {p:.3f} R {rc:.3f} F1 {2 * m / max(r + e, 1):.3f}")


if __name__ == "__main__":
    main()
