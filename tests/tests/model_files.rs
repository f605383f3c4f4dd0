//! Issue 6, model files in the plugin: an instance's `model-path` (saved with the project, set
//! in the editor) or `$HUMMINGFACE_MODEL` names a model file (safetensors). A file that is
//! missing, empty, truncated, not safetensors, has a tensor of the wrong shape, misses a tensor,
//! or holds NaN or infinite weights is not used: the plugin runs its built-in model, the reason
//! (naming the file) is shown in the editor's status line (`EngineInfo::model_note`) and logged,
//! and the piano still plays. A good file is used.
//!
//! The bad files are made from the built-in weights (`EMBEDDED_WEIGHTS`) by damaging one thing
//! each. In process through the real plugin (`Plugin::activate`/`process`), and the log line
//! through the real `HummingFace.clap` in `hf-clap-host`.

use std::path::{Path, PathBuf};
use std::process::Command;

use hummingface::{EngineInfo, MODEL_ENV};
use hummingface_runtime::decoder::DecoderTuning;
use hummingface_runtime::model::EMBEDDED_WEIGHTS;
use hummingface_runtime::Model;
use hummingface_tests::inproc::{all_params, set_normalized, InProcessHost};
use hummingface_tests::pitch::dominant_fundamental;
use hummingface_tests::{clap_host_bin, parse_last_json, run_with_timeout, scratch_dir, sung_note, tail, write_wav, Artifacts, CHILD_TIMEOUT};

const SR: u32 = 48_000;

/// A model file's tensors by name.
type Tensors = Vec<(&'static str, hummingface_runtime::model::HostTensor)>;

/// The safetensors header of `bytes` (JSON) and where the data starts.
fn header(bytes: &[u8]) -> (serde_json::Map<String, serde_json::Value>, usize) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let h: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    (h.as_object().unwrap().clone(), 8 + n)
}

/// Safetensors bytes with `header` and `data`.
fn assemble(header: &serde_json::Map<String, serde_json::Value>, data: &[u8]) -> Vec<u8> {
    let mut h = serde_json::to_vec(header).unwrap();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out
}

/// The largest 2-D tensor of the built-in model: (name, shape, byte range in the data).
fn a_matrix() -> (String, Vec<u64>, (usize, usize)) {
    let (h, _) = header(EMBEDDED_WEIGHTS);
    h.iter()
        .filter(|(k, _)| *k != "__metadata__")
        .filter_map(|(k, v)| {
            let shape: Vec<u64> = v["shape"].as_array()?.iter().map(|d| d.as_u64().unwrap()).collect();
            let off = v["data_offsets"].as_array()?;
            let range = (off[0].as_u64()? as usize, off[1].as_u64()? as usize);
            (shape.len() == 2 && shape[0] != shape[1] && shape[0] > 1 && shape[1] > 1).then(|| (k.clone(), shape, range))
        })
        .max_by_key(|(_, _, r)| r.1 - r.0)
        .expect("the model has a non-square matrix")
}

/// The bad model files: (what, path, words the reason must contain).
fn bad_files(dir: &Path) -> Vec<(&'static str, PathBuf, Vec<String>)> {
    let w = EMBEDDED_WEIGHTS;
    let (h, start) = header(w);
    let data = &w[start..];
    let (name, shape, (a, b)) = a_matrix();
    let write = |file: &str, bytes: &[u8]| {
        let p = dir.join(file);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    // Wrong shape: the same elements, transposed shape (still a valid safetensors file).
    let mut transposed = h.clone();
    transposed[&name]["shape"] = serde_json::json!([shape[1], shape[0]]);
    // A tensor missing: the header without it (its bytes stay, unreferenced... safetensors
    // wants the data to be covered exactly, so the tensor is renamed instead).
    let mut renamed = h.clone();
    let v = renamed.remove(&name).unwrap();
    renamed.insert(format!("{name}.old"), v);
    // NaN and infinite weights inside the data.
    let mut nan = data.to_vec();
    for chunk in nan[a..b].chunks_exact_mut(4) {
        chunk.copy_from_slice(&f32::NAN.to_le_bytes());
    }
    let mut inf = data.to_vec();
    let mid = a + ((b - a) / 8) * 4;
    inf[mid..mid + 4].copy_from_slice(&f32::INFINITY.to_le_bytes());
    // Another dtype for one tensor: F16 over half the bytes is not a valid file; declare I32.
    let mut int = h.clone();
    int[&name]["dtype"] = serde_json::json!("I32");
    let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // Valid files the engine cannot play right: a listener trained for another detection delay
    // (`train listener --hops 8`), and context offsets out of range.
    let edited = |edit: &dyn Fn(&mut Tensors)| {
        let mut t = Model::embedded().tensors();
        edit(&mut t);
        Model::serialize("edited", &t).unwrap()
    };
    let other_delay = edited(&|t| t.iter_mut().filter(|(n, _)| *n == "listener.net.calib").for_each(|(_, c)| c.data[2] = 8.0));
    let far_context = edited(&|t| {
        let context = t.iter_mut().find(|(n, _)| *n == "listener.net.context").expect("the shipped listener names its context");
        *context.1.data.last_mut().unwrap() = 100.0;
    });
    // A tensor this build does not read (a later build's layer): played without it, the network
    // would be wrong.
    let unknown_tensor = edited(&|t| t.push(("listener.net.wx", hummingface_runtime::model::HostTensor { shape: vec![2], data: vec![0.5, 0.5] })));
    let half_hop_context = edited(&|t| {
        let context = t.iter_mut().find(|(n, _)| *n == "listener.net.context").expect("the shipped listener names its context");
        context.1.data[1] = 2.5;
    });
    // The decoder's thresholds fitted to the listener (`eval fit-decoder --write`), one out of
    // its range: the live row's pitch confidence 1.5 (a share, at most 1).
    let bad_thresholds = edited(&|t| {
        t.retain(|(n, _)| *n != "listener.net.decoder");
        let mut rows: Vec<f32> = [DecoderTuning::default().to_row(), DecoderTuning::placement().to_row()].concat();
        rows[10] = 1.5;
        t.push(("listener.net.decoder", hummingface_runtime::model::HostTensor { shape: vec![rows.len()], data: rows }))
    });
    vec![
        ("missing file", dir.join("nowhere.safetensors"), words(&["cannot read model file", "nowhere.safetensors"])),
        ("a directory", dir.to_path_buf(), words(&["cannot read model file"])),
        ("empty file", write("empty.safetensors", b""), words(&["not a valid safetensors file"])),
        ("truncated (first half)", write("truncated.safetensors", &w[..w.len() / 2]), words(&["not a valid safetensors file"])),
        ("header only", write("header-only.safetensors", &w[..start]), words(&["not a valid safetensors file"])),
        ("not safetensors (text)", write("text.safetensors", b"these are not the weights you are looking for\n"), words(&["not a valid safetensors file"])),
        ("wrong shape (one matrix transposed)", write("transposed.safetensors", &assemble(&transposed, data)), words(&["has shape", &name])),
        ("a tensor missing", write("missing-tensor.safetensors", &assemble(&renamed, data)), words(&["lacks tensor", &name])),
        ("wrong dtype", write("int.safetensors", &assemble(&int, data)), words(&["dtype", &name])),
        ("NaN-filled matrix", write("nan.safetensors", &assemble(&h, &nan)), words(&["non-finite", &name])),
        ("one infinite weight", write("inf.safetensors", &assemble(&h, &inf)), words(&["non-finite", &name])),
        ("listener of another detection delay", write("delay8.safetensors", &other_delay), words(&["looks 8 hops ahead", "listeners that look 3 hops ahead"])),
        ("context offset out of range", write("context100.safetensors", &far_context), words(&["listener.net.context", "context offset 100", "63 hops back"])),
        ("context offset between hops", write("context2.5.safetensors", &half_hop_context), words(&["listener.net.context", "holds 2.5", "whole numbers of hops"])),
        ("a tensor this build does not read", write("unknown-tensor.safetensors", &unknown_tensor), words(&["listener.net.wx", "not one this build reads"])),
        ("decoder threshold out of range", write("decoder-thresholds.safetensors", &bad_thresholds), words(&["listener.net.decoder", "(live)", "confidence min 1.5"])),
    ]
}

/// Activates an offline stereo instance with `model_path` (and whatever `$HUMMINGFACE_MODEL`
/// says), renders sung A3 piano-only, and returns what the editor would show and the output.
fn activate_and_render(model_path: &str) -> (EngineInfo, Vec<f32>) {
    let mut host = InProcessHost::new(2, SR as f32, 512, true);
    *host.plugin.hf_params().model_path.lock().unwrap() = model_path.to_string();
    let params = host.params();
    for (id, p, _) in all_params(&params) {
        if id == "mix" {
            // SAFETY: `params` is alive.
            unsafe { set_normalized(&p, 1.0) };
        }
    }
    assert!(host.activate(), "activation with model path {model_path:?} failed");
    let info = host.plugin.monitor().engine().expect("an active engine is described");
    let audio = sung_note(57.0, 0.1, 1.0, 1.3, SR);
    let mut out = Vec::new();
    for chunk in audio.chunks(512) {
        let (mut l, mut r) = (chunk.to_vec(), chunk.to_vec());
        host.process(&mut [&mut l, &mut r]);
        out.extend_from_slice(&l);
    }
    host.deactivate();
    (info, out)
}

fn plays_a3(out: &[f32], what: &str) {
    assert!(out.iter().all(|x| x.is_finite() && x.abs() < 2.0), "{what}: output not finite or out of bounds");
    let p = dominant_fundamental(out, SR).unwrap_or_else(|| panic!("{what}: no pitch in the output"));
    assert!((p.midi - 57.0).abs() < 0.5, "{what}: plays midi {:.2}, expected 57 (A3)", p.midi);
}

#[test]
fn bad_model_files_fall_back_to_the_built_in_model_and_say_why() {
    std::env::remove_var(MODEL_ENV);
    let dir = scratch_dir("model-files");
    let builtin = Model::embedded();
    let (reference_info, reference) = activate_and_render("");
    assert_eq!(reference_info.model_note, None);
    assert!(reference_info.model.contains("built in"), "{}", reference_info.model);
    plays_a3(&reference, "built-in model");

    for (what, path, words) in bad_files(&dir) {
        let (info, out) = activate_and_render(path.to_str().unwrap());
        let note = info.model_note.clone().unwrap_or_else(|| panic!("{what}: no reason shown for not using {}", path.display()));
        eprintln!("{what}: {note}");
        assert!(note.contains(&path.display().to_string()), "{what}: the reason does not name the file: {note}");
        assert!(note.contains("using the built-in model"), "{what}: {note}");
        for w in &words {
            assert!(note.contains(w.as_str()), "{what}: the reason does not say {w:?}: {note}");
        }
        assert_eq!(info.model, format!("{} (built in)", builtin.name()), "{what}");
        assert!(info.stats.trained_listener.load(std::sync::atomic::Ordering::Relaxed), "{what}: the built-in model's network listener does not run");
        plays_a3(&out, what);
        assert_eq!(out, reference, "{what}: the fallback is not exactly the built-in model");
    }

    // A good file (the built-in weights, written out) is used and renders the same.
    let good = dir.join("good.safetensors");
    std::fs::write(&good, EMBEDDED_WEIGHTS).unwrap();
    let (info, out) = activate_and_render(good.to_str().unwrap());
    eprintln!("good file: {}", info.model);
    assert_eq!(info.model_note, None, "a good file was refused");
    assert!(info.model.contains(good.to_str().unwrap()), "{}", info.model);
    assert_eq!(out, reference, "the same weights from a file render differently");
}

#[test]
fn model_env_var_is_used_when_the_state_names_no_model() {
    let dir = scratch_dir("model-env");
    let good = dir.join("good.safetensors");
    std::fs::write(&good, EMBEDDED_WEIGHTS).unwrap();
    let files = bad_files(&dir);
    let nan = &files.iter().find(|f| f.0.starts_with("NaN")).unwrap().1;

    // SAFETY (for the edition-2024 rule): this test binary runs each test in its own process
    // under nextest; nothing else reads the environment concurrently.
    std::env::set_var(MODEL_ENV, nan);
    let (info, out) = activate_and_render("");
    let note = info.model_note.expect("the NaN file named by the environment is refused");
    assert!(note.contains("non-finite") && note.contains(nan.to_str().unwrap()), "{note}");
    plays_a3(&out, "env var with a NaN file");

    std::env::set_var(MODEL_ENV, &good);
    let (info, _) = activate_and_render("");
    assert_eq!(info.model_note, None);
    assert!(info.model.contains(good.to_str().unwrap()), "{}", info.model);

    // The instance's own path wins over the environment.
    let (info, _) = activate_and_render(nan.to_str().unwrap());
    assert!(info.model_note.is_some_and(|n| n.contains("non-finite")));
    std::env::remove_var(MODEL_ENV);
}

#[test]
fn a_changed_model_path_is_loaded_at_the_next_activation() {
    std::env::remove_var(MODEL_ENV);
    let dir = scratch_dir("model-switch");
    let files = bad_files(&dir);
    let truncated = &files.iter().find(|f| f.0.starts_with("truncated")).unwrap().1;
    let mut host = InProcessHost::new(1, SR as f32, 256, false);
    assert!(host.activate());
    assert_eq!(host.plugin.monitor().engine().unwrap().model_note, None);
    // The editor's "Use" sets the path and asks the host for a restart.
    *host.plugin.hf_params().model_path.lock().unwrap() = truncated.display().to_string();
    host.deactivate();
    assert!(host.activate());
    let note = host.plugin.monitor().engine().unwrap().model_note.expect("the new path was read");
    assert!(note.contains("truncated.safetensors"), "{note}");
    // The file fixed in place (same path) is read at the next activation.
    std::fs::write(truncated, EMBEDDED_WEIGHTS).unwrap();
    host.deactivate();
    assert!(host.activate());
    let info = host.plugin.monitor().engine().unwrap();
    assert_eq!(info.model_note, None, "the fixed file is still refused");
    assert!(info.model.contains("truncated.safetensors"), "{}", info.model);
    // Back to the built-in model.
    host.plugin.hf_params().model_path.lock().unwrap().clear();
    host.deactivate();
    assert!(host.activate());
    assert_eq!(host.plugin.monitor().engine().unwrap().model_note, None);
    host.deactivate();
}

#[test]
fn clap_logs_why_a_model_file_is_not_used() {
    let a = Artifacts::locate().unwrap_or_else(|e| panic!("{e:#}"));
    let dir = scratch_dir("model-clap");
    let files = bad_files(&dir);
    let input = dir.join("a3.wav");
    write_wav(&input, &[sung_note(57.0, 0.1, 1.0, 1.3, SR)], SR).unwrap();
    for what in ["NaN-filled matrix", "wrong shape (one matrix transposed)", "truncated (first half)", "missing file"] {
        let path = &files.iter().find(|f| f.0 == what).unwrap().1;
        let out = dir.join("out.wav");
        let mut cmd = Command::new(clap_host_bin());
        cmd.arg(&a.clap).arg("--input").arg(&input).arg("--output").arg(&out).args(["--json", "--offline"]).env(MODEL_ENV, path);
        let done = run_with_timeout(&mut cmd, CHILD_TIMEOUT, "hf-clap-host").unwrap();
        assert!(!done.stderr.contains("panicked"), "{what}: panic:\n{}", tail(&done.stderr, 3000));
        let done = done.check("hf-clap-host").unwrap_or_else(|e| panic!("{what}: {e:#}{}", a.stale_note));
        let line = done.stderr.lines().find(|l| l.contains("WARN") && l.contains("not used")).unwrap_or_else(|| {
            panic!("{what}: no warning in the log:\n{}", tail(&done.stderr, 3000))
        });
        eprintln!("{what}: {line}");
        assert!(line.contains(path.to_str().unwrap()), "{what}: {line}");
        let report = parse_last_json(&done.stdout).unwrap();
        assert!(report["notes"].as_array().is_some_and(|n| n.iter().any(|n| n["key"] == 57)), "{what}: A3 not played");
    }
}
