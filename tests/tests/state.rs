//! Issue 6, saved state: a save → load round trip is exact and renders identically, and a state
//! that is truncated, not JSON, of the wrong types, out of range, from a newer build or from
//! 0.1.0 loads to sensible values — what cannot be read becomes the default — with a warning in
//! nice-plug's log, and never a panic.
//!
//! Through the real `HummingFace.clap` in `hf-clap-host` (`--load-state`, `--save-state`: the
//! CLAP state extension, nice-plug's wrapper, the plugin's `filter_state`), and in process with
//! `hummingface::params::load_state` (the same steps as the wrapper) on the plugin's own
//! parameter objects, then rendering through `Plugin::process` under `assert_no_alloc`.

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_no_alloc::AllocDisabler;
use hummingface::params::{load_state, EditorSize, HummingFaceParams};
use hummingface_tests::inproc::InProcessHost;
use hummingface_tests::{
    clap_host_bin, parse_last_json, pedalboard_python, read_wav, run_with_timeout, scratch_dir, sung_melody, tail,
    workspace_root, write_wav, Artifacts, CHILD_TIMEOUT,
};
use nice_plug::prelude::*;

#[global_allocator]
static ALLOC: AllocDisabler = AllocDisabler;

const SR: u32 = 48_000;

fn artifacts() -> Artifacts {
    Artifacts::locate().unwrap_or_else(|e| panic!("{e:#}"))
}

fn melody(seconds: f32) -> Vec<f32> {
    sung_melody(&[(57.0, 0.2, 0.8), (62.0, 1.2, 0.6), (64.0, 2.0, 1.0), (60.0, 3.2, 0.6)], seconds, SR)
}

fn melody_wav(dir: &Path, seconds: f32) -> PathBuf {
    let path = dir.join("melody.wav");
    write_wav(&path, &[melody(seconds)], SR).unwrap();
    path
}

/// A CLAP state blob as nice-plug writes it: the JSON's length (u64, little endian), the JSON.
fn clap_blob(json: &[u8]) -> Vec<u8> {
    let mut b = (json.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(json);
    b
}

/// One run of `hf-clap-host` (offline); returns the report, the output and stderr.
fn clap(a: &Artifacts, input: &Path, out: &Path, extra: &[&str]) -> (serde_json::Value, Vec<Vec<f32>>, String) {
    let mut cmd = Command::new(clap_host_bin());
    cmd.arg(&a.clap).arg("--input").arg(input).arg("--output").arg(out).args(["--json", "--offline"]).args(extra);
    let done = run_with_timeout(&mut cmd, CHILD_TIMEOUT, "hf-clap-host").unwrap();
    assert!(!done.stderr.contains("panicked"), "hf-clap-host: panic:\n{}", tail(&done.stderr, 4000));
    let done = done.check("hf-clap-host").unwrap_or_else(|e| panic!("{e:#}{}", a.stale_note));
    let report = parse_last_json(&done.stdout).unwrap();
    (report, read_wav(out).unwrap().channels, done.stderr)
}

/// (name, CLAP value) of every parameter in a report.
fn values(report: &serde_json::Value) -> Vec<(String, f64)> {
    report["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap().to_string(), p["value"].as_f64().unwrap()))
        .collect()
}

fn value_of(report: &serde_json::Value, name: &str) -> f64 {
    values(report).into_iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no parameter {name}")).1
}

fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).flat_map(|(x, y)| {
        assert_eq!(x.len(), y.len());
        x.iter().zip(y).map(|(p, q)| (p - q).abs())
    })
    .fold(0.0, f32::max)
}

fn peak(a: &[Vec<f32>]) -> f32 {
    a.iter().flatten().fold(0.0f32, |m, v| m.max(v.abs()))
}

/// The plugin's state JSON inside a CLAP blob.
fn json_of_blob(blob: &[u8]) -> serde_json::Value {
    let n = u64::from_le_bytes(blob[..8].try_into().unwrap()) as usize;
    assert_eq!(blob.len(), 8 + n, "the blob holds exactly the length it declares");
    serde_json::from_slice(&blob[8..]).unwrap()
}

/// In process: a stereo offline instance with `prepare` applied to its parameters, rendering
/// `audio` (on both channels) in 512-sample blocks. Returns the output channels.
fn render_in_process(audio: &[f32], prepare: impl FnOnce(&HummingFaceParams)) -> Vec<Vec<f32>> {
    let mut host = InProcessHost::new(2, SR as f32, 512, true);
    prepare(&host.plugin.hf_params());
    assert!(host.activate(), "activate");
    let (mut l, mut r) = (audio.to_vec(), audio.to_vec());
    let violations = assert_no_alloc::violation_count();
    for (cl, cr) in l.chunks_mut(512).zip(r.chunks_mut(512)) {
        host.process(&mut [cl, cr]);
    }
    assert_eq!(assert_no_alloc::violation_count(), violations, "allocation in process");
    host.deactivate();
    vec![l, r]
}

#[test]
fn clap_state_round_trip_is_exact_and_renders_identically() {
    let a = artifacts();
    let dir = scratch_dir("state-round-trip");
    let input = melody_wav(&dir, 4.0);
    let (s1, s2) = (dir.join("s1.clapstate"), dir.join("s2.clapstate"));
    let settings = [
        "--param", "Key=D", "--param", "Scale=Natural minor", "--param", "Transpose=27",
        "--param", "Mix=0.8", "--param", "Gain=0.6", "--param", "Sensitivity=0.7",
        "--param", "Tone=0.3", "--param", "Release=0.7", "--param", "Minimum note=0.2",
        "--param", "Velocity response=0.6",
    ];
    let mut first_args: Vec<&str> = settings.to_vec();
    first_args.extend(["--save-state", s1.to_str().unwrap()]);
    let (r1, out1, _) = clap(&a, &input, &dir.join("out1.wav"), &first_args);
    let (r2, out2, _) = clap(&a, &input, &dir.join("out2.wav"), &["--load-state", s1.to_str().unwrap(), "--save-state", s2.to_str().unwrap()]);
    let (r0, out0, _) = clap(&a, &input, &dir.join("out0.wav"), &[]);
    assert_eq!(r2["state_loaded"], true);

    let (b1, b2) = (std::fs::read(&s1).unwrap(), std::fs::read(&s2).unwrap());
    eprintln!("saved state ({} bytes): {}", b1.len(), String::from_utf8_lossy(&b1[8..]));
    assert_eq!(b1, b2, "state saved → loaded → saved again differs");
    assert_eq!(values(&r1), values(&r2), "parameter values after loading the state");
    assert_ne!(values(&r0), values(&r1), "the settings changed nothing");
    let d = max_diff(&out1, &out2);
    let d0 = max_diff(&out0, &out1);
    eprintln!("render with the settings vs with the loaded state: {d:.3e}; vs defaults: {d0:.3}");
    assert_eq!(d, 0.0, "the loaded state renders differently");
    assert!(d0 > 1e-2, "defaults render like the settings ({d0}): the test proves nothing");

    // The same state loaded in process into the plugin's parameters renders the same audio
    // (offline, like the CLAP run, which equals the CLI within 1e-4).
    let json = serde_json::to_vec(&json_of_blob(&b1)).unwrap();
    let audio = read_wav(&input).unwrap().channels.remove(0);
    let inproc = render_in_process(&audio, |params| {
        let warnings = load_state(params, &json).unwrap();
        assert!(warnings.is_empty(), "a state saved by this build loads without warnings: {warnings:?}");
    });
    let latency = r1["latency_samples"].as_u64().unwrap() as usize;
    assert_eq!(inproc[0].len(), out1[0].len());
    let d = max_diff(&inproc, &out1);
    eprintln!("in-process render of the loaded state vs CLAP: {d:.3e} (latency {latency})");
    assert!(d <= 1e-4, "in-process render of the loaded state differs from the CLAP's by {d}");
}

/// A bad state: (what, CLAP blob, whether the wrapper accepts it, warnings the log must show).
fn bad_states() -> Vec<(&'static str, Vec<u8>, bool, Vec<&'static str>)> {
    let old = std::fs::read(workspace_root().join("tests/data/hummingface-0.1.0-state.json")).unwrap();
    let good = br#"{"version":"0.1.0","params":{"device":{"string":"auto"},"gain":{"f32":-2.5},"key":{"string":"d"},"listener":{"string":"network"},"min_note":{"f32":60.0},"mix":{"f32":0.75},"release":{"f32":800.0},"scale":{"string":"minor"},"sensitivity":{"f32":0.62},"tone":{"f32":0.0},"transpose":{"i32":3},"vel_resp":{"f32":1.0}},"fields":{"state-version":"2","editor-size":"{\"width\":1000,\"height\":700}","preset":"\"\"","model-path":"\"\""}}"#;
    let wrong_types = br#"{"version":"0.1.0","params":{"device":{"f32":1.0},"gain":{"string":"loud"},"key":{"i32":40},"listener":{"string":"telepathy"},"min_note":{"bool":true},"mix":{"i32":1},"release":{"f32":800.0},"scale":{"string":"lydian-flat-13"},"sensitivity":{"f32":0.62},"tone":{"f32":0.0},"transpose":{"f32":2.5},"vel_resp":{"f32":1.0}},"fields":{"state-version":"2","editor-size":"\"big\"","preset":"12","model-path":"{\"a\":1}"}}"#;
    let out_of_range = br#"{"version":"0.1.0","params":{"device":{"string":"auto"},"gain":{"f32":1e39},"key":{"string":"d"},"min_note":{"f32":-50.0},"mix":{"f32":7.0},"release":{"f32":1e9},"scale":{"string":"minor"},"sensitivity":{"f32":-1e39},"tone":{"f32":0.0},"transpose":{"i32":-2000000},"vel_resp":{"f32":1.0}},"fields":{"state-version":"2","editor-size":"{\"width\":100000,\"height\":3}"}}"#;
    let future = br#"{"version":"9.0.0","params":{"device":{"string":"auto"},"gain":{"f32":-2.5},"key":{"string":"d"},"min_note":{"f32":60.0},"mix":{"f32":0.75},"release":{"f32":800.0},"scale":{"string":"minor"},"sensitivity":{"f32":0.62},"tone":{"f32":0.0},"transpose":{"i32":3},"vel_resp":{"f32":1.0},"reverb":{"f32":0.5},"key2":{"string":"x"}},"fields":{"state-version":"99","editor-size":"{\"width\":1000,\"height\":700}","hologram":"{\"on\":true}"}}"#;
    let no_params = br#"{"params":{},"fields":{}}"#;
    let half = &good[..good.len() / 2];
    let mut overlong = (10_000u64).to_le_bytes().to_vec();
    overlong.extend_from_slice(good);
    let mut huge = u64::MAX.to_le_bytes().to_vec();
    huge.extend_from_slice(good);
    vec![
        ("a state saved by this build", clap_blob(good), true, vec![]),
        ("0.1.0 state (version 1)", clap_blob(&old), true, vec![]),
        ("from a newer build (state 99, unknown parameters and fields)", clap_blob(future), true, vec!["newer version", "\"reverb\"", "\"key2\""]),
        ("wrong types", clap_blob(wrong_types), true, vec!["\"gain\"", "\"key\"", "\"listener\"", "\"min_note\"", "\"mix\"", "\"scale\"", "\"transpose\"", "\"device\"", "\"editor-size\"", "\"preset\"", "\"model-path\""]),
        ("out of range and infinite", clap_blob(out_of_range), true, vec!["\"gain\"", "\"min_note\"", "\"mix\"", "\"release\"", "\"sensitivity\"", "\"transpose\"", "\"editor-size\""]),
        ("no parameters", clap_blob(no_params), true, vec!["\"mix\" missing", "\"key\" missing"]),
        ("truncated JSON", clap_blob(half), false, vec![]),
        ("length prefix larger than the data (the JSON is whole)", overlong, true, vec![]),
        ("length prefix u64::MAX", huge, false, vec![]),
        ("not JSON", clap_blob(b"this is not a state"), false, vec![]),
        ("JSON, not a state", clap_blob(b"[1, 2, 3]"), false, vec![]),
        ("binary garbage", (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect(), false, vec![]),
        ("empty", Vec::new(), false, vec![]),
        ("four bytes", vec![1, 2, 3, 4], false, vec![]),
    ]
}

#[test]
fn clap_bad_states_load_sensible_values_with_warnings() {
    let a = artifacts();
    let dir = scratch_dir("state-bad-clap");
    let input = melody_wav(&dir, 3.0);
    let (defaults, _, _) = clap(&a, &input, &dir.join("defaults.wav"), &[]);
    for (i, (what, blob, accepted, warnings)) in bad_states().into_iter().enumerate() {
        let path = dir.join(format!("state-{i}.clapstate"));
        std::fs::write(&path, &blob).unwrap();
        let saved = dir.join(format!("saved-{i}.clapstate"));
        let (report, out, stderr) =
            clap(&a, &input, &dir.join(format!("out-{i}.wav")), &["--load-state", path.to_str().unwrap(), "--save-state", saved.to_str().unwrap()]);
        let logged: Vec<&str> = stderr.lines().filter(|l| l.contains("HummingFace state")).collect();
        eprintln!("{what}: loaded {}, {} warnings logged", report["state_loaded"], logged.len());
        for l in &logged {
            eprintln!("    {l}");
        }
        assert_eq!(report["state_loaded"], accepted, "{what}: state accepted?");
        for w in &warnings {
            assert!(logged.iter().any(|l| l.contains(w)), "{what}: no warning mentioning {w} in the log:\n{}", tail(&stderr, 3000));
        }
        if warnings.is_empty() {
            assert!(logged.is_empty(), "{what}: unexpected warnings {logged:?}");
        }
        if !accepted {
            assert_eq!(values(&report), values(&defaults), "{what}: a rejected state changed parameters");
        }
        // Every value the host sees is inside the parameter's range.
        for p in report["params"].as_array().unwrap() {
            let (v, lo, hi) = (p["value"].as_f64().unwrap(), p["min"].as_f64().unwrap(), p["max"].as_f64().unwrap());
            assert!(v.is_finite() && v >= lo && v <= hi, "{what}: {} = {v} outside {lo}..{hi}", p["name"]);
        }
        // It plays: finite, bounded, notes.
        let notes = report["notes"].as_array().map_or(0, Vec::len);
        assert!(out.iter().flatten().all(|x| x.is_finite()), "{what}: non-finite output");
        let p = peak(&out);
        assert!(p < 4.0 && p > 1e-3, "{what}: output peak {p}");
        assert!(notes > 0, "{what}: no notes");
        // What it saves back is a clean current state that loads without a warning.
        let json = json_of_blob(&std::fs::read(&saved).unwrap());
        if !what.contains("newer") {
            assert_eq!(json["fields"]["state-version"], hummingface::STATE_VERSION.to_string(), "{what}");
        }
        let again = HummingFaceParams::default();
        let w = load_state(&again, &serde_json::to_vec(&json).unwrap()).unwrap();
        let w: Vec<&String> = w.iter().filter(|w| !w.contains("newer version")).collect();
        assert!(w.is_empty(), "{what}: the state saved back still needs repairs: {w:?}");
    }
    // Specific values: the newer build's known parameters load; out-of-range ones are clamped
    // (a CLAP host sees floats normalised, 0..1), infinite ones become the default.
    let run = |i: usize| {
        let path = dir.join(format!("state-{i}.clapstate"));
        clap(&a, &input, &dir.join("check.wav"), &["--load-state", path.to_str().unwrap()]).0
    };
    let future = run(2);
    let near = |a: f64, b: f64| (a - b).abs() < 1e-6;
    assert!(near(value_of(&future, "Key"), 2.0), "key D from the newer state");
    assert!(near(value_of(&future, "Mix"), 0.75), "mix 75 % from the newer state");
    let clamped = run(4);
    assert!(near(value_of(&clamped, "Mix"), 1.0), "mix 7.0 clamps to 100 %");
    assert!(near(value_of(&clamped, "Gain"), value_of(&defaults, "Gain")), "infinite gain is the default");
    assert!(near(value_of(&clamped, "Transpose"), 0.0), "transpose −2000000 clamps to −24");
    assert!(near(value_of(&clamped, "Minimum note"), 0.0), "min note −50 clamps to 0");
}

#[test]
fn bad_states_in_process_load_sensible_values_and_say_why() {
    let audio = melody(2.0);
    for (what, blob, accepted, expected) in bad_states() {
        if what.starts_with("length prefix") {
            // Only the CLAP stream framing is damaged; the JSON inside is a good state.
            continue;
        }
        let json = if blob.len() >= 8 { &blob[8..] } else { &blob[..] };
        let params = HummingFaceParams::default();
        let result = load_state(&params, json);
        assert_eq!(result.is_ok(), accepted, "{what}: {result:?}");
        let warnings = result.unwrap_or_default();
        eprintln!("{what}: {} warnings", warnings.len());
        for w in &expected {
            assert!(warnings.iter().any(|l| l.contains(w)), "{what}: no warning mentioning {w}: {warnings:?}");
        }
        for (id, ptr, _) in params.param_map() {
            // SAFETY: `ptr` points into `params`, alive here.
            let (v, lo, hi) = unsafe { (ptr.unmodulated_plain_value(), ptr.preview_plain(0.0), ptr.preview_plain(1.0)) };
            assert!(v.is_finite() && v >= lo && v <= hi, "{what}: {id} = {v} outside {lo}..{hi}");
        }
        let size = *params.editor_size.lock().unwrap();
        assert_eq!(size, size.clamped(), "{what}: editor size {size:?}");
        assert!(size.width >= EditorSize::MIN.width);

        // The loaded instance renders: finite and bounded, allocation-free.
        let out = render_in_process(&audio, |p| {
            let _ = load_state(p, json);
        });
        assert!(out.iter().flatten().all(|x| x.is_finite()), "{what}: non-finite output");
        let pk = peak(&out);
        assert!(pk < 4.0 && pk > 1e-3, "{what}: output peak {pk}");
    }
}

/// The VST3 in pedalboard (JUCE's VST3 host): the plugin's state JSON goes inside the
/// `IComponent` part of pedalboard's `raw_state` (JUCE base64). A state with out-of-range,
/// infinite and unknown values loads repaired, with the warnings in the log; a truncated or
/// garbage state is refused (the parameters keep the values they had) without a panic.
#[test]
fn vst3_in_pedalboard_repairs_or_refuses_bad_states() {
    let a = artifacts();
    let dir = scratch_dir("state-bad-vst3");
    let states = bad_states();
    let pick = |name: &str| {
        let blob = &states.iter().find(|s| s.0 == name).unwrap().1;
        let path = dir.join(format!("{}.json", name.replace(' ', "-")));
        std::fs::write(&path, &blob[8..]).unwrap();
        path
    };
    let (good, ranges, future, truncated, garbage) = (
        pick("a state saved by this build"),
        pick("out of range and infinite"),
        pick("from a newer build (state 99, unknown parameters and fields)"),
        pick("truncated JSON"),
        pick("not JSON"),
    );
    let script = r#"
import json, sys
import numpy as np
import pedalboard
ALPHA = ".ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+"
def enc(b):
    nbits = len(b) * 8
    chars = []
    for i in range((nbits + 5) // 6):
        v = 0
        for k in range(6):
            bit = i * 6 + k
            if bit < nbits and (b[bit // 8] >> (bit % 8)) & 1:
                v |= 1 << k
        chars.append(ALPHA[v])
    return f"{len(b)}." + "".join(chars)
plugin = pedalboard.load_plugin(sys.argv[1])
# JUCE's VST3 state: b"VC2!", the XML's length (u32 LE), the XML, a NUL.
blob = plugin.raw_state
assert blob[:4] == b"VC2!"
text = blob[8:8 + int.from_bytes(blob[4:8], "little")].decode("latin1")
s = text.index("<IComponent>") + len("<IComponent>")
e = text.index("</IComponent>")
results = []
for path in sys.argv[2:]:
    component = open(path, "rb").read()
    xml = (text[:s] + enc(component) + text[e:]).encode("latin1")
    error = None
    try:
        plugin.raw_state = b"VC2!" + len(xml).to_bytes(4, "little") + xml + b"\0"
    except Exception as ex:
        error = str(ex)
    out = plugin.process(np.zeros((2, 4800), dtype=np.float32), 48000)
    results.append({"state": path, "error": error, "finite": bool(np.isfinite(out).all()),
                    "params": {n: str(getattr(plugin, n)) for n in plugin.parameters}})
print(json.dumps(results))
"#;
    let python = pedalboard_python().unwrap_or_else(|e| panic!("{e:#}"));
    let done = run_with_timeout(
        Command::new(python).arg("-c").arg(script).arg(&a.vst3).args([&good, &ranges, &truncated, &future, &garbage]),
        CHILD_TIMEOUT,
        "pedalboard",
    )
    .unwrap();
    assert!(!done.stderr.contains("panicked"), "panic:\n{}", tail(&done.stderr, 4000));
    let done = done.check("pedalboard raw_state").unwrap_or_else(|e| panic!("{e:#}{}", a.stale_note));
    let results = parse_last_json_array(&done.stdout);
    let param = |i: usize, name: &str| results[i]["params"][name].as_str().unwrap_or_default().to_string();
    for (i, r) in results.iter().enumerate() {
        eprintln!("{}: error {:?}, {}", r["state"], r["error"], r["params"]);
        assert_eq!(r["finite"], true, "state {i}: non-finite output");
    }
    // The good state: key D, natural minor, +3, mix 75 %.
    assert!(param(0, "key").starts_with('D') && param(0, "transpose_st").starts_with('3') && param(0, "mix").starts_with("75"));
    // Out of range: mix 7 → 100 %, transpose −2000000 → −24, release 1e9 → 3000 ms, infinite
    // gain → 0 dB, the key it names (D) loads.
    assert!(param(1, "mix").starts_with("100"), "{}", param(1, "mix"));
    assert!(param(1, "transpose_st").starts_with("-24"), "{}", param(1, "transpose_st"));
    assert!(param(1, "release_ms").starts_with("3000"), "{}", param(1, "release_ms"));
    assert!(param(1, "gain_db").starts_with('0'), "{}", param(1, "gain_db"));
    assert!(param(1, "key").starts_with('D'));
    // Truncated: refused, the previous values stay.
    assert_eq!(results[2]["params"], results[1]["params"], "a truncated state changed the parameters");
    // From a newer build: its known parameters load.
    assert!(param(3, "key").starts_with('D') && param(3, "mix").starts_with("75"));
    // Not JSON: refused, the previous values stay.
    assert_eq!(results[4]["params"], results[3]["params"], "a garbage state changed the parameters");
    for w in ["\"mix\" in the state: 7 is outside", "\"gain\" in the state: inf", "newer version", "unknown parameter \"reverb\""] {
        assert!(done.stderr.contains(w), "no warning {w:?} in the log:\n{}", tail(&done.stderr, 4000));
    }
}

/// The last line of `stdout` that parses as a JSON array.
fn parse_last_json_array(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Vec<serde_json::Value>>(l).ok())
        .unwrap_or_else(|| panic!("no JSON array in:\n{}", tail(stdout, 3000)))
}
