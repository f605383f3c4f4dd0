//! `hummingface render-midi`: a Standard MIDI File played on the pianist through the engine.
//! Notes sound where the file puts them, louder for higher velocity, the sustain pedal holds
//! them after their note-offs, and bad files fail with one clear line and leave nothing behind.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use hummingface_tests::{read_wav, run_with_timeout, scratch_dir, Artifacts};
use midly::num::{u15, u24, u28, u4, u7};
use midly::{Format, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind};

const SR: u32 = 48000;

/// A format-0 file at 120 bpm, 480 ticks per quarter (960 ticks per second) from
/// `(seconds, message)` pairs.
fn smf(events: &[(f64, MidiMessage)], path: &Path) {
    let mut track = vec![TrackEvent { delta: u28::new(0), kind: TrackEventKind::Meta(MetaMessage::Tempo(u24::new(500_000))) }];
    let mut last = 0u32;
    for &(s, message) in events {
        let tick = (s * 960.0).round() as u32;
        track.push(TrackEvent { delta: u28::new(tick - last), kind: TrackEventKind::Midi { channel: u4::new(0), message } });
        last = tick;
    }
    track.push(TrackEvent { delta: u28::new(0), kind: TrackEventKind::Meta(MetaMessage::EndOfTrack) });
    let mut f = Smf::new(Header::new(Format::SingleTrack, Timing::Metrical(u15::new(480))));
    f.tracks.push(track);
    let mut bytes = Vec::new();
    f.write_std(&mut bytes).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn on(key: u8, vel: u8) -> MidiMessage {
    MidiMessage::NoteOn { key: u7::new(key), vel: u7::new(vel) }
}
fn off(key: u8) -> MidiMessage {
    MidiMessage::NoteOff { key: u7::new(key), vel: u7::new(64) }
}
fn pedal(down: bool) -> MidiMessage {
    MidiMessage::Controller { controller: u7::new(64), value: u7::new(if down { 127 } else { 0 }) }
}

fn render(cli: &Path, args: &[&str]) -> hummingface_tests::Finished {
    run_with_timeout(Command::new(cli).arg("render-midi").args(args), Duration::from_secs(120), "hummingface render-midi").unwrap()
}

/// RMS in dB of `x[from_s..to_s]`.
fn level_db(x: &[f32], from_s: f64, to_s: f64) -> f64 {
    let a = ((from_s * SR as f64) as usize).min(x.len());
    let b = ((to_s * SR as f64) as usize).min(x.len());
    let e: f64 = x[a..b].iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / (b - a).max(1) as f64;
    10.0 * (e + 1e-20).log10()
}

/// First time the 1 ms RMS envelope after `from_s` rises above `db`.
fn onset_s(x: &[f32], from_s: f64, db: f64) -> f64 {
    let w = (SR / 1000) as usize;
    let mut i = (from_s * SR as f64) as usize;
    while i + w < x.len() {
        if level_db(x, i as f64 / SR as f64, (i + w) as f64 / SR as f64) > db {
            return i as f64 / SR as f64;
        }
        i += w / 4;
    }
    f64::NAN
}

#[test]
fn a_midi_file_plays_on_time_with_velocity_and_pedal() {
    let a = Artifacts::locate().unwrap();
    let dir = scratch_dir("render_midi");
    for pianist in ["trained", "v0"] {
        let mid = dir.join("song.mid");
        // A soft C4, a loud C4, then a G4 under the pedal (released at 2.6 s, pedal up at
        // 3.6 s) and the same G4 without the pedal (released at 4.6 s).
        smf(
            &[
                (0.5, on(60, 30)),
                (0.9, off(60)),
                (1.0, on(60, 120)),
                (1.4, off(60)),
                (2.0, pedal(true)),
                (2.2, on(67, 90)),
                (2.6, off(67)),
                (3.6, pedal(false)),
                (4.2, on(67, 90)),
                (4.6, off(67)),
            ],
            &mid,
        );
        let wav = dir.join(format!("song-{pianist}.wav"));
        let res = render(&a.cli, &[mid.to_str().unwrap(), "-o", wav.to_str().unwrap(), "--json", "--pianist", pianist, "--tail", "1"]);
        assert!(res.status.success(), "{pianist}: {}", res.stderr);
        let report: serde_json::Value = serde_json::from_str(res.stdout.trim()).unwrap();
        assert_eq!(report["notes"], 4);
        assert_eq!(report["pedal_events"], 2);
        assert_eq!(report["pianist"], pianist);
        let audio = read_wav(&wav).unwrap();
        assert_eq!(audio.sample_rate, SR);
        let x = audio.mono();
        assert_eq!(x.len(), (5.6 * SR as f64).round() as usize, "{pianist}: length");
        assert!(x.iter().all(|v| v.is_finite()));
        // Silence before the first note; each onset within 5 ms of the file's time (the
        // engine places notes to half a hop, 2.7 ms at 48 kHz).
        assert!(level_db(&x, 0.0, 0.45) < -90.0, "{pianist}: sound before the first note");
        let silence_floor = level_db(&x, 0.6, 0.8) - 40.0;
        for t in [0.5, 2.2, 4.2] {
            let o = onset_s(&x, t - 0.05, silence_floor.max(-70.0));
            eprintln!("{pianist}: note at {t:.3} s starts at {o:.4} s");
            assert!((o - t).abs() < 0.005, "{pianist}: note at {t} s starts at {o} s");
        }
        // Velocity: the loud C4 is louder than the soft one.
        let soft = level_db(&x, 0.5, 0.85);
        let loud = level_db(&x, 1.0, 1.35);
        eprintln!("{pianist}: soft {soft:.1} dB, loud {loud:.1} dB");
        assert!(loud > soft + 6.0, "{pianist}: loud {loud:.1} dB vs soft {soft:.1} dB");
        // Pedal: 0.4–0.9 s after its note-off the pedalled G4 still rings; the unpedalled
        // one is damped. After the pedal lifts the pedalled one is damped too.
        let held = level_db(&x, 3.0, 3.5);
        let damped = level_db(&x, 5.0, 5.5);
        let after_pedal = level_db(&x, 4.0, 4.15);
        eprintln!("{pianist}: pedalled {held:.1} dB, unpedalled {damped:.1} dB, after the pedal lifts {after_pedal:.1} dB");
        assert!(held > damped + 20.0, "{pianist}: pedal held {held:.1} dB vs damped {damped:.1} dB");
        assert!(after_pedal < held - 20.0, "{pianist}: still {after_pedal:.1} dB after the pedal lifted");
    }
}

#[test]
fn bad_midi_files_fail_clearly_and_leave_nothing_behind() {
    let a = Artifacts::locate().unwrap();
    let dir = scratch_dir("render_midi_errors");
    let wav_named_mid = dir.join("vocal.mid");
    std::fs::write(&wav_named_mid, b"RIFF\x24\0\0\0WAVEfmt ").unwrap();
    let empty = dir.join("empty.mid");
    std::fs::write(&empty, b"").unwrap();
    let no_notes = dir.join("no-notes.mid");
    smf(&[(0.5, pedal(true))], &no_notes);
    let good = dir.join("good.mid");
    smf(&[(0.1, on(60, 100)), (0.3, off(60))], &good);
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("missing file", vec!["/nonexistent/song.mid"]),
        ("WAV named .mid", vec![wav_named_mid.to_str().unwrap()]),
        ("empty file", vec![empty.to_str().unwrap()]),
        ("no notes", vec![no_notes.to_str().unwrap()]),
        ("rate 4000", vec![good.to_str().unwrap(), "--rate", "4000"]),
        ("unknown pianist", vec![good.to_str().unwrap(), "--pianist", "harpsichord"]),
    ];
    for (what, args) in cases {
        let out = dir.join(format!("out-{}.wav", what.replace(' ', "-")));
        let mut full = args.clone();
        let out_s = out.to_str().unwrap().to_string();
        full.extend(["-o", &out_s]);
        let res = render(&a.cli, &full);
        res.assert_failed_cleanly(what, &out);
    }
    let out = dir.join("good.wav");
    let res = render(&a.cli, &[good.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(res.status.success(), "{}", res.stderr);
    assert!(out.exists());
}
