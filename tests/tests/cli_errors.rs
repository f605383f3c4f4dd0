//! The command-line renderer on bad input: a clear one-line error, a non-zero exit, no output
//! file left behind; and a good render next to them still works.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use hummingface_tests::{assert_no_temporary_files, run_with_timeout, scratch_dir, write_wav, Artifacts};

fn render(cli: &Path, args: &[&str]) -> hummingface_tests::Finished {
    run_with_timeout(Command::new(cli).arg("render").args(args), Duration::from_secs(60), "hummingface render").unwrap()
}

#[test]
fn bad_inputs_fail_clearly_and_leave_nothing_behind() {
    let a = Artifacts::locate().unwrap();
    let dir = scratch_dir("cli_errors");
    let text = dir.join("notes.wav");
    std::fs::write(&text, "this is not audio\n").unwrap();
    let empty = dir.join("empty.wav");
    std::fs::write(&empty, b"").unwrap();
    let zero = dir.join("zero.wav");
    write_wav(&zero, &[Vec::new()], 48000).unwrap();
    let truncated = dir.join("truncated.wav");
    let good = dir.join("good.wav");
    write_wav(&good, &[hummingface_tests::sung_note(57.0, 0.1, 0.4, 0.6, 48000)], 48000).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&truncated, &bytes[..30]).unwrap();
    let low_rate = dir.join("4k.wav");
    write_wav(&low_rate, &[vec![0.0; 4000]], 4000).unwrap();
    let bad_model = dir.join("model.safetensors");
    std::fs::write(&bad_model, b"\x08\0\0\0\0\0\0\0{}garbage").unwrap();

    // A valid file whose listener was trained for another detection delay: it would play mistimed.
    let delay_model = dir.join("delay8.safetensors");
    let mut t = hummingface_runtime::Model::embedded().tensors();
    t.iter_mut().filter(|(n, _)| *n == "listener.net.calib").for_each(|(_, c)| c.data[2] = 8.0);
    std::fs::write(&delay_model, hummingface_runtime::Model::serialize("delay8", &t).unwrap()).unwrap();

    let good_s = good.to_str().unwrap();
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("missing file", vec!["/nonexistent/vocal.wav"]),
        ("text named .wav", vec![text.to_str().unwrap()]),
        ("empty file", vec![empty.to_str().unwrap()]),
        ("zero-length WAV", vec![zero.to_str().unwrap()]),
        ("truncated WAV", vec![truncated.to_str().unwrap()]),
        ("4 kHz input", vec![low_rate.to_str().unwrap()]),
        ("directory", vec![dir.to_str().unwrap()]),
        ("corrupt model", vec![good_s, "--model", bad_model.to_str().unwrap()]),
        ("model for another detection delay", vec![good_s, "--model", delay_model.to_str().unwrap()]),
        ("NaN mix", vec![good_s, "--mix", "nan"]),
        ("unknown scale", vec![good_s, "--scale", "lydian-flat-13"]),
        ("unknown device", vec![good_s, "--device", "tpu"]),
    ];
    for (what, args) in cases {
        let out = dir.join(format!("out-{}.wav", what.replace(' ', "-")));
        let mut full: Vec<&str> = args.clone();
        full.push("-o");
        let out_s = out.to_str().unwrap().to_string();
        full.push(&out_s);
        let res = render(&a.cli, &full);
        res.assert_failed_cleanly(what, &out);
        assert_no_temporary_files(&dir, what);
    }
    let out = dir.join("good-out.wav");
    let res = render(&a.cli, &[good_s, "-o", out.to_str().unwrap()]);
    assert!(res.status.success(), "good render failed:\n{}", res.stderr);
    assert!(out.exists());

    // A model file without the trained listener (what `cargo xtask gen-weights` makes): the
    // default listens with v0 and says so; asking for the trained listener is a clear error.
    let v0_model = concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/hummingface-v0.safetensors");
    let out = dir.join("v0-model-out.wav");
    let res = render(&a.cli, &[good_s, "-o", out.to_str().unwrap(), "--model", v0_model, "--json"]);
    assert!(res.status.success(), "render with a v0 model failed:\n{}", res.stderr);
    assert!(res.stderr.contains("no trained listener"), "no note on stderr: {}", res.stderr);
    let report = hummingface_tests::parse_last_json(&res.stdout).unwrap();
    assert_eq!(report["listener"], "v0");
    let out = dir.join("v0-model-trained.wav");
    let res = render(&a.cli, &[good_s, "-o", out.to_str().unwrap(), "--model", v0_model, "--listener", "trained"]);
    res.assert_failed_cleanly("--listener trained with a v0 model", &out);
}
