//! Presets and pictures through the real binaries and hosts: every factory preset renders a sung
//! melody through the CLI (`--preset`) with the settings it holds and saves back equal; bad
//! presets fail with one clear line; the VST3 in pedalboard loads a state saved by HummingFace
//! 0.1.0 (state version 1); `render --png` draws the sung pitch over the notes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use hummingface::presets::{Preset, FACTORY};
use hummingface_tests::*;

const SR: u32 = 48_000;

fn artifacts() -> Artifacts {
    Artifacts::locate().unwrap_or_else(|e| panic!("{e:#}"))
}

/// A3 C4 E4 D4 G4 E4, sung with rests.
fn melody_wav(dir: &Path) -> PathBuf {
    let path = dir.join("melody.wav");
    let x = sung_melody(
        &[(57.0, 0.25, 0.7), (60.0, 1.1, 0.5), (64.0, 1.75, 0.6), (62.0, 2.5, 0.8), (67.0, 3.5, 0.6), (64.0, 4.3, 0.9)],
        5.5,
        SR,
    );
    write_wav(&path, &[x], SR).unwrap();
    path
}

fn cli(a: &Artifacts, args: &[&str], env: &[(&str, &Path)]) -> Finished {
    let mut cmd = Command::new(&a.cli);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_with_timeout(&mut cmd, CHILD_TIMEOUT, "hummingface").unwrap_or_else(|e| panic!("{e:#}"))
}

fn notes_of(report: &serde_json::Value) -> Vec<(f64, f64, u8)> {
    report["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["start_s"].as_f64().unwrap(), n["end_s"].as_f64().unwrap(), n["note"].as_u64().unwrap() as u8))
        .collect()
}

#[test]
fn every_factory_preset_renders_through_the_cli_and_saves_back_equal() {
    let a = artifacts();
    let dir = scratch_dir("presets-render");
    let input = melody_wav(&dir);
    let empty = dir.join("no-user-presets");
    let mut reports: std::collections::BTreeMap<&str, (serde_json::Value, Audio)> = std::collections::BTreeMap::new();
    for (stem, json) in FACTORY {
        let out = dir.join(format!("{stem}.wav"));
        let done = cli(
            &a,
            &["render", input.to_str().unwrap(), "-o", out.to_str().unwrap(), "--preset", stem, "--json"],
            &[("HUMMINGFACE_PRESET_DIR", &empty)],
        )
        .check(&format!("render --preset {stem}"))
        .unwrap_or_else(|e| panic!("{e:#}"));
        let report = parse_last_json(&done.stdout).unwrap();
        // The settings the render used, saved as a preset, are the factory file.
        let factory = Preset::parse(stem, json).unwrap();
        let used: Preset = serde_json::from_value(report["settings"].clone()).unwrap();
        assert_eq!(used.params, factory.params, "{stem}: rendered with other settings");
        let saved_back = Preset::from_sound(&factory.name, &factory.description, &used.sound(stem).unwrap());
        assert_eq!(saved_back.to_json(), json, "{stem}: does not save back equal");
        assert_eq!(report["preset"].as_str(), Some(factory.name.as_str()));

        let audio = read_wav(&out).unwrap();
        let notes = notes_of(&report);
        eprintln!("{stem}: {} notes {:?}, rms {:.4}", notes.len(), notes.iter().map(|n| n.2).collect::<Vec<_>>(), rms(&audio.mono()));
        assert!(notes.len() >= 4, "{stem}: {} notes from six sung ones", notes.len());
        assert!(rms(&audio.mono()) > 0.005, "{stem}: the piano is (almost) silent");
        reports.insert(stem, (report, audio));
    }

    // Each preset does what it says, on the same singing.
    let notes = |stem: &str| notes_of(&reports[stem].0);
    let pitches = |stem: &str| notes(stem).iter().map(|n| n.2).collect::<Vec<_>>();
    // An octave up: every note 12 semitones above the natural grand's.
    let grand: Vec<u8> = pitches("natural-grand");
    let up: Vec<u8> = pitches("low-voice-octave-up");
    assert_eq!(up.len(), grand.len());
    assert!(up.iter().zip(&grand).all(|(u, g)| *u == g + 12), "octave up: {up:?} vs {grand:?}");
    // A minor pentatonic: only A C D E G.
    let penta = pitches("pentatonic-a-minor");
    assert!(penta.iter().all(|n| [9, 0, 2, 4, 7].contains(&(n % 12))), "pentatonic: {penta:?}");
    // Staccato's quick damper: the piano dies away sooner after the last note than the ballad's.
    let tail_energy = |stem: &str| {
        let (report, audio) = &reports[stem];
        let last_end = notes_of(report).iter().map(|n| n.1).fold(0.0, f64::max);
        let from = ((last_end + 0.15) * f64::from(SR)) as usize;
        let x = audio.mono();
        rms(&x[from.min(x.len())..])
    };
    let (staccato, ballad) = (tail_energy("staccato"), tail_energy("soft-ballad"));
    eprintln!("rms after the last note + 150 ms: staccato {staccato:.5}, soft ballad {ballad:.5}");
    assert!(staccato < ballad * 0.5, "staccato tail {staccato} is not shorter than the ballad's {ballad}");
}

#[test]
fn presets_are_listed_and_bad_ones_fail_with_one_clear_line() {
    let a = artifacts();
    let dir = scratch_dir("presets-errors");
    let input = melody_wav(&dir);
    let user = dir.join("user");
    std::fs::create_dir_all(&user).unwrap();
    // A user preset (as the editor saves them) and a broken file beside it.
    let mine = Preset::parse("x", FACTORY[1].1).unwrap();
    let mine = Preset { name: "My ballad".into(), ..mine };
    std::fs::write(user.join("my-ballad.json"), mine.to_json()).unwrap();
    std::fs::write(user.join("broken.json"), "{\"name\": \"Broken\", \"version\": 2, \"params\": {\"mix\": 3}}").unwrap();

    let listed = cli(&a, &["presets", "--json"], &[("HUMMINGFACE_PRESET_DIR", &user)])
        .check("presets --json")
        .unwrap_or_else(|e| panic!("{e:#}"));
    let list = parse_last_json(&listed.stdout).unwrap();
    let ids: Vec<&str> = list["presets"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
    let mut want: Vec<&str> = FACTORY.iter().map(|(s, _)| *s).collect();
    want.push("my-ballad");
    assert_eq!(ids, want);
    assert!(listed.stderr.contains("broken.json"), "the broken preset is not reported: {}", listed.stderr);

    let out = dir.join("out.wav");
    let failed_out = dir.join("failed.wav");
    let render = |preset: &str| {
        cli(
            &a,
            &["render", input.to_str().unwrap(), "-o", failed_out.to_str().unwrap(), "--preset", preset, "--json"],
            &[("HUMMINGFACE_PRESET_DIR", &user)],
        )
    };
    // A user preset by name, and options overriding it.
    let done = cli(
        &a,
        &["render", input.to_str().unwrap(), "-o", out.to_str().unwrap(), "--preset", "My ballad", "--mix", "0.25", "--json"],
        &[("HUMMINGFACE_PRESET_DIR", &user)],
    )
    .check("render --preset 'My ballad'")
    .unwrap_or_else(|e| panic!("{e:#}"));
    let settings = &parse_last_json(&done.stdout).unwrap()["settings"]["params"];
    assert_eq!(settings["mix"].as_f64(), Some(0.25));
    assert_eq!(settings["release"].as_f64(), Some(1200.0));

    let broken = user.join("broken.json");
    for (preset, want) in [
        ("no-such-preset", "no preset named 'no-such-preset'"),
        (broken.to_str().unwrap(), "broken.json: not a HummingFace preset"),
        ("/nonexistent/folder/x.json", "/nonexistent/folder/x.json: "),
    ] {
        let done = render(preset);
        assert_eq!(done.status.code(), Some(1), "--preset {preset}: {}", done.stderr);
        let lines: Vec<&str> = done.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "--preset {preset}: {}", done.stderr);
        assert!(lines[0].starts_with("error: ") && lines[0].contains(want), "--preset {preset}: {:?}", lines[0]);
        assert!(!done.stderr.contains("panicked"));
    }
    assert!(!failed_out.exists(), "a failed render left an output");
}

/// JUCE's base64 variant (MemoryBlock::toBase64Encoding), which pedalboard's `raw_state` uses
/// for the VST3 component state: `<size>.<chars>`, 6 bits per character, least significant bit
/// first.
fn juce_base64_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b".ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+";
    let (size, chars) = s.split_once('.').expect("size prefix");
    let size: usize = size.parse().unwrap();
    let mut out = vec![0u8; size];
    for (i, c) in chars.bytes().enumerate() {
        let v = ALPHABET.iter().position(|&a| a == c).expect("JUCE base64 character");
        for b in 0..6 {
            let bit = i * 6 + b;
            if v >> b & 1 == 1 && bit / 8 < size {
                out[bit / 8] |= 1 << (bit % 8);
            }
        }
    }
    out
}

/// The component state (the plugin's own JSON) inside a pedalboard `raw_state` blob.
fn component_state(blob: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(blob);
    let start = text.find("<IComponent>").expect("IComponent in the VST3 state") + "<IComponent>".len();
    let end = text.find("</IComponent>").unwrap();
    serde_json::from_slice(&juce_base64_decode(&text[start..end])).unwrap()
}

#[test]
fn vst3_in_pedalboard_loads_a_state_saved_by_version_0_1_0() {
    let a = artifacts();
    let dir = scratch_dir("presets-old-state");
    let old = workspace_root().join("tests").join("data").join("hummingface-0.1.0.vst3state");
    let old_json = component_state(&std::fs::read(&old).unwrap());
    assert_eq!(old_json["fields"]["state-version"], "1");
    let saved = dir.join("saved.vst3state");
    let python = pedalboard_python().unwrap_or_else(|e| panic!("{e:#}"));
    let script = r#"
import json, sys
import numpy as np
import pedalboard
plugin = pedalboard.load_plugin(sys.argv[1])
plugin.raw_state = open(sys.argv[2], "rb").read()
plugin.process(np.zeros((1, 4800), dtype=np.float32), 48000)
open(sys.argv[3], "wb").write(plugin.raw_state)
print(json.dumps({name: str(getattr(plugin, name)) for name in plugin.parameters}))
"#;
    let done = run_with_timeout(
        Command::new(python).arg("-c").arg(script).arg(&a.vst3).arg(&old).arg(&saved),
        Duration::from_secs(120),
        "pedalboard",
    )
    .and_then(|d| d.check("pedalboard raw_state"))
    .unwrap_or_else(|e| panic!("{e:#}"));
    let values = parse_last_json(&done.stdout).unwrap();
    eprintln!("parameters after loading the 0.1.0 state: {values}");
    // What the 0.1.0 state held: key D, natural minor, +3, release 800 ms, mix 75 %, −2.5 dB,
    // sensitivity 62 %.
    for (name, want) in [
        ("key", "D"),
        ("scale", "Natural minor"),
        ("transpose_st", "3"),
        ("release_ms", "800"),
        ("mix", "75"),
        ("gain_db", "-2.5"),
        ("sensitivity", "62"),
    ] {
        let got = values[name].as_str().unwrap_or_default();
        assert!(got.starts_with(want), "{name}: {got:?}, the 0.1.0 state says {want}");
    }
    // Saved again, it is a current-version state with the same parameters, plus the listener,
    // note timing and bypass parameters (added later) at what 0.1.0 played with.
    let mut new_json = component_state(&std::fs::read(&saved).unwrap());
    assert_eq!(new_json["fields"]["state-version"], hummingface::STATE_VERSION.to_string());
    let listener = new_json["params"].as_object_mut().unwrap().remove("listener");
    assert_eq!(listener, Some(serde_json::json!({"string": "classic"})));
    let timing = new_json["params"].as_object_mut().unwrap().remove("timing");
    assert_eq!(timing, Some(serde_json::json!({"string": "live"})));
    let bypass = new_json["params"].as_object_mut().unwrap().remove("bypass");
    assert_eq!(bypass, Some(serde_json::json!({"bool": false})));
    assert_eq!(new_json["params"], old_json["params"]);
    assert!(new_json["fields"]["editor-size"].is_string());
}

#[test]
fn render_png_draws_the_sung_pitch_over_the_notes() {
    let a = artifacts();
    let dir = scratch_dir("presets-png");
    let input = melody_wav(&dir);
    let (out, png) = (dir.join("out.wav"), dir.join("roll.png"));
    let done = cli(
        &a,
        &["render", input.to_str().unwrap(), "-o", out.to_str().unwrap(), "--png", png.to_str().unwrap(), "--json"],
        &[],
    )
    .check("render --png")
    .unwrap_or_else(|e| panic!("{e:#}"));
    let report = parse_last_json(&done.stdout).unwrap();
    let notes = notes_of(&report);
    assert!(notes.len() >= 4);

    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    let (w, h) = (info.width as usize, info.height as usize);
    let px = |x: usize, y: usize| {
        let i = (y * w + x) * 3;
        [buf[i], buf[i + 1], buf[i + 2]]
    };
    const NOTE: [u8; 3] = [0xf5, 0xa6, 0x23];
    const PITCH: [u8; 3] = [0x4f, 0xd1, 0xff];
    // Per column: where the notes and the curve are.
    let (mut note_cols, mut pitch_cols, mut near, mut far) = (0, 0, 0, 0);
    for x in 0..w {
        let note_ys: Vec<usize> = (0..h).filter(|&y| px(x, y) == NOTE).collect();
        let pitch_ys: Vec<usize> = (0..h).filter(|&y| px(x, y) == PITCH).collect();
        note_cols += usize::from(!note_ys.is_empty());
        pitch_cols += usize::from(!pitch_ys.is_empty());
        if let (Some(&py), false) = (pitch_ys.first(), note_ys.is_empty()) {
            // The curve runs over its note: within a few rows (rows are ≥ 20 px here).
            let d = note_ys.iter().map(|&ny| ny.abs_diff(py)).min().unwrap();
            if d <= 40 { near += 1 } else { far += 1 }
        }
    }
    eprintln!("{w}x{h}: {note_cols} columns with notes, {pitch_cols} with the pitch curve; curve over a note in {near}, away in {far}");
    assert!(note_cols > w / 4, "notes drawn in only {note_cols} columns");
    assert!(pitch_cols > w / 4, "pitch curve in only {pitch_cols} columns");
    assert!(near > 10 * far.max(1), "the curve is not over the notes: {near} near, {far} away");

    // Written whole or not at all: a missing folder fails and leaves nothing behind.
    let bad = dir.join("missing").join("roll.png");
    let done = cli(&a, &["render", input.to_str().unwrap(), "-o", out.to_str().unwrap(), "--png", bad.to_str().unwrap()], &[]);
    assert_eq!(done.status.code(), Some(1));
    assert!(done.stderr.starts_with("error: ") && done.stderr.contains("does not exist"), "{}", done.stderr);
}
