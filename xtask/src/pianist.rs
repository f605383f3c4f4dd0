//! `cargo xtask train pianist`: analyse FluidR3's grand and train the pianist network.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{bail, Context, Result};
use hummingface_runtime::model::{HostTensor, Model};
use hummingface_runtime::pianist_net;
use hummingface_runtime::train::piano_data::{analyse_font, Font, PianoNote, FLUID_R3};
use hummingface_runtime::train::pianist::{train, LogRow, Progress, TrainConfig, TRAIN_VELOCITIES, VAL_VELOCITIES};
use indicatif::{ProgressBar, ProgressStyle};

use crate::train::{flag, log_step, plot_training_curves, set_flag, Panel, Series, SHIPPED};

/// Open FluidR3, or say how to install it.
pub fn fluid_r3() -> Result<Font> {
    if !Path::new(FLUID_R3).exists() {
        bail!("{FLUID_R3} is missing: install it with `apt-get install fluid-soundfont-gm` (or run `cargo xtask setup` as root)");
    }
    Font::open(Path::new(FLUID_R3)).map_err(anyhow::Error::msg)
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let b = ProgressBar::new(len);
    let t = format!("{{spinner}} {{msg}} [{{bar:40}}] {{pos}}/{{len}} {what}, {{elapsed}} elapsed, eta {{eta}}");
    b.set_style(ProgressStyle::with_template(&t).unwrap_or_else(|_| ProgressStyle::default_bar()));
    b
}

/// Render and analyse `keys` × `velocities` of FluidR3 with a progress bar.
pub fn analyse(font: &Font, keys: &[u8], velocities: &[u8], label: &str) -> Vec<PianoNote> {
    let b = bar((keys.len() * velocities.len()) as u64, "notes");
    b.set_message(label.to_string());
    let done = AtomicUsize::new(0);
    let notes = analyse_font(font, velocities, keys.iter().copied(), &|| {
        done.fetch_add(1, Ordering::Relaxed);
        b.inc(1);
    });
    b.finish();
    notes
}

/// Write `out` as the shipped model with every tensor of `base` except those whose names
/// start with `prefix`, plus `new`.
pub fn write_model(base: &Model, prefix: &str, new: Vec<(&'static str, HostTensor)>, out: &Path) -> Result<usize> {
    let mut all: Vec<(&'static str, HostTensor)> = base.tensors().into_iter().filter(|(n, _)| !n.starts_with(prefix)).collect();
    all.extend(new);
    let bytes = Model::serialize("hummingface-v1", &all)?;
    let tmp = out.with_extension("safetensors.tmp");
    std::fs::write(&tmp, &bytes)?;
    Model::from_file(&tmp).with_context(|| format!("reading back {}", tmp.display()))?;
    std::fs::rename(&tmp, out)?;
    Ok(bytes.len())
}

/// `cargo xtask train pianist [--steps N] [--seed S] [--batch B] [--key-step K] [--out FILE]`.
pub fn train_pianist(root: &Path, args: &[String]) -> Result<()> {
    hummingface_runtime::generator::pin_thread_count_env();
    let mut cfg = TrainConfig::default();
    set_flag(args, "--steps", &mut cfg.steps)?;
    set_flag(args, "--seed", &mut cfg.seed)?;
    set_flag(args, "--batch", &mut cfg.batch)?;
    set_flag(args, "--log-every", &mut cfg.log_every)?;
    let key_step: usize = flag(args, "--key-step")?.unwrap_or(1).max(1);
    let out: PathBuf = flag::<String>(args, "--out")?.map(PathBuf::from).unwrap_or_else(|| root.join(SHIPPED));
    // Loaded before training: a base file that cannot be read stops the command now, not after
    // the training (whose result would be lost).
    let base_path = if out.exists() { out.clone() } else { root.join(SHIPPED) };
    let base = Model::from_file(&base_path).with_context(|| format!("loading {} (the base of the file to write)", base_path.display()))?;
    let started = std::time::Instant::now();
    let font = fluid_r3()?;
    let keys: Vec<u8> = (pianist_net::FIRST_KEY..=pianist_net::LAST_KEY).step_by(key_step).collect();
    println!(
        "training the pianist on FluidR3's grand: {} keys × {} velocities (+{} held-out velocities), {} steps of {} frames, seed {}, {} parameters",
        keys.len(),
        TRAIN_VELOCITIES.len(),
        VAL_VELOCITIES.len(),
        cfg.steps,
        cfg.batch,
        cfg.seed,
        pianist_net::parameter_count()
    );
    let train_notes = analyse(&font, &keys, &TRAIN_VELOCITIES, "analysing (training velocities)");
    let val_notes = analyse(&font, &keys, &VAL_VELOCITIES, "analysing (held-out velocities)");
    let frames: usize = train_notes.iter().map(|n| n.frames.len()).sum();
    let mut tuning: Vec<f32> = train_notes.iter().map(|n| n.tuning_cents()).collect();
    tuning.sort_by(f32::total_cmp);
    println!(
        "data: {} notes, {frames} frames in {:.0} s; recordings' tuning vs equal temperament: median {:+.1} cents (range {:+.1}…{:+.1}); not learned",
        train_notes.len(),
        started.elapsed().as_secs_f64(),
        tuning[tuning.len() / 2],
        tuning[0],
        tuning[tuning.len() - 1]
    );
    for key in [21u8, 33, 45, 57, 69, 81, 93, 105] {
        if let Some(n) = train_notes.iter().find(|n| n.key == key && n.velocity == 80) {
            println!(
                "  key {key:>3}: f1 {:8.2} Hz ({:+5.1} cents), B {:.2e}, {} partials found, {} in band, {} frames",
                n.f1_hz,
                n.tuning_cents(),
                n.b,
                n.partials_found,
                n.partials_in_band,
                n.frames.len()
            );
        }
    }
    let run_dir = root.join("runs/train-pianist").join(format!("seed{}", cfg.seed));
    std::fs::create_dir_all(&run_dir)?;
    let csv_path = run_dir.join("log.csv");
    let mut csv = std::fs::File::create(&csv_path)?;
    writeln!(csv, "step,seconds,lr,loss,amp_loss,cents_loss,noise_loss,val_loss,val_amp_db")?;
    let b = bar(cfg.steps as u64, "steps");
    let mut rows: Vec<LogRow> = Vec::new();
    let (tensors, _) = train(&cfg, &train_notes, &val_notes, &mut |p| match p {
        Progress::Step { loss, .. } => {
            b.inc(1);
            b.set_message(format!("loss {loss:.4}"));
        }
        Progress::Log(r) => {
            log_step(
                &b,
                &mut csv,
                format!(
                    "{},{:.1},{:.6},{:.5},{:.5},{:.5},{:.5},{:.5},{:.3}",
                    r.step, r.seconds, r.lr, r.loss, r.amp_loss, r.cents_loss, r.noise_loss, r.val_loss, r.val_amp_db
                ),
                format!(
                    "step {:>6}  loss {:.4} (amp {:.4} cents {:.5} noise {:.4})  held-out loss {:.4}, partial level error {:.2} dB RMS",
                    r.step, r.loss, r.amp_loss, r.cents_loss, r.noise_loss, r.val_loss, r.val_amp_db
                ),
            );
            rows.push(r.clone());
        }
    })?;
    b.finish();
    let png = run_dir.join("curves.png");
    plot_curves(&rows, &png)?;
    let bytes = write_model(&base, "pianist.net.", tensors, &out)?;
    println!(
        "wrote {} ({bytes} bytes) in {:.1} min; log {}, curves {}",
        out.display(),
        started.elapsed().as_secs_f64() / 60.0,
        csv_path.display(),
        png.display()
    );
    Ok(())
}

fn plot_curves(rows: &[LogRow], path: &Path) -> Result<()> {
    use plotters::style::{BLUE, GREEN, RED};
    if rows.is_empty() {
        return Ok(());
    }
    let max_step = rows.last().map(|r| r.step).unwrap_or(1) as f32;
    let max_loss = rows.iter().map(|r| r.loss.max(r.val_loss)).filter(|v| v.is_finite()).fold(0.0f32, f32::max) * 1.05;
    let hi = rows.iter().map(|r| r.val_amp_db).filter(|v| v.is_finite()).fold(0.0f32, f32::max) * 1.05;
    let line = |f: fn(&LogRow) -> f32, color, label| Series { points: rows.iter().map(|r| (r.step as f32, f(r))).collect(), color, label };
    plot_training_curves(
        path,
        max_step,
        [
            Panel {
                caption: "loss",
                y: 0f32..max_loss.max(1e-4),
                series: vec![line(|r| r.loss, BLUE, Some("train")), line(|r| r.val_loss, RED, Some("held-out velocities"))],
                legend_lower_right: false,
            },
            Panel {
                caption: "held-out partial level error (dB RMS)",
                y: 0f32..hi.max(1.0),
                series: vec![line(|r| r.val_amp_db, GREEN, None)],
                legend_lower_right: false,
            },
        ],
    )
}
