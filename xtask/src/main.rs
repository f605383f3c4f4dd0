//! `cargo xtask <command>`: bundling (nice-plug-xtask) and the project's own tasks.

// Loops over a table and its index-matched results read better with the index.
#![allow(clippy::needless_range_loop)]

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cuda;
mod pianist;
mod pianist_eval;
mod train;

const USAGE: &str = "usage: cargo xtask <command>

  bundle hummingface [--release]   build the workspace, bundle HummingFace.vst3 / .clap
  setup                            install system packages (apt, as root) and the test venv
  demo                             setup, build, render the bundled demo vocal (runs/demo/)
  test                             setup, bundle, run every test (what .ci/run calls)
  gen-weights                      write assets/hummingface-v0.safetensors (v0 generator)
  demo-vocal                       write assets/demo-vocal.wav (formant-sung phrase)
  eval [N] [--trained] [--lookahead] note accuracy of the generator (v0 or trained listener; notes live or placed with lookahead) on N sung melodies
  eval listener [N] [--from K]     v0, YIN and the trained listener on N held-out synthetic clips (from clip K)
                                   [--clean] [--trained-only] [--model FILE] [--oracle voicing,pitch,start-pitch,onset]
  eval listener-dump [N] [--clean] [--wav] per-clip listener frames, tracker notes and ground truth (runs/dump*/); --wav: the clips too
  eval placement-curve [N] [--from K] [--clean]  note F1 of notes placed with lookahead against the latency it adds (docs/placement-curve.png)
  eval listener-real [--model FILE] [--png FILE]
                                   both listeners on ../shared/data/real-singing (docs/listener-real.png;
                                   with --model: that file's trained listener, runs/listener-real.png)
  eval fit-decoder [--model FILE] [--clips N] [--clean-clips M] [--rounds R] [--melodies K] [--min-gain G] [--only live|placed] [--hold KNOB,…] [--write] [--no-heldout]
                                   fit the note decoder's thresholds to a listener on validation clips (--write: into the model file), then score them held out and on fresh clips
  eval listener-frames FILE [A B]  the trained listener's frames of a recording from A to B s (pitch, confidence, voicing, onset)
  eval pianist [--model FILE]      trained vs v0 pianist vs FluidR3 against the held-out TimGM6mb piano (docs/pianist-eval.json)
  train listener [--steps N ...]   train the listener network (writes assets/hummingface-v1.safetensors)
  train listener-curve             reduced trainings at 0-3 hops of lookahead: note F1 vs latency
  train pianist [--steps N ...]    analyse FluidR3's grand, train the pianist (writes assets/hummingface-v1.safetensors)
  bench                            engine benchmarks on one core (model-runtime/benches/engine.rs)
  cuda-toolkit                     assemble the CUDA 13 toolkit from pinned PyPI wheels (.cuda/)
  build-cuda                       build the CUDA variant of the CLI (target/cuda-dist/)";

/// Debian packages the build and the tests need.
const APT_PACKAGES: &[&str] = &[
    "pkg-config",
    "libasound2-dev",
    "libjack-jackd2-dev",
    "libx11-xcb-dev",
    "libxcursor-dev",
    "libgl-dev",
    // The editor: baseview loads these at run time (keyboard map, OpenGL through Mesa).
    "libxkbcommon-x11-0",
    "jackd2",
    "xvfb",
    "xauth",
    "libgl1-mesa-dri",
    "xdotool",
    "x11-utils",
    "imagemagick",
    "python3-venv",
    // The pianist's training piano (FluidR3) and its held-out evaluation piano (TimGM6mb).
    "fluid-soundfont-gm",
    "timgm6mb-soundfont",
];

fn main() -> Result<()> {
    nice_plug_xtask::chdir_workspace_root()?;
    let root = std::env::current_dir()?;
    let mut args = std::env::args().skip(1);
    let cmd = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    // Help anywhere prints the commands and runs nothing: `train listener --help` would otherwise
    // start a training that overwrites the shipped weights when it ends.
    if [cmd.as_str()].into_iter().chain(rest.iter().map(String::as_str)).any(|a| a == "--help" || a == "-h" || a == "help") {
        println!("{USAGE}");
        return Ok(());
    }
    match cmd.as_str() {
        "bundle" => bundle(&root, &rest),
        "setup" => setup(&root),
        "demo" => demo(&root),
        "test" => test(&root, &rest),
        "gen-weights" => gen_weights(&root),
        "demo-vocal" => demo_vocal(&root),
        "eval" if rest.first().map(String::as_str) == Some("listener") => train::eval_listener(&root, &rest[1..]),
        "eval" if rest.first().map(String::as_str) == Some("listener-dump") => train::dump_listener(&root, &rest[1..]),
        "eval" if rest.first().map(String::as_str) == Some("listener-real") => train::eval_listener_real(&root, &rest[1..]),
        "eval" if rest.first().map(String::as_str) == Some("placement-curve") => train::placement_curve(&root, &rest[1..]),
        "eval" if rest.first().map(String::as_str) == Some("fit-decoder") => train::fit_decoder(&root, &rest[1..]),
        "eval" if rest.first().map(String::as_str) == Some("listener-frames") => train::listener_frames(&root, &rest[1..]),
        "eval" if rest.first().map(String::as_str) == Some("pianist") => pianist_eval::eval_pianist(&root, &rest[1..]),
        "eval" => eval(rest.first().and_then(|s| s.parse().ok()).unwrap_or(24), rest.iter().any(|a| a == "--trained"), rest.iter().any(|a| a == "--lookahead")),
        "train" => train::train_cmd(&root, &rest),
        "bench" => {
            run(Command::new("cargo").args(["bench", "--workspace", "--bench", "engine", "--", "audio"]).env("RAYON_NUM_THREADS", "1"))?;
            run(Command::new("taskset").args(["-c", "0", "cargo", "bench", "--workspace", "--bench", "engine", "--", "core"]).env("RAYON_NUM_THREADS", "1"))
        }
        "cuda-toolkit" => cuda::cuda_toolkit(&root).map(|p| println!("CUDA toolkit ready: {}", p.display())),
        "build-cuda" => cuda::build_cuda(&root, &rest),
        _ => bail!("{USAGE}"),
    }
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"))
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("+ {:?}", cmd);
    let status = cmd.status().with_context(|| format!("cannot run {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

/// Build the whole workspace (one feature selection for everything, so tests and bundles
/// share one build) and bundle the plugin with nice-plug-xtask.
fn bundle(root: &Path, args: &[String]) -> Result<()> {
    let (packages, other): (Vec<&String>, Vec<&String>) = args.iter().partition(|a| !a.starts_with('-'));
    let other: Vec<String> = other.into_iter().cloned().collect();
    let mut build_args = vec!["--workspace".to_string()];
    build_args.extend(other.iter().cloned());
    nice_plug_xtask::build(&[], &build_args)?;
    let packages: Vec<String> = if packages.is_empty() { vec!["hummingface".into()] } else { packages.into_iter().cloned().collect() };
    for p in packages {
        nice_plug_xtask::bundle(&target_dir(root), &p, &other, false)?;
    }
    Ok(())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

fn setup(root: &Path) -> Result<()> {
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .copied()
        .filter(|p| {
            !Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", p])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
                .unwrap_or(false)
        })
        .collect();
    if !missing.is_empty() {
        let line = format!("apt-get install -y --no-install-recommends {}", missing.join(" "));
        if is_root() {
            run(Command::new("apt-get").args(["update", "-qq"]))?;
            run(Command::new("sh").arg("-c").arg(format!("DEBIAN_FRONTEND=noninteractive {line}")))?;
        } else {
            bail!("missing system packages; run as root:\n  sudo apt-get update && sudo {line}");
        }
    }
    // The test venv: the script checks it imports what it installs (0.4 s when it does) and
    // installs only what is missing, so a venv left half-made by an interrupted run is completed.
    run(Command::new("bash").arg(root.join("tests/hosts/setup_venv.sh")))?;
    Ok(())
}

fn demo(root: &Path) -> Result<()> {
    setup(root)?;
    bundle(root, &["hummingface".into(), "--release".into()])?;
    let out = root.join("runs/demo");
    std::fs::create_dir_all(&out)?;
    let bin = target_dir(root).join("release/hummingface");
    run(Command::new(&bin).arg("info"))?;
    run(Command::new(&bin).args(["render"]).arg(root.join("assets/demo-vocal.wav")).arg("-o").arg(out.join("demo-piano.wav")).arg("--midi").arg(out.join("demo-piano.mid")))?;
    run(Command::new(&bin).args(["render"]).arg(root.join("assets/demo-vocal.wav")).arg("-o").arg(out.join("demo-mix.wav")).args(["--mix", "0.5", "--json"]))?;
    println!("\nDemo rendered: {}/demo-piano.wav (piano), demo-mix.wav (50 % vocal), demo-piano.mid", out.display());
    println!("Plugins: {}/bundled/HummingFace.vst3 and HummingFace.clap", target_dir(root).display());
    Ok(())
}

fn test(root: &Path, args: &[String]) -> Result<()> {
    setup(root)?;
    bundle(root, &["hummingface".into(), "--release".into()])?;
    let mut cmd = Command::new("cargo");
    cmd.args(["nextest", "run", "--workspace", "--release", "--no-fail-fast"]).args(args);
    run(&mut cmd)
}

fn gen_weights(root: &Path) -> Result<()> {
    let path = root.join("assets/hummingface-v0.safetensors");
    let bytes = hummingface_runtime::v0::build_file_bytes();
    std::fs::write(&path, &bytes)?;
    // Prove it loads through the same path the plugin uses.
    hummingface_runtime::Model::from_file(&path)?;
    println!("wrote {} ({} bytes)", path.display(), bytes.len());
    Ok(())
}

fn demo_vocal(root: &Path) -> Result<()> {
    let (notes, total) = hummingface_runtime::singer::demo_phrase();
    let sr = 44100.0;
    let singer = hummingface_runtime::Singer::default();
    let audio = singer.render(&notes, sr, total);
    let path = root.join("assets/demo-vocal.wav");
    let spec = hound::WavSpec { channels: 1, sample_rate: sr as u32, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(&path, spec)?;
    for x in audio {
        w.write_sample((x.clamp(-1.0, 1.0) * 32767.0).round() as i16)?;
    }
    w.finalize()?;
    println!("wrote {} ({} notes, {:.1} s)", path.display(), notes.len(), total);
    Ok(())
}

/// Note accuracy (mir_eval definitions) of the shipped generator on held-out synthetic melodies:
/// seeds `EVAL_FIRST_MELODY`.. (not used anywhere else), voices rotating male/female/child, 48 kHz. With
/// `lookahead` the render places its notes as `hummingface render` does by default.
fn eval(n: u64, trained: bool, lookahead: bool) -> Result<()> {
    use hummingface_runtime::eval::{score_notes, sung_melody, NoteScore, EVAL_FIRST_MELODY};
    use hummingface_runtime::*;
    let sr = 48000.0;
    let kind = if trained { generator::ListenerKind::Trained } else { generator::ListenerKind::V0 };
    let model = Model::embedded().listening_with(kind);
    let placement = if lookahead { NotePlacement::Lookahead } else { NotePlacement::Live };
    println!("listener: {:?}, notes placed: {placement:?}", model.listener());
    let mut total = NoteScore::default();
    let mut per_voice = [NoteScore::default(), NoteScore::default(), NoteScore::default()];
    println!("{:>6} {:>7} {:>5} {:>5} {:>7} {:>7} {:>7}", "seed", "voice", "ref", "est", "P", "R", "F1");
    for i in 0..n {
        let seed = EVAL_FIRST_MELODY + i;
        let vi = (i % 3) as usize;
        let (voice, audio, reference) = sung_melody(EVAL_FIRST_MELODY, i, sr);
        let res = render_offline(&[audio], sr, &RenderOptions { device: DeviceChoice::Cpu, notes: placement, ..Default::default() }, model.clone(), &mut |_| {})?;
        let estimated: Vec<(f32, f32)> = res.notes.iter().map(|n| (n.start_sample as f32 / sr, n.note as f32)).collect();
        let s = score_notes(&reference, &estimated, 0.05, 0.5);
        if std::env::var_os("HF_EVAL_VERBOSE").is_some() {
            println!("  ref: {}", reference.iter().map(|(t, m)| format!("{t:.3}:{m:.1}")).collect::<Vec<_>>().join(" "));
            println!("  est: {}", estimated.iter().map(|(t, m)| format!("{t:.3}:{m:.0}")).collect::<Vec<_>>().join(" "));
        }
        println!("{:>6} {:>7} {:>5} {:>5} {:>7.3} {:>7.3} {:>7.3}", seed, format!("{voice:?}"), s.n_ref, s.n_est, s.precision(), s.recall(), s.f1());
        per_voice[vi].add(&s);
        total.add(&s);
    }
    for (name, s) in ["male", "female", "child"].iter().zip(&per_voice) {
        println!("{name:>8}: P {:.3} R {:.3} F1 {:.3}", s.precision(), s.recall(), s.f1());
    }
    println!(
        "all {n} melodies: {} reference notes, {} estimated; note P {:.3} R {:.3} F1 {:.3}; onset error median {:+.1} ms, latest matched {:+.1} ms",
        total.n_ref, total.n_est, total.precision(), total.recall(), total.f1(), total.median_onset_error_ms(), total.max_late_ms()
    );
    Ok(())
}
