//! Issue 6: automation *inside* host blocks through CLAP `param_value` events, in the real
//! `HummingFace.clap` driven by `hf-clap-host --automate SEED`: an event every 1..2N samples at
//! a random offset inside the block, each setting a random parameter (all of them, device
//! included) to a random value in its range.
//!
//! - Silent input stays silent (below −90 dBFS, no note) however the parameters jump, in real
//!   time and offline, for several block sizes: no click on silence.
//! - Sung input: output finite and bounded (< 8, the piano at +12 dB), notes still come out
//!   offline.
//! - The events are honoured at their sample (`Plugin::SAMPLE_ACCURATE_AUTOMATION`): the same
//!   automation schedule rendered offline in blocks of 64, 1000 and 4096 samples gives the same
//!   output. Without sample accuracy nice-plug applies every event of a block at the block's
//!   start, and the renders differ (the test was run that way first: see RELIABILITY.md).

use std::path::{Path, PathBuf};

use hummingface_tests::{read_wav, run_clap_host, scratch_dir, sung_melody, write_wav, Artifacts};

const SR: u32 = 48_000;
/// −90 dBFS.
const SILENCE: f32 = 3.162_277_7e-5;

fn artifacts() -> Artifacts {
    Artifacts::locate().unwrap_or_else(|e| panic!("{e:#}"))
}

fn melody_wav(dir: &Path, seconds: f32) -> PathBuf {
    let path = dir.join("melody.wav");
    let audio = sung_melody(
        &[(57.0, 0.2, 0.8), (62.0, 1.2, 0.6), (64.0, 2.0, 1.0), (60.0, 3.2, 0.6)],
        seconds,
        SR,
    );
    write_wav(&path, &[audio], SR).unwrap();
    path
}

fn peak(x: &[f32]) -> f32 {
    x.iter().fold(0.0f32, |m, v| m.max(v.abs()))
}

/// Runs the CLAP over `input` with `--automate seed`; returns the report and the output.
fn automated(a: &Artifacts, input: &Path, out: &Path, seed: u64, gap: u32, block: u32, offline: bool) -> (serde_json::Value, Vec<Vec<f32>>) {
    let (seed, gap, block) = (seed.to_string(), gap.to_string(), block.to_string());
    let mut args = vec!["--automate", &seed, "--automate-gap", &gap, "--block", &block];
    if offline {
        args.push("--offline");
    }
    let report = run_clap_host(&a.clap, input, out, &args).unwrap_or_else(|e| panic!("{e:#}{}", a.stale_note));
    let audio = read_wav(out).unwrap();
    (report, audio.channels)
}

#[test]
fn clap_param_events_inside_blocks_keep_silence_silent_and_singing_bounded() {
    let a = artifacts();
    let dir = scratch_dir("clap-automation");
    let silence = dir.join("silence.wav");
    write_wav(&silence, &[vec![0.0; 3 * SR as usize]], SR).unwrap();
    for (i, (block, offline)) in [(64u32, false), (517, true), (2048, false), (2048, true)].into_iter().enumerate() {
        let out = dir.join(format!("silence-out-{i}.wav"));
        let (report, channels) = automated(&a, &silence, &out, 100 + i as u64, 32, block, offline);
        let events = report["param_events"].as_u64().unwrap();
        let notes = report["notes"].as_array().map_or(0, Vec::len);
        let p = channels.iter().map(|c| peak(c)).fold(0.0, f32::max);
        eprintln!("silence, block {block}, offline {offline}: {events} parameter events inside blocks, peak {p:.3e}, {notes} note events");
        assert!(events > 3000, "only {events} parameter events were sent");
        assert!(channels.iter().flatten().all(|x| x.is_finite()), "non-finite output");
        assert!(p < SILENCE, "silent input, parameter events inside blocks: output peak {p:.3e} (above −90 dBFS)");
        assert_eq!(notes, 0, "silent input produced note events");
    }

    let melody = melody_wav(&dir, 4.0);
    for (i, (block, offline)) in [(512u32, true), (333, false)].into_iter().enumerate() {
        let out = dir.join(format!("melody-out-{i}.wav"));
        let (report, channels) = automated(&a, &melody, &out, 200 + i as u64, 48, block, offline);
        let events = report["param_events"].as_u64().unwrap();
        let notes = report["notes"].as_array().map_or(0, Vec::len);
        let p = channels.iter().map(|c| peak(c)).fold(0.0, f32::max);
        eprintln!("singing, block {block}, offline {offline}: {events} parameter events, peak {p:.3}, {notes} note events");
        assert!(events > 2000, "only {events} parameter events were sent");
        assert!(channels.iter().flatten().all(|x| x.is_finite()), "non-finite output");
        assert!(p < 8.0, "output peak {p} (bound: the piano at +12 dB)");
        assert!(p > 1e-3, "the plugin went silent under automation");
        if offline {
            assert!(notes > 0, "no notes came out under automation");
        }
    }
}

#[test]
fn clap_param_events_are_honoured_at_their_sample() {
    let a = artifacts();
    let dir = scratch_dir("clap-automation-accuracy");
    let melody = melody_wav(&dir, 4.0);
    // Sparse enough that most blocks of 4096 hold a few events: their position inside the block
    // is what is tested.
    let runs: Vec<(u32, Vec<Vec<f32>>)> = [64u32, 1000, 4096]
        .into_iter()
        .map(|block| {
            let out = dir.join(format!("out-{block}.wav"));
            let (report, channels) = automated(&a, &melody, &out, 7, 1500, block, true);
            assert!(report["param_events"].as_u64().unwrap() > 60);
            (block, channels)
        })
        .collect();
    let (_, reference) = &runs[0];
    for (block, channels) in &runs[1..] {
        let diff = channels
            .iter()
            .zip(reference)
            .flat_map(|(a, b)| a.iter().zip(b).map(|(x, y)| (x - y).abs()))
            .fold(0.0f32, f32::max);
        eprintln!("same automation, blocks {block} vs 64: largest difference {diff:.3e}");
        assert!(diff <= 1e-4, "blocks of {block} vs 64 with the same automation events differ by {diff}: events are not applied at their sample");
    }
}
