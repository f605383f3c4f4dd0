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

With `--soundfonts`, the CLI's MIDI file is also played by two sampled General MIDI pianos
(FluidR3 and TimGM6mb, Debian `fluid-soundfont-gm` and `timgm6mb-soundfont`, through the
`fluidsynth` command, reverb and chorus off) and Basic Pitch transcribes those too: is what it
hears in our piano our piano's doing, or the transcriber's? For every piano it also prints the
score against the CLI's own notes and how many unmatched transcribed notes lie an octave above
one of them, at its onset (± 50 ms).

Basic Pitch needs TensorFlow: run with a venv made by
  python3 -m venv /tmp/bp && /tmp/bp/bin/pip install basic-pitch mir_eval pretty_midi
usage: /tmp/bp/bin/python tools/heard-back.py DIR [--cli target/release/hummingface] [--soundfonts] [-- EXTRA...]
"""
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import mir_eval
from basic_pitch import ICASSP_2022_MODEL_PATH
from basic_pitch.inference import Model, predict


def matches(ref, est):
    """Matched (reference, estimated) index pairs: mir_eval's note matching, offsets ignored."""
    if not ref or not est:
        return []
    ri = np.array([[t, t + 0.1] for t, _ in ref])
    ei = np.array([[t, t + 0.1] for t, _ in est])
    rp = mir_eval.util.midi_to_hz(np.array([m for _, m in ref], dtype=float))
    ep = mir_eval.util.midi_to_hz(np.array([m for _, m in est], dtype=float))
    return mir_eval.transcription.match_notes(ri, rp, ei, ep, onset_tolerance=0.05, pitch_tolerance=50.0, offset_ratio=None)


def score(ref, est):
    """Matched, reference and estimated counts."""
    return len(matches(ref, est)), len(ref), len(est)


SOUNDFONTS = {
    "FluidR3 (fluidsynth)": "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "TimGM6mb (fluidsynth)": "/usr/share/sounds/sf2/TimGM6mb.sf2",
}


def octave_extras(midi, heard, pairs):
    """Transcribed notes not in `pairs` (their matches with `midi`) that lie an octave above one of
    `midi`, at its onset."""
    got = {j for _, j in pairs}
    return sum(1 for j, (t, p) in enumerate(heard) if j not in got and any(abs(t - s) <= 0.05 and abs(p - q - 12) < 0.5 for s, q in midi))


def transcribe(model, path):
    _, _, events = predict(path, model)
    return sorted((float(s), float(p)) for s, _, p, _, _ in events)


def main():
    args = sys.argv[1:]
    extra = args[args.index("--") + 1:] if "--" in args else []
    args = args[:args.index("--")] if "--" in args else args
    d = args[0]
    cli = args[args.index("--cli") + 1] if "--cli" in args else "target/release/hummingface"
    fonts = {}
    if "--soundfonts" in args:
        if shutil.which("fluidsynth") is None:
            sys.exit("--soundfonts needs the fluidsynth command: apt-get install fluidsynth")
        fonts = dict(SOUNDFONTS)
        for f in fonts.values():
            if not os.path.exists(f):
                sys.exit(f"--soundfonts: {f} is missing (apt-get install fluid-soundfont-gm timgm6mb-soundfont)")
        import pretty_midi
    model = Model(ICASSP_2022_MODEL_PATH)
    pianos = ["piano audio, Basic Pitch", *(f"{k}, Basic Pitch" for k in fonts)]
    totals = {k: [0, 0, 0] for k in ("vocal, Basic Pitch", "MIDI (hummingface render)", *pianos)}
    # Against the CLI's own notes: matched, CLI notes, transcribed notes, octave-above extras.
    against_midi = {k: [0, 0, 0, 0] for k in pianos}
    clips = sorted(glob.glob(os.path.join(d, "clip*.wav")))
    with tempfile.TemporaryDirectory() as tmp:
        for wav in clips:
            c = json.load(open(wav[:-4] + ".json"))
            ref = [(t, m) for t, m in c["ref"]]
            piano = os.path.join(tmp, "piano.wav")
            mid = os.path.join(tmp, "notes.mid")
            out = subprocess.run([cli, "render", wav, "-o", piano, "--mix", "1", "--json", "--midi", mid, *extra], check=True, capture_output=True, text=True).stdout
            report = json.loads(out.strip().splitlines()[-1])
            midi = [(n["start_s"], n["note"]) for n in report["notes"]]
            rows = {
                "vocal, Basic Pitch": transcribe(model, wav),
                "MIDI (hummingface render)": midi,
                "piano audio, Basic Pitch": transcribe(model, piano),
            }
            if fonts:
                # The MIDI file's own times (the JSON's are the same notes; the file is what a
                # user takes to another instrument).
                file_notes = sorted((n.start, n.pitch) for i in pretty_midi.PrettyMIDI(mid).instruments for n in i.notes)
                for k, font in fonts.items():
                    played = os.path.join(tmp, "font.wav")
                    subprocess.run(["fluidsynth", "-ni", "-R", "0", "-C", "0", "-g", "0.5", "-r", "44100", "-F", played, font, mid], check=True, capture_output=True)
                    rows[f"{k}, Basic Pitch"] = transcribe(model, played)
                for k in pianos:
                    pairs = matches(file_notes, rows[k])
                    a = against_midi[k]
                    a[0] += len(pairs)
                    a[1] += len(file_notes)
                    a[2] += len(rows[k])
                    a[3] += octave_extras(file_notes, rows[k], pairs)
            line = []
            for k, est in rows.items():
                m, r, e = score(ref, est)
                t = totals[k]
                t[0] += m
                t[1] += r
                t[2] += e
                line.append(f"{2 * m / max(r + e, 1):.2f}")
            print(f"{os.path.basename(wav)} ({c['augment'][:60]}…): F1 vocal/BP {line[0]}, MIDI {line[1]}, " + ", ".join(f"{k.split(',')[0]}/BP {v}" for k, v in zip(pianos, line[2:])), flush=True)
    print(f"{len(clips)} clips, CLI options {extra or '(defaults)'}:")
    for k, (m, r, e) in totals.items():
        p, rc = m / max(e, 1), m / max(r, 1)
        print(f"  {k:<36} reference {r}, estimated {e}, matched {m}: P {p:.3f} R {rc:.3f} F1 {2 * m / max(r + e, 1):.3f}")
    if fonts:
        print("against the CLI's own notes (what each piano plays):")
        for k, (m, r, e, o) in against_midi.items():
            p, rc = m / max(e, 1), m / max(r, 1)
            print(f"  {k:<36} notes {r}, transcribed {e}, matched {m}: P {p:.3f} R {rc:.3f} F1 {2 * m / max(r + e, 1):.3f}; unmatched an octave above a note's onset: {o}")


if __name__ == "__main__":
    main()
