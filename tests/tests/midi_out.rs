//! The plugin's MIDI output in a real CLAP host equals the CLI's `--midi` file.
//!
//! `hf-clap-host --midi` collects the CLAP note events the plugin puts on its output event list
//! and writes them as a format-0 SMF (120 bpm, 480 ticks per quarter) with the reported latency
//! taken off; `hummingface render --midi --listener trained --notes live` writes the notes of the
//! offline render with the plugin's defaults. Same notes,
//! onsets and releases within one hop (6 ms).
//!
//! Needs the bundles and release binaries (see tests/hosts.rs).

use std::process::Command;

use hummingface_tests::*;

/// One analysis hop of the engine, the timing resolution of its notes.
const HOP_S: f64 = 0.006;
const SR: u32 = 48_000;

#[test]
fn clap_note_output_equals_cli_midi_file() {
    let a = Artifacts::locate().unwrap_or_else(|e| panic!("{e:#}"));
    let dir = scratch_dir("midi-out");
    let input = dir.join("melody.wav");
    // A3 C4 E4 D4 G3, with rests, consonant onsets on every other note.
    let x = sung_melody(
        &[
            (57.0, 0.25, 0.6),
            (60.0, 1.0, 0.45),
            (64.0, 1.6, 0.5),
            (62.0, 2.4, 0.8),
            (55.0, 3.5, 0.7),
        ],
        4.6,
        SR,
    );
    write_wav(&input, &[x], SR).unwrap();

    let cli_mid = dir.join("cli.mid");
    let mut cmd = Command::new(&a.cli);
    cmd.arg("render")
        .arg(&input)
        .arg("-o")
        .arg(dir.join("cli.wav"))
        .arg("--midi")
        .arg(&cli_mid)
        // The plugin's defaults: the network listener, notes placed live.
        .args(["--listener", "trained", "--notes", "live"]);
    run_with_timeout(&mut cmd, CHILD_TIMEOUT, "hummingface render --midi")
        .and_then(|d| d.check("hummingface render --midi"))
        .unwrap_or_else(|e| panic!("{e:#}"));

    let clap_mid = dir.join("clap.mid");
    let clap_mid_s = clap_mid.to_str().unwrap();
    // --flush: keep processing for the latency after the input so the last notes' events come out.
    let report = run_clap_host(
        &a.clap,
        &input,
        &dir.join("clap.wav"),
        &[
            "--offline",
            "--flush",
            "--block",
            "256",
            "--midi",
            clap_mid_s,
        ],
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    let events = report["notes"].as_array().map_or(0, Vec::len);
    assert!(
        events > 0,
        "the CLAP emitted no note events on its output event list: {report}"
    );

    let cli = read_midi_notes(&cli_mid).unwrap();
    let host = read_midi_notes(&clap_mid).unwrap();
    eprintln!("CLI notes:  {cli:?}\nCLAP notes: {host:?}");
    assert!(!cli.is_empty(), "the CLI wrote no notes for a sung melody");
    let input_end = 4.6;
    assert_eq!(
        cli.iter().map(|n| n.key).collect::<Vec<_>>(),
        host.iter().map(|n| n.key).collect::<Vec<_>>(),
        "the CLAP's note keys differ from the CLI's"
    );
    for (i, (c, h)) in cli.iter().zip(&host).enumerate() {
        assert!(
            (c.start_s - h.start_s).abs() <= HOP_S,
            "note {i} (key {}): onset {:.4} s in the CLI file, {:.4} s from the CLAP",
            c.key,
            c.start_s,
            h.start_s
        );
        // A note still held when the input ends is closed differently by the two (or not at
        // all by a host that stops); compare releases inside the input.
        if c.end_s < input_end - HOP_S {
            assert!(
                (c.end_s - h.end_s).abs() <= HOP_S,
                "note {i} (key {}): release {:.4} s in the CLI file, {:.4} s from the CLAP",
                c.key,
                c.end_s,
                h.end_s
            );
        }
        assert!(
            (c.velocity as i32 - h.velocity as i32).abs() <= 1,
            "note {i} (key {}): velocity {} in the CLI file, {} from the CLAP",
            c.key,
            c.velocity,
            h.velocity
        );
    }
}
