//! HummingFace in real hosts: pedalboard (JUCE) for the VST3, our clack-based `hf-clap-host` for
//! the CLAP, the `hummingface` CLI, and the standalone binary on the dummy and JACK backends.
//!
//! Needs the bundles and release binaries:
//!     cargo build --workspace --release && cargo xtask bundle hummingface --release
//! and the Python venv with pedalboard (made on first use by tests/hosts/setup_venv.sh).
//! Run: cargo nextest run --release -p hummingface-tests

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use hummingface_tests::pitch::dominant_fundamental;
use hummingface_tests::*;

/// Sample rate of the test signals (a common DAW rate that is not the CLI demo's 44.1 kHz).
const SR: u32 = 48_000;
/// A3, the sung and expected note.
const A3: f32 = 57.0;

fn artifacts() -> Artifacts {
    Artifacts::locate().unwrap_or_else(|e| panic!("{e:#}"))
}

/// Writes the sung A3 test vocal: 3 s, the note from 0.3 s to 2.5 s. Returns its path.
fn sung_a3_wav(dir: &Path) -> PathBuf {
    let path = dir.join("sung_a3.wav");
    let x = sung_note(A3, 0.3, 2.2, 3.0, SR);
    assert!(
        rms(&x) > 0.01,
        "the Singer produced (almost) silence: rms {}",
        rms(&x)
    );
    write_wav(&path, &[x], SR).unwrap();
    path
}

/// Writes a short sung melody (A3 C4 E4 D4 with rests and consonants) for the exactness tests.
fn sung_melody_wav(dir: &Path) -> PathBuf {
    let path = dir.join("sung_melody.wav");
    let x = sung_melody(
        &[
            (57.0, 0.25, 0.7),
            (60.0, 1.1, 0.5),
            (64.0, 1.75, 0.6),
            (62.0, 2.6, 0.9),
        ],
        4.0,
        SR,
    );
    write_wav(&path, &[x], SR).unwrap();
    path
}

/// Asserts that `out` (a host's rendering of the sung A3) is a piano playing A3: finite, loud
/// enough, not the dry vocal (at any lag up to `latency` + 50 ms), and its dominant fundamental
/// is A3.
fn assert_plays_a3(host: &str, out: &Audio, input: &Audio, latency: usize) {
    assert_eq!(
        out.sample_rate, input.sample_rate,
        "{host}: output rate differs from input rate"
    );
    for (c, ch) in out.channels.iter().enumerate() {
        assert!(
            ch.iter().all(|v| v.is_finite()),
            "{host}: channel {c} has NaN/inf samples"
        );
        let peak = ch.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(
            peak <= 4.0,
            "{host}: channel {c} peaks at {peak}, a broken mix or gain"
        );
    }
    let mono = out.mono();
    let level = rms(&mono);
    assert!(
        level > 1e-3,
        "{host}: output is (nearly) silent, rms {level:.2e}; no piano was played"
    );

    // Not the dry vocal passed through (mix defaults to 1 = piano only): the output must not be
    // a scaled, delayed copy of the input at any lag up to the latency + 50 ms.
    let dry = input.mono();
    let (xc, lag) = max_normalised_xcorr(&mono, &dry, 0..=latency + SR as usize / 20);
    assert!(
        xc < 0.6,
        "{host}: the output correlates {xc:.3} with the dry vocal at lag {lag}: it sounds like the vocal, not a piano"
    );

    let p = dominant_fundamental(&mono, out.sample_rate)
        .unwrap_or_else(|| panic!("{host}: no pitch found in the output (rms {level:.3e})"));
    eprintln!(
        "{host}: dominant fundamental {:.1} Hz = midi {:.2}, evidence {p:?}",
        p.f0_hz, p.midi
    );
    assert!(
        (p.midi - A3 as f64).abs() < 0.5,
        "{host}: the piano's dominant fundamental is {:.1} Hz (midi {:.2}), expected A3 = 220 Hz (midi 57); {p:?}",
        p.f0_hz,
        p.midi
    );
}

fn report_u64(r: &serde_json::Value, key: &str, who: &str) -> u64 {
    r[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{who} report has no integer {key:?}: {r}"))
}

/// Runs `hummingface render` with `--json` (plus `extra`) and returns its report.
fn run_cli(a: &Artifacts, input: &Path, output: &Path, extra: &[&str]) -> serde_json::Value {
    let mut cmd = Command::new(&a.cli);
    cmd.arg("render")
        .arg(input)
        .arg("-o")
        .arg(output)
        .arg("--json")
        .args(extra);
    let done = run_with_timeout(&mut cmd, CHILD_TIMEOUT, "hummingface render")
        .and_then(|d| d.check("hummingface render"))
        .unwrap_or_else(|e| panic!("{e:#}"));
    parse_last_json(&done.stdout).unwrap_or_else(|e| panic!("hummingface render --json: {e:#}"))
}

// ------------------------------------------------------------------------------------------------
// (a) artifacts
// ------------------------------------------------------------------------------------------------

#[test]
fn bundles_and_binaries_are_built() {
    let a = artifacts();
    assert!(
        a.vst3.is_dir(),
        "{} should be a VST3 bundle folder",
        a.vst3.display()
    );
    let vst3_lib = a
        .vst3
        .join("Contents")
        .join("x86_64-linux")
        .join("HummingFace.so");
    assert!(
        vst3_lib.is_file(),
        "the VST3 bundle lacks its library {}",
        vst3_lib.display()
    );
    assert!(
        a.clap.is_file(),
        "{} should be the CLAP library file",
        a.clap.display()
    );
    for bin in [&a.cli, &a.standalone, &clap_host_bin()] {
        let meta = std::fs::metadata(bin).unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
        use std::os::unix::fs::PermissionsExt;
        assert!(
            meta.permissions().mode() & 0o111 != 0,
            "{} is not executable",
            bin.display()
        );
    }
}

// ------------------------------------------------------------------------------------------------
// (b) the sung A3 comes out as a piano A3, in both plugin formats, in real hosts
// ------------------------------------------------------------------------------------------------

#[test]
fn vst3_in_pedalboard_plays_the_sung_a3() {
    let a = artifacts();
    let dir = scratch_dir("pedalboard-a3");
    let input = sung_a3_wav(&dir);
    let output = dir.join("pedalboard_out.wav");
    let report = run_pedalboard(&a.vst3, &input, &output, &[]).unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!("pedalboard report: {report}");

    check_required_params("pedalboard (VST3)", &param_names(&report))
        .unwrap_or_else(|e| panic!("{e:#}"));
    let latency = report["latency"].as_u64();
    if let Some(l) = latency {
        assert!(
            l > 0,
            "the VST3 reports zero latency; an STFT engine with lookahead cannot have none"
        );
    }
    let inp = read_wav(&input).unwrap();
    let out = read_wav(&output).unwrap();
    assert_eq!(
        out.len(),
        inp.len(),
        "pedalboard returned {} samples for {} in",
        out.len(),
        inp.len()
    );
    assert_plays_a3(
        "VST3 in pedalboard",
        &out,
        &inp,
        latency.unwrap_or(0) as usize,
    );
}

#[test]
fn clap_in_clack_host_plays_the_sung_a3() {
    let a = artifacts();
    let dir = scratch_dir("clap-a3");
    let input = sung_a3_wav(&dir);
    let output = dir.join("clap_out.wav");
    let report = run_clap_host(
        &a.clap,
        &input,
        &output,
        &["--offline", "--block", "512", "--rate-check"],
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!("hf-clap-host report: {report}");

    check_required_params("hf-clap-host (CLAP)", &param_names(&report))
        .unwrap_or_else(|e| panic!("{e:#}"));
    let latency = report_u64(&report, "latency_samples", "hf-clap-host");
    assert!(
        latency > 0,
        "the CLAP reports zero latency; an STFT engine with lookahead cannot have none"
    );
    assert!(
        (latency as f64) < 0.5 * SR as f64,
        "the CLAP reports {latency} samples of latency (over 500 ms)"
    );
    assert_eq!(
        report_u64(&report, "sample_rate", "hf-clap-host"),
        SR as u64
    );

    // The latency is recomputed for every rate: it must stay about the same in milliseconds
    // (same lookahead and hop in time), so it scales with the rate in samples.
    let rates = report["rate_check"].as_array().expect("rate_check list");
    let ms: Vec<(f64, f64)> = rates
        .iter()
        .map(|r| {
            (
                r["sample_rate"].as_f64().unwrap(),
                r["latency_ms"].as_f64().unwrap(),
            )
        })
        .collect();
    eprintln!("latency (Hz, ms) per rate: {ms:?}");
    let at_sr = ms
        .iter()
        .find(|r| r.0 == SR as f64)
        .expect("rate check includes the file rate")
        .1;
    assert!(
        (at_sr - latency as f64 * 1000.0 / SR as f64).abs() < 1e-6,
        "latency at {SR} Hz differs between two activations"
    );
    for &(rate, l) in &ms {
        assert!(l > 0.0, "zero latency at {rate} Hz");
        assert!(
            (l - at_sr).abs() <= 0.25 * at_sr + 2.0,
            "latency at {rate} Hz is {l:.2} ms but {at_sr:.2} ms at {SR} Hz: not recomputed for the rate?"
        );
    }

    let inp = read_wav(&input).unwrap();
    let out = read_wav(&output).unwrap();
    assert_eq!(out.len(), inp.len());
    // Host output is delayed by the reported latency: judge the part that corresponds to input.
    let aligned = out.skip_start(latency as usize);
    assert_plays_a3("CLAP in hf-clap-host", &aligned, &inp, 0);
}

#[test]
fn clap_realtime_paced_like_an_audio_device_plays_the_sung_a3() {
    // Real-time mode (no render extension call), one 512-frame block every 10.7 ms as an audio
    // device would ask: the engine never waits here, so this is the path a live DAW uses.
    let a = artifacts();
    let dir = scratch_dir("clap-realtime");
    let input = sung_a3_wav(&dir);
    let output = dir.join("clap_rt_out.wav");
    let report = run_clap_host(&a.clap, &input, &output, &["--pace", "--block", "512"])
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(report["render_mode"], "realtime");
    let latency = report_u64(&report, "latency_samples", "hf-clap-host") as usize;
    let blocks = report_u64(&report, "blocks", "hf-clap-host");
    let late = report_u64(&report, "late_blocks", "hf-clap-host");
    eprintln!(
        "real-time run: latency {latency}, {late} of {blocks} blocks past their deadline, rtf {}",
        report["realtime_factor"]
    );
    // Speed is measured by `cargo xtask bench`, not asserted here: on a shared 2-core machine a
    // late wake-up is the scheduler's. What must hold is that the real-time path (which never
    // waits for the worker) still plays the sung note.
    let inp = read_wav(&input).unwrap();
    let out = read_wav(&output).unwrap();
    let aligned = out.skip_start(latency);
    assert_plays_a3("CLAP in hf-clap-host, real time", &aligned, &inp, 0);
}

// ------------------------------------------------------------------------------------------------
// The reported latency is exact: with the mix fully dry, the output is the input delayed by
// exactly the reported latency (the dry path is delayed to line up with the piano).
// ------------------------------------------------------------------------------------------------

#[test]
fn clap_dry_mix_is_the_input_delayed_by_exactly_the_reported_latency() {
    let a = artifacts();
    let dir = scratch_dir("clap-dry");
    let input = sung_a3_wav(&dir);
    let output = dir.join("clap_dry.wav");
    // Mix is 0..1 in CLAP plain values (nice-plug exposes continuous parameters normalised);
    // set before activation through clap_plugin_params.flush, so no smoothing from the default.
    let report = run_clap_host(&a.clap, &input, &output, &["--offline", "--param", "Mix=0"])
        .unwrap_or_else(|e| panic!("{e:#}"));
    let mix = clap_param(&report, "Mix");
    assert_eq!(
        mix["value"].as_f64(),
        Some(0.0),
        "--param Mix=0 did not take: {mix}"
    );
    assert_input_delayed_by_latency(&report, &input, &output);
}

/// The host's bypass button: the plugin's `Bypass` parameter carries CLAP's bypass flag (hosts
/// map their button to it), and bypassed the output is the input delayed by the reported latency,
/// with no notes on the MIDI output.
#[test]
fn clap_bypass_is_the_input_delayed_by_exactly_the_reported_latency() {
    let a = artifacts();
    let dir = scratch_dir("clap-bypass");
    let input = sung_a3_wav(&dir);
    let output = dir.join("clap_bypass.wav");
    let report = run_clap_host(&a.clap, &input, &output, &["--offline", "--flush", "--param", "Bypass=1"])
        .unwrap_or_else(|e| panic!("{e:#}"));
    let params = report["params"].as_array().unwrap();
    let flagged: Vec<&str> = params.iter().filter(|p| p["bypass"] == true).filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(flagged, ["Bypass"], "parameters flagged as the bypass: {flagged:?}");
    let bypass = clap_param(&report, "Bypass");
    assert_eq!(bypass["value"].as_f64(), Some(1.0), "--param Bypass=1 did not take: {bypass}");
    assert!(report_notes(&report).is_empty(), "notes came out while bypassed: {:?}", report["notes"]);
    assert_input_delayed_by_latency(&report, &input, &output);
}

/// The parameter named `name` in an hf-clap-host report.
fn clap_param<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["params"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no {name} parameter in {}", report["params"]))
}

/// Every channel of `output` is the (mono) `input` delayed by exactly the report's latency, and
/// silent before it.
fn assert_input_delayed_by_latency(report: &serde_json::Value, input: &Path, output: &Path) {
    let latency = report_u64(report, "latency_samples", "hf-clap-host") as usize;
    let inp = read_wav(input).unwrap();
    let out = read_wav(output).unwrap();
    for (c, ch) in out.channels.iter().enumerate() {
        let d = max_abs_diff(&ch[latency..], &inp.channels[0]);
        assert!(d <= 1e-6, "channel {c}: output is not the input delayed by {latency} samples (max diff {d:.3e})");
        let head = ch[..latency].iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(
            head <= 1e-6,
            "channel {c}: output before the latency is not silent ({head:.3e})"
        );
        // And not at any neighbouring delay: the onset must land exactly.
        for off in [latency - 1, latency + 1] {
            let d = max_abs_diff(&ch[off..], &inp.channels[0]);
            assert!(
                d > 1e-3,
                "channel {c}: output also matches at delay {off}; test signal too smooth"
            );
        }
    }
}

#[test]
fn vst3_dry_mix_and_bypass_in_pedalboard_give_the_input() {
    // pedalboard compensates the reported latency, so a dry mix must give back the input itself;
    // any error in the reported latency shows up as a shift. So must the host's bypass (the
    // plugin's `Bypass` parameter, VST3's kIsBypass), which JUCE lists as `bypass`.
    let a = artifacts();
    let dir = scratch_dir("pedalboard-dry");
    let input = sung_a3_wav(&dir);
    for setting in ["mix=0", "bypass=true"] {
        let output = dir.join(format!("pedalboard_{}.wav", &setting[..setting.find('=').unwrap()]));
        let report = run_pedalboard(&a.vst3, &input, &output, &["--param", setting, "--no-params"])
            .unwrap_or_else(|e| panic!("{e:#}"));
        let latency = report["latency"].as_u64();
        let inp = read_wav(&input).unwrap();
        let out = read_wav(&output).unwrap();
        let d0 = max_abs_diff(&out.channels[0], &inp.channels[0]);
        let (xc, lag) = max_normalised_xcorr(&out.channels[0], &inp.channels[0], 0..=4800);
        assert!(
            d0 <= 1e-6,
            "{setting}: the VST3 output in pedalboard is not the input (max diff {d0:.3e}; best match at \
             lag {lag}, correlation {xc:.4}; reported latency {latency:?})"
        );
    }
    // Not so by default: the piano replaces the voice.
    let output = dir.join("pedalboard_default.wav");
    run_pedalboard(&a.vst3, &input, &output, &["--no-params"]).unwrap_or_else(|e| panic!("{e:#}"));
    let d = max_abs_diff(&read_wav(&output).unwrap().channels[0], &read_wav(&input).unwrap().channels[0]);
    assert!(d > 0.05, "with the defaults the output is the input too (max diff {d:.3e})");
}

// ------------------------------------------------------------------------------------------------
// Host failure paths: a clear message and a non-zero exit, never a hang or a crash.
// ------------------------------------------------------------------------------------------------

#[test]
fn clap_host_fails_cleanly_on_bad_arguments() {
    let dir = scratch_dir("clap-host-errors");
    let wav = dir.join("in.wav");
    write_wav(&wav, &[vec![0.0; 4800]], SR).unwrap();
    let out = dir.join("out.wav");
    let not_a_plugin = dir.join("not_a_plugin.clap");
    std::fs::write(&not_a_plugin, b"this is not a shared library").unwrap();
    let cases: Vec<(&str, Vec<std::ffi::OsString>)> = vec![
        (
            "missing plugin",
            vec![
                dir.join("nope.clap").into(),
                "--input".into(),
                wav.clone().into(),
                "--output".into(),
                out.clone().into(),
            ],
        ),
        (
            "not a plugin",
            vec![
                not_a_plugin.into(),
                "--input".into(),
                wav.clone().into(),
                "--output".into(),
                out.clone().into(),
            ],
        ),
        (
            "block 0",
            vec![
                dir.join("nope.clap").into(),
                "--input".into(),
                wav.into(),
                "--output".into(),
                out.clone().into(),
                "--block".into(),
                "0".into(),
            ],
        ),
        (
            "missing input",
            vec![
                dir.join("nope.clap").into(),
                "--input".into(),
                dir.join("none.wav").into(),
                "--output".into(),
                out.into(),
            ],
        ),
    ];
    for (what, args) in cases {
        let done = run_with_timeout(
            Command::new(clap_host_bin()).args(&args),
            Duration::from_secs(30),
            "hf-clap-host",
        )
        .unwrap_or_else(|e| panic!("{what}: {e:#}"));
        assert_eq!(
            done.status.code(),
            Some(1),
            "{what}: expected exit 1, got {}\n{}",
            describe_status(&done.status),
            done.stderr
        );
        assert!(
            done.stderr.contains("hf-clap-host: error:"),
            "{what}: no error message on stderr:\n{}",
            done.stderr
        );
        eprintln!("{what}: {}", done.stderr.trim());
    }
}

// ------------------------------------------------------------------------------------------------
// (c) an offline bounce in a host equals the CLI render with the plugin's defaults (network
//     listener, live) and with the lookahead note timing
// ------------------------------------------------------------------------------------------------

/// Finds how `host` (a host's output, possibly not latency-compensated) lines up with `cli`
/// (latency removed): returns (shift, max abs diff) for shift 0 and shift `latency`
/// (`host[i + shift]` vs `cli[i]`), compared over the samples both cover.
fn aligned_diffs(host: &[f32], cli: &[f32], latency: usize) -> Vec<(usize, f32, usize)> {
    let mut v = Vec::new();
    for shift in [0, latency] {
        if shift >= host.len() {
            continue;
        }
        let h = &host[shift..];
        let n = h.len().min(cli.len());
        let first_bad = h[..n]
            .iter()
            .zip(&cli[..n])
            .position(|(a, b)| (a - b).abs() > 1e-4)
            .unwrap_or(n);
        v.push((shift, max_abs_diff(&h[..n], &cli[..n]), first_bad));
    }
    v
}

#[test]
fn vst3_offline_render_in_pedalboard_equals_cli_render() {
    let a = artifacts();
    let dir = scratch_dir("pedalboard-vs-cli");
    let input = sung_melody_wav(&dir);
    let pb_out = dir.join("pedalboard_out.wav");
    let cli_out = dir.join("cli_out.wav");

    // The plugin's defaults: the network listener, notes placed live.
    let cli = run_cli(&a, &input, &cli_out, &["--listener", "trained", "--notes", "live"]);
    let cli_latency = report_u64(&cli, "latency_samples", "hummingface render") as usize;
    // An odd buffer size: the engine works hop by hop, so the host's blocks must not matter.
    let pb = run_pedalboard(
        &a.vst3,
        &input,
        &pb_out,
        &["--buffer-size", "1000", "--no-params"],
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!("cli: {cli}\npedalboard: {pb}");

    let pb_latency = pb["latency"].as_u64();
    if let Some(l) = pb_latency {
        assert_eq!(
            l as usize, cli_latency,
            "the VST3 reports {l} samples of latency, the CLI {cli_latency}"
        );
    }

    let c = read_wav(&cli_out).unwrap();
    let p = read_wav(&pb_out).unwrap();
    let inp = read_wav(&input).unwrap();
    assert_eq!(
        c.len(),
        inp.len(),
        "the CLI output length differs from the input's"
    );
    assert_eq!(
        c.channels.len(),
        p.channels.len(),
        "channel counts differ: CLI {} vs VST3 {}",
        c.channels.len(),
        p.channels.len()
    );
    assert!(
        rms(&c.mono()) > 1e-3,
        "the CLI render is silent: nothing to compare"
    );

    for ch in 0..c.channels.len() {
        let diffs = aligned_diffs(&p.channels[ch], &c.channels[ch], cli_latency);
        eprintln!("channel {ch}: (shift, max |diff|, first sample over 1e-4) = {diffs:?}");
        let ok = diffs.iter().find(|d| d.1 <= 1e-4);
        let (shift, diff, _) = *ok.unwrap_or_else(|| {
            panic!(
                "channel {ch}: the VST3 offline render differs from the CLI render by more than 1e-4 \
                 both as is and shifted by the latency ({cli_latency} samples): {diffs:?}{}",
                a.stale_note
            )
        });
        // Compensated (shift 0) or not (shift = latency): the alignment must be the reported one.
        assert!(shift == 0 || shift == cli_latency);
        eprintln!(
            "channel {ch}: equal within {diff:.2e} at shift {shift} ({})",
            if shift == 0 {
                "pedalboard compensated the reported latency"
            } else {
                "pedalboard did not compensate the latency"
            }
        );
        let compared = c.len() - shift;
        assert!(compared >= c.len() / 2, "only {compared} samples compared");
    }
}

#[test]
fn clap_offline_render_equals_cli_render_and_ignores_block_size() {
    let a = artifacts();
    let dir = scratch_dir("clap-vs-cli");
    let input = sung_melody_wav(&dir);
    let cli_out = dir.join("cli_out.wav");
    // The plugin's defaults: the network listener, notes placed live.
    let cli = run_cli(&a, &input, &cli_out, &["--listener", "trained", "--notes", "live"]);
    let latency = report_u64(&cli, "latency_samples", "hummingface render") as usize;
    let c = read_wav(&cli_out).unwrap();

    let mut outs = Vec::new();
    for block in ["64", "517", "2048"] {
        let out = dir.join(format!("clap_block{block}.wav"));
        let r = run_clap_host(
            &a.clap,
            &input,
            &out,
            &["--offline", "--flush", "--block", block],
        )
        .unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(
            report_u64(&r, "latency_samples", "hf-clap-host") as usize,
            latency,
            "CLAP and CLI latency differ"
        );
        let o = read_wav(&out).unwrap();
        assert_eq!(
            o.len(),
            c.len() + latency,
            "--flush output should be input + latency long"
        );
        outs.push((block, o));
    }
    for ch in 0..c.channels.len().min(outs[0].1.channels.len()) {
        for (block, o) in &outs {
            let host = &o.channels[ch][latency..];
            let d = max_abs_diff(host, &c.channels[ch]);
            assert!(
                d <= 1e-4,
                "channel {ch}: CLAP offline render (block {block}) minus its latency differs from the CLI render by {d:.3e}, \
                 first at sample {}{}",
                host.iter().zip(&c.channels[ch]).position(|(x, y)| (x - y).abs() > 1e-4).unwrap_or(0),
                a.stale_note
            );
        }
        let d = max_abs_diff(&outs[0].1.channels[ch], &outs[2].1.channels[ch]);
        assert!(
            d <= 1e-6,
            "channel {ch}: offline renders with blocks 64 and 2048 differ by {d:.3e}"
        );
    }
}

/// The CLI's notes (onset seconds, MIDI) from its `--json` report.
fn report_notes(report: &serde_json::Value) -> Vec<(f64, u8)> {
    report["notes"]
        .as_array()
        .expect("notes in the report")
        .iter()
        .map(|n| (n["start_s"].as_f64().unwrap(), n["note"].as_u64().unwrap() as u8))
        .collect()
}

#[test]
fn clap_offline_render_with_lookahead_timing_equals_cli_render() {
    // The plugin with `Note timing` on `Lookahead` (and its default, the network listener) is
    // the CLI's default render: the same notes, placed on the sung onsets, at the same (larger)
    // latency.
    let a = artifacts();
    let dir = scratch_dir("clap-lookahead-vs-cli");
    let input = sung_melody_wav(&dir);
    let cli_out = dir.join("cli_out.wav");
    let cli = run_cli(&a, &input, &cli_out, &["--listener", "trained", "--notes", "lookahead"]);
    let live = run_cli(&a, &input, &dir.join("cli_live.wav"), &["--listener", "trained", "--notes", "live"]);
    let latency = report_u64(&cli, "latency_samples", "hummingface render") as usize;
    let live_latency = report_u64(&live, "latency_samples", "hummingface render") as usize;
    // 34 hops of 256 samples at 48 kHz.
    assert_eq!(latency, live_latency + 34 * 256, "placing the notes adds 34 hops");
    let sung = [0.25, 1.1, 1.75, 2.6];
    for (what, report) in [("lookahead", &cli), ("live", &live)] {
        let notes = report_notes(report);
        let errors: Vec<f64> = notes.iter().zip(&sung).map(|(n, s)| (n.0 - s) * 1000.0).collect();
        eprintln!("CLI notes, {what}: {notes:?}; onset errors (ms) {errors:.1?}");
    }
    let placed = report_notes(&cli);
    assert_eq!(placed.iter().map(|n| n.1).collect::<Vec<_>>(), vec![57, 60, 64, 62]);
    for (n, s) in placed.iter().zip(&sung) {
        assert!((n.0 - s).abs() < 0.03, "note {n:?} placed more than 30 ms from its sung onset {s}");
    }
    let c = read_wav(&cli_out).unwrap();
    let out = dir.join("clap.wav");
    let r = run_clap_host(
        &a.clap,
        &input,
        &out,
        &["--offline", "--flush", "--block", "517", "--param", "Note timing=Lookahead"],
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(report_u64(&r, "latency_samples", "hf-clap-host") as usize, latency, "CLAP and CLI latency differ");
    let o = read_wav(&out).unwrap();
    assert_eq!(o.len(), c.len() + latency, "--flush output should be input + latency long");
    for ch in 0..c.channels.len().min(o.channels.len()) {
        let d = max_abs_diff(&o.channels[ch][latency..], &c.channels[ch]);
        assert!(d <= 1e-4, "channel {ch}: the CLAP bounce with lookahead timing differs from the CLI render by {d:.3e}{}", a.stale_note);
    }
}

#[test]
fn vst3_in_pedalboard_switches_listener_and_timing_and_compensates_the_latency() {
    // pedalboard delivers the parameters with the first block: the plugin switches its
    // listener (to Classic) and its note timing there and tells the host its new latency, the
    // CLI's; the bounce equals the CLI render (pedalboard 0.9.26 compensates the new latency:
    // shift 0, difference 0).
    let a = artifacts();
    let dir = scratch_dir("pedalboard-lookahead");
    let input = sung_melody_wav(&dir);
    let (pb_out, cli_out) = (dir.join("pedalboard_out.wav"), dir.join("cli_out.wav"));
    let cli = run_cli(&a, &input, &cli_out, &["--listener", "v0", "--notes", "lookahead"]);
    let latency = report_u64(&cli, "latency_samples", "hummingface render") as usize;
    let pb = run_pedalboard(&a.vst3, &input, &pb_out, &["--buffer-size", "1000", "--no-params", "--param", "note_timing=Lookahead", "--param", "listener=Classic"])
        .unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!("cli: {cli}\npedalboard: {pb}");
    if let Some(l) = pb["latency"].as_u64() {
        assert_eq!(l as usize, latency, "the VST3 reports {l} samples of latency, the CLI {latency}");
    }
    let (c, p) = (read_wav(&cli_out).unwrap(), read_wav(&pb_out).unwrap());
    for ch in 0..c.channels.len() {
        let diffs = aligned_diffs(&p.channels[ch], &c.channels[ch], latency);
        eprintln!("channel {ch}: (shift, max |diff|, first sample over 1e-4) = {diffs:?}");
        assert!(
            diffs.iter().any(|d| d.1 <= 1e-4 && (c.len() - d.0) >= c.len() / 2),
            "channel {ch}: the VST3 bounce with lookahead timing differs from the CLI render: {diffs:?}{}",
            a.stale_note
        );
    }
}

// ------------------------------------------------------------------------------------------------
// (d) the standalone runs and stops cleanly
// ------------------------------------------------------------------------------------------------

/// Lines of `stderr` that report a panic or a failure to run.
fn trouble_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("panicked")
                || l.contains("could not")
                || l.contains("failed")
                || l.contains("aborting")
        })
        .collect()
}

/// Starts the standalone with `args`, checks it is still running after `run_for`, sends `sig`
/// and checks it ends without a panic and with exit 0 (SIGTERM is trapped through ctrlc's
/// `termination` feature, so the plugin is deactivated and the audio thread joined). Returns its
/// stderr.
fn run_standalone(
    a: &Artifacts,
    args: &[&str],
    env: &[(&str, &str)],
    run_for: Duration,
    sig: i32,
) -> String {
    // A private X display, so an editor window (once the plugin has one) opens as on a desktop.
    let x = Xvfb::start().unwrap_or_else(|e| panic!("{e:#}"));
    let mut cmd = Command::new(&a.standalone);
    cmd.args(args)
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY");
    if let Some(x) = &x {
        eprintln!("standalone on Xvfb display {}", x.display);
        cmd.env("DISPLAY", &x.display);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = Running::spawn(&mut cmd, "hummingface-standalone").unwrap();
    let started = Instant::now();
    while started.elapsed() < run_for {
        if !child.alive() {
            let done = child.wait(Duration::from_secs(1)).unwrap();
            panic!(
                "hummingface-standalone {args:?} exited after {:.1} s ({}) instead of running\n{}",
                started.elapsed().as_secs_f64(),
                describe_status(&done.status),
                tail(&done.stderr, 6000)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.signal(sig).unwrap();
    let done = child
        .wait(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!(
        "standalone {args:?}: {} after signal {sig}\n{}",
        describe_status(&done.status),
        tail(&done.stderr, 3000)
    );
    let clean = done.status.success();
    assert!(
        clean,
        "hummingface-standalone {args:?} ended with {} on signal {sig}\n{}",
        describe_status(&done.status),
        tail(&done.stderr, 6000)
    );
    let trouble = trouble_lines(&done.stderr);
    assert!(
        trouble.is_empty(),
        "hummingface-standalone {args:?} reported trouble: {trouble:#?}"
    );
    done.stderr
}

#[test]
fn standalone_dummy_backend_runs_and_stops_on_sigterm() {
    let a = artifacts();
    run_standalone(
        &a,
        &["--backend", "dummy"],
        &[],
        Duration::from_secs(5),
        libc::SIGTERM,
    );
}

#[test]
fn standalone_dummy_backend_stops_gracefully_on_sigint() {
    // Ctrl-C: nice-plug's handler stops the audio thread and deactivates the plugin; exit 0.
    let a = artifacts();
    run_standalone(
        &a,
        &["-b", "dummy"],
        &[],
        Duration::from_secs(5),
        libc::SIGINT,
    );
}

/// A JACK port of the standalone's client (nice-plug names the client after the plugin,
/// lower-cased: `hummingface:input_1`).
fn is_our_port(port: &str) -> bool {
    port.to_ascii_lowercase().starts_with("hummingface:")
}

/// `jack_lsp -c` output as (port, ports connected to it).
fn jack_connections(lsp: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for line in lsp.lines() {
        if line.starts_with(char::is_whitespace) {
            if let Some(last) = out.last_mut() {
                last.1.push(line.trim().to_string());
            }
        } else if !line.trim().is_empty() {
            out.push((line.trim().to_string(), Vec::new()));
        }
    }
    out
}


#[test]
fn standalone_on_a_jack_dummy_server_runs_and_stops_on_sigterm() {
    let a = artifacts();
    let jack = JackServer::start();
    let env = jack.env();

    // Watch the server's port list while the standalone runs: it must register as a JACK client
    // with audio ports, connected to the capture ports we asked for.
    let x = Xvfb::start().unwrap_or_else(|e| panic!("{e:#}"));
    let mut cmd = Command::new(&a.standalone);
    cmd.args([
        "-b",
        "jack",
        "--connect-jack-inputs",
        "system:capture_1,system:capture_2",
    ])
    .env_remove("DISPLAY")
    .env_remove("WAYLAND_DISPLAY");
    if let Some(x) = &x {
        eprintln!("standalone on Xvfb display {}", x.display);
        cmd.env("DISPLAY", &x.display);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = Running::spawn(&mut cmd, "hummingface-standalone -b jack").unwrap();
    let started = Instant::now();
    let mut seen_ports = String::new();
    while started.elapsed() < Duration::from_secs(5) {
        if !child.alive() {
            let done = child.wait(Duration::from_secs(1)).unwrap();
            panic!(
                "hummingface-standalone -b jack exited after {:.1} s ({})\n{}",
                started.elapsed().as_secs_f64(),
                describe_status(&done.status),
                tail(&done.stderr, 6000)
            );
        }
        let ports = jack.ports();
        if ports.lines().any(is_our_port) {
            seen_ports = ports;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    child.signal(libc::SIGTERM).unwrap();
    let done = child
        .wait(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!(
        "standalone on JACK: {}\nports seen:\n{seen_ports}\n{}",
        describe_status(&done.status),
        tail(&done.stderr, 3000)
    );

    assert!(
        seen_ports.lines().any(is_our_port),
        "the standalone never showed up as a JACK client on server {}; ports:\n{}\nstderr:\n{}",
        jack.name,
        jack.ports(),
        tail(&done.stderr, 4000)
    );
    let connected = jack_connections(&seen_ports)
        .iter()
        .any(|(port, conns)| is_our_port(port) && conns.iter().any(|c| c == "system:capture_1"));
    assert!(
        connected,
        "no HummingFace input was connected to system:capture_1:\n{seen_ports}"
    );
    let outputs = jack_connections(&seen_ports)
        .iter()
        .filter(|(p, _)| is_our_port(p) && p.contains("output"))
        .count();
    assert!(
        outputs >= 1,
        "the standalone registered no JACK output port:\n{seen_ports}"
    );
    assert!(
        done.status.success(),
        "hummingface-standalone -b jack ended with {}\n{}",
        describe_status(&done.status),
        tail(&done.stderr, 6000)
    );
    let trouble = trouble_lines(&done.stderr);
    assert!(
        trouble.is_empty(),
        "hummingface-standalone -b jack reported trouble: {trouble:#?}"
    );
}

/// How a test stops the standalone.
#[derive(Clone, Copy, Debug)]
enum StopBy {
    /// SIGTERM.
    Signal,
    /// The window's close button (`WM_DELETE_WINDOW`).
    CloseButton,
}

/// A stop signal stops the standalone even when its JACK server no longer answers: the server is
/// frozen (SIGSTOP) while the standalone plays, so the backend can neither finish a process cycle
/// nor deactivate its client; the standalone's watchdog ends it some seconds after SIGTERM, with
/// exit 0 and a line that says why.
#[test]
fn standalone_stops_on_sigterm_when_the_jack_server_hangs() {
    stop_standalone_on_a_frozen_jack_server(StopBy::Signal);
}

/// So does closing its window by hand (before the eighteenth session the standalone then waited
/// for the frozen server for ever).
#[test]
fn standalone_stops_when_its_window_is_closed_while_the_jack_server_hangs() {
    stop_standalone_on_a_frozen_jack_server(StopBy::CloseButton);
}

fn stop_standalone_on_a_frozen_jack_server(how: StopBy) {
    let a = artifacts();
    let jack = JackServer::start();
    let x = Xvfb::start()
        .unwrap_or_else(|e| panic!("{e:#}"))
        .expect("Xvfb is missing; run `cargo xtask setup`");
    // The editor writes its layout once it has drawn (it watches the stop signals from then on;
    // nice-plug opens it after the JACK client is active).
    let layout = scratch_dir(&format!("standalone-frozen-jack-{how:?}")).join("layout.json");
    let _ = std::fs::remove_file(&layout);
    let mut cmd = Command::new(&a.standalone);
    cmd.args(["-b", "jack"])
        .env("DISPLAY", &x.display)
        .env_remove("WAYLAND_DISPLAY")
        .env("HUMMINGFACE_EDITOR_LAYOUT", &layout)
        .envs(jack.env());
    let mut child = Running::spawn(&mut cmd, "hummingface-standalone -b jack").unwrap();
    let t = Instant::now();
    while !(layout.exists() && jack.ports().lines().any(is_our_port)) {
        assert!(child.alive(), "the standalone exited before its editor and JACK ports were up");
        assert!(t.elapsed() < Duration::from_secs(60), "no editor or JACK ports within 60 s:\n{}", jack.ports());
        std::thread::sleep(Duration::from_millis(200));
    }
    // Let it play a little, then freeze the server.
    std::thread::sleep(Duration::from_millis(500));
    jack.signal(libc::SIGSTOP).unwrap();
    match how {
        StopBy::Signal => child.signal(libc::SIGTERM).unwrap(),
        StopBy::CloseButton => {
            let asked = x.close_windows_titled("HummingFace").unwrap_or_else(|e| panic!("{e:#}"));
            assert_eq!(asked, 1, "windows titled HummingFace on the display");
        }
    }
    let t = Instant::now();
    let done = child.wait(Duration::from_secs(30));
    let took = t.elapsed();
    jack.signal(libc::SIGCONT).unwrap();
    let done = done.unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!(
        "standalone on a frozen JACK server, stopped by {how:?}: {} after {:.1} s\n{}",
        describe_status(&done.status),
        took.as_secs_f64(),
        tail(&done.stderr, 3000)
    );
    assert!(
        done.status.success(),
        "the standalone ended with {}\n{}",
        describe_status(&done.status),
        tail(&done.stderr, 6000)
    );
    let why = match how {
        StopBy::Signal => "did not stop within 8 s of the stop signal",
        StopBy::CloseButton => "did not stop within 8 s of the window closing",
    };
    assert!(
        done.stderr.contains(why),
        "the standalone exited on a frozen server without saying why ({why:?}):\n{}",
        tail(&done.stderr, 6000)
    );
}

/// A JACK server killed outright (a crash, a test killed at its time limit) keeps its slot in
/// jackd's machine-wide table of 8 servers, and jackd gives a dead server's slot only to a new
/// server of the same name; every test server has its own name, so 8 such deaths locked every
/// later jackd out ("too many servers already active": the JACK tests of one CI run failed so).
/// Starting a test server first frees the slots of dead servers, and stops test servers whose
/// test is gone.
#[test]
fn killed_or_orphaned_jack_servers_give_their_slots_back() {
    use hummingface_tests::jack_registry::{reclaim_dead_servers, slots};
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    let mut jack = JackServer::start();
    let pid = jack.pid().expect("the server runs");
    let slot = format!("jack-{uid}:{}:", jack.name);
    let held = |slot: &str| -> bool {
        slots()
            .unwrap_or_else(|e| panic!("{e:#}"))
            .expect("a running server made the registry")
            .iter()
            .any(|s| s.name == slot && s.pid != 0)
    };
    assert!(
        slots().unwrap().unwrap().iter().any(|s| s.name == slot && s.pid == pid),
        "jackd -n {} (pid {pid}) is not in the server table: {:#?}",
        jack.name,
        slots()
    );
    jack.kill().unwrap();
    // Another test starting a server at this moment may already have freed it.
    eprintln!(
        "after SIGKILL the dead server {} its slot",
        if held(&slot) { "still holds" } else { "no longer holds" }
    );
    reclaim_dead_servers().unwrap_or_else(|e| panic!("{e:#}"));
    assert!(!held(&slot), "the dead server's slot was not freed: {:#?}", slots());
    let socket = Path::new("/dev/shm").join(format!("jack_{}_0_0", jack.name));
    assert!(!socket.exists(), "{} was left behind", socket.display());
    // So are the files of a test server whose slot is already gone (a semaphore file as jackd
    // names them, for a server that cannot exist).
    let stray = Path::new("/dev/shm").join(format!("jack_sem.{uid}_hf-test-999999999_system"));
    std::fs::write(&stray, [0u8; 12]).unwrap();
    reclaim_dead_servers().unwrap_or_else(|e| panic!("{e:#}"));
    assert!(!stray.exists(), "{} was left behind", stray.display());
    // And a new server comes up (it frees dead slots first, as every test server does).
    let next = JackServer::start();
    assert!(held(&format!("jack-{uid}:{}:", next.name)), "the next server is not in the table: {:#?}", slots());
    drop(next);

    // A test server whose test process was killed runs on, orphaned, and keeps its slot: it is
    // stopped (SIGTERM: it frees its slot itself). Named for a test process that cannot exist.
    let orphan = format!("hf-test-{}", 900_000_000 + std::process::id() % 10_000_000);
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "/usr/bin/jackd --no-realtime -n {orphan} -d dummy -r 48000 -p 512 >/dev/null 2>&1 &"
        ))
        .status()
        .unwrap();
    assert!(status.success());
    let slot = format!("jack-{uid}:{orphan}:");
    let t = Instant::now();
    let pid = loop {
        if let Some(s) = slots().unwrap().and_then(|v| v.into_iter().find(|s| s.name == slot)) {
            break s.pid;
        }
        assert!(t.elapsed() < Duration::from_secs(15), "jackd -n {orphan} did not register");
        std::thread::sleep(Duration::from_millis(50));
    };
    reclaim_dead_servers().unwrap_or_else(|e| panic!("{e:#}"));
    assert!(!held(&slot), "the orphaned server keeps its slot: {:#?}", slots());
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.rsplit(')').next().unwrap().trim_start().starts_with('Z'),
        "the orphaned jackd (pid {pid}) still runs: {stat}"
    );
}
