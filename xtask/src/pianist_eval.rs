//! `cargo xtask eval pianist [--model FILE]`: isolated notes across the keyboard, soft / medium
//! / loud, played by the trained pianist, the v0 pianist, FluidR3's sampled grand (the
//! training piano) and TimGM6mb's piano (held out: never trained on), measured with
//! `train::piano_eval` against the held-out piano. Writes docs/pianist-eval.json and
//! docs/pianist-spectrograms.png.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use hummingface_runtime::generator::{MidiIn, PianistKind};
use hummingface_runtime::train::piano_data::{Font, TIMGM6MB};
use hummingface_runtime::train::piano_eval::*;
use hummingface_runtime::{render_midi, DeviceChoice, Model, RenderOptions, TimedMidi};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde_json::json;

use crate::train::{flag, register_font};

const SR: f32 = 44100.0;
/// Seconds each key is held, then seconds after the release.
const HOLD_S: f32 = 2.0;
const TAIL_S: f32 = 1.0;
/// Time of the note-on in the pianists' renders (the onset is then found and put at 0).
const LEAD_S: f64 = 0.05;
const VELOCITIES: [(&str, u8); 3] = [("soft", 30), ("medium", 70), ("loud", 115)];
const SOURCES: [&str; 4] = ["trained", "v0", "fluidr3", "held-out"];
/// Fall measured for the decay time, dB.
const DECAY_DB: f32 = 20.0;
/// Window of the pitch measurement, seconds after the onset.
const PITCH_T: (f32, f32) = (0.1, 0.6);
/// Window of the centroid and the level, seconds after the onset.
const TIMBRE_T: (f32, f32) = (0.05, 0.55);
/// Keys in the spectrogram picture (loud).
const PICTURE_KEYS: [u8; 3] = [36, 60, 84];
/// Targets.
const PITCH_TARGET_CENTS: f32 = 3.0;
const ATTACK_TARGET_MS: f32 = 5.0;

/// Every 6th key from A0, C8, and the C's C2…C7.
fn keys() -> Vec<u8> {
    let mut k: Vec<u8> = (21..=108).step_by(6).collect();
    k.extend([36, 48, 60, 72, 84, 96, 108]);
    k.sort_unstable();
    k.dedup();
    k
}

fn is_c2_to_c7(key: u8) -> bool {
    key.is_multiple_of(12) && (36..=96).contains(&key)
}

pub fn note_name(key: u8) -> String {
    const N: [&str; 12] = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"];
    format!("{}{}", N[key as usize % 12], key as i32 / 12 - 1)
}

#[derive(Debug, Clone)]
struct Metrics {
    key: u8,
    velocity: u8,
    source: usize,
    distance_db: f32,
    attack_ms: f32,
    decay_s: Option<f32>,
    pitch_cents: Option<f32>,
    centroid_hz: f32,
    level_db: f32,
}

/// Cut `x` to start at its onset (1 % of the 1 ms envelope's peak), `len` samples long.
fn aligned(x: &[f32], len: usize) -> Vec<f32> {
    let on = onset_sample(x, SR, 0.01);
    let mut y: Vec<f32> = x[on..].iter().copied().take(len).collect();
    y.resize(len, 0.0);
    y
}

fn render_pianist(model: &Arc<Model>, key: u8, velocity: u8) -> Result<Vec<f32>> {
    let v = velocity as f32 / 127.0;
    let events = [
        TimedMidi { seconds: LEAD_S, event: MidiIn::On { note: key, velocity: v } },
        TimedMidi { seconds: LEAD_S + HOLD_S as f64, event: MidiIn::Off { note: key } },
    ];
    let seconds = LEAD_S + (HOLD_S + TAIL_S) as f64 + 0.05;
    let opts = RenderOptions { device: DeviceChoice::Cpu, ..Default::default() };
    let r = render_midi(&events, seconds, SR, &opts, model.clone(), &mut |_| {})?;
    Ok(r.samples)
}

fn measure(x: &[f32], held_out: &[f32], key: u8, velocity: u8, source: usize) -> Metrics {
    Metrics {
        key,
        velocity,
        source,
        distance_db: log_spectral_distance_db(x, held_out, &LSD_SIZES, LSD_FLOOR_DB),
        attack_ms: attack_time_s(segment(x, SR, 0.0, HOLD_S), SR) * 1e3,
        decay_s: decay_time_s(x, SR, HOLD_S, DECAY_DB),
        pitch_cents: pitch_error_cents(x, SR, key, PITCH_T.0, PITCH_T.1),
        centroid_hz: spectral_centroid_hz(x, SR, TIMBRE_T.0, TIMBRE_T.1),
        level_db: db(rms(segment(x, SR, TIMBRE_T.0, TIMBRE_T.1))),
    }
}

fn median(mut v: Vec<f32>) -> f32 {
    if v.is_empty() {
        return f32::NAN;
    }
    v.sort_by(f32::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { 0.5 * (v[n / 2 - 1] + v[n / 2]) }
}

fn opt(v: Option<f32>, prec: usize) -> String {
    v.map_or("-".to_string(), |x| format!("{x:.prec$}"))
}

pub fn eval_pianist(root: &Path, args: &[String]) -> Result<()> {
    hummingface_runtime::generator::pin_thread_count_env();
    let (model, model_name): (Model, String) = match flag::<String>(args, "--model")? {
        Some(p) => {
            let path = PathBuf::from(&p);
            (Model::from_file(&path).with_context(|| format!("reading {}", path.display()))?, path.display().to_string())
        }
        None => ((*Model::embedded()).clone(), "embedded".to_string()),
    };
    if !model.has_trained_pianist() {
        bail!("the {model_name} model carries no trained pianist (pass --model FILE with one)");
    }
    if !Path::new(TIMGM6MB).exists() {
        bail!("{TIMGM6MB} is missing: install it with `apt-get install timgm6mb-soundfont` (or run `cargo xtask setup` as root)");
    }
    let fluid = crate::pianist::fluid_r3()?;
    let held_out = Font::open(Path::new(TIMGM6MB)).map_err(anyhow::Error::msg)?;
    let trained = Arc::new(model.clone().with_pianist(PianistKind::Trained));
    let v0 = Arc::new(model.with_pianist(PianistKind::V0));
    let keys = keys();
    let len = ((HOLD_S + TAIL_S) * SR) as usize;
    let jobs: Vec<(u8, u8)> = keys.iter().flat_map(|&k| VELOCITIES.iter().map(move |&(_, v)| (k, v))).collect();
    println!(
        "pianist evaluation ({model_name}): {} keys × {} velocities × {} sources at {} Hz, held {HOLD_S} s + {TAIL_S} s; distances to TimGM6mb's piano (held out)",
        keys.len(),
        VELOCITIES.len(),
        SOURCES.len(),
        SR
    );
    let bar = ProgressBar::new(jobs.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} rendering [{bar:40}] {pos}/{len} notes, {elapsed} elapsed, eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    type Job = (Vec<Metrics>, Option<(u8, Vec<Vec<f32>>)>);
    let results: Vec<Result<Job>> = jobs
        .par_iter()
        .map(|&(key, vel)| {
            let ho = aligned(&held_out.render_note(key, vel, HOLD_S, TAIL_S + 0.05, SR as u32), len);
            let signals = [
                aligned(&render_pianist(&trained, key, vel)?, len),
                aligned(&render_pianist(&v0, key, vel)?, len),
                aligned(&fluid.render_note(key, vel, HOLD_S, TAIL_S + 0.05, SR as u32), len),
                ho.clone(),
            ];
            let m: Vec<Metrics> = signals.iter().enumerate().map(|(s, x)| measure(x, &ho, key, vel, s)).collect();
            bar.inc(1);
            let keep = (vel == VELOCITIES[2].1 && PICTURE_KEYS.contains(&key)).then(|| (key, signals.to_vec()));
            Ok((m, keep))
        })
        .collect();
    bar.finish_and_clear();
    let mut all: Vec<Metrics> = Vec::new();
    let mut pictures: Vec<(u8, Vec<Vec<f32>>)> = Vec::new();
    for r in results {
        let (m, keep) = r?;
        all.extend(m);
        pictures.extend(keep);
    }
    pictures.sort_by_key(|p| p.0);

    // Table.
    println!(
        "\n{:<5} {:>4} {:<9} {:>8} {:>9} {:>8} {:>8} {:>10} {:>9}",
        "key", "vel", "source", "dist dB", "attack ms", "decay s", "cents", "centroid", "level dB"
    );
    for &key in &keys {
        for &(_, vel) in &VELOCITIES {
            for m in all.iter().filter(|m| m.key == key && m.velocity == vel) {
                println!(
                    "{:<5} {:>4} {:<9} {:>8.2} {:>9.2} {:>8} {:>+8} {:>10.0} {:>9.1}",
                    note_name(key),
                    vel,
                    SOURCES[m.source],
                    m.distance_db,
                    m.attack_ms,
                    m.decay_s.map_or(format!("held>{HOLD_S:.0}s"), |d| format!("{d:.2}")),
                    opt(m.pitch_cents, 2),
                    m.centroid_hz,
                    m.level_db
                );
            }
        }
        println!();
    }

    // Per key: loud vs soft.
    let get = |key: u8, vel: u8, s: usize| all.iter().find(|m| m.key == key && m.velocity == vel && m.source == s);
    let (soft, loud) = (VELOCITIES[0].1, VELOCITIES[2].1);
    let mut per_key = Vec::new();
    println!("loud − soft level (dB) and centroid ratio loud/soft, per key:");
    println!("{:<5} {}", "key", SOURCES.iter().map(|s| format!("{s:>20}")).collect::<String>());
    for &key in &keys {
        let mut line = format!("{:<5} ", note_name(key));
        let mut row = serde_json::Map::new();
        row.insert("key".into(), json!(key));
        for s in 0..SOURCES.len() {
            let (a, b) = (get(key, soft, s).unwrap(), get(key, loud, s).unwrap());
            let ratio = b.level_db - a.level_db;
            line.push_str(&format!("{:>11.1} dB {:>5.2}x", ratio, b.centroid_hz / a.centroid_hz.max(1.0)));
            row.insert(
                SOURCES[s].into(),
                json!({"loud_minus_soft_db": ratio, "centroid_soft_hz": a.centroid_hz, "centroid_loud_hz": b.centroid_hz}),
            );
        }
        println!("{line}");
        per_key.push(serde_json::Value::Object(row));
    }

    // Summary.
    println!("\nsummary (distances: multi-resolution log-spectral distance to TimGM6mb, STFT {:?}, floor {LSD_FLOOR_DB} dB):", LSD_SIZES);
    let mut summary = serde_json::Map::new();
    let mut mean_dist = [0.0f32; 4];
    for s in 0..SOURCES.len() {
        let ms: Vec<&Metrics> = all.iter().filter(|m| m.source == s).collect();
        let dist = ms.iter().map(|m| m.distance_db).sum::<f32>() / ms.len() as f32;
        mean_dist[s] = dist;
        let pitch: Vec<f32> = ms.iter().filter(|m| is_c2_to_c7(m.key)).filter_map(|m| m.pitch_cents.map(f32::abs)).collect();
        let pitch_missing = ms.iter().filter(|m| is_c2_to_c7(m.key) && m.pitch_cents.is_none()).count();
        let (pmed, pmax) = (median(pitch.clone()), pitch.iter().copied().fold(0.0f32, f32::max));
        let attack_max = ms.iter().map(|m| m.attack_ms).fold(0.0f32, f32::max);
        let attack_med = median(ms.iter().map(|m| m.attack_ms).collect());
        let worst_attack = ms.iter().max_by(|a, b| a.attack_ms.total_cmp(&b.attack_ms)).unwrap();
        let slow_attacks = ms.iter().filter(|m| m.attack_ms > ATTACK_TARGET_MS).count();
        let mut centroid_ok = 0;
        let mut level_ok = 0;
        for &key in &keys {
            let (a, b) = (get(key, soft, s).unwrap(), get(key, loud, s).unwrap());
            centroid_ok += (a.centroid_hz < b.centroid_hz) as usize;
            level_ok += (a.level_db < b.level_db) as usize;
        }
        let lvl = |v: u8| median(ms.iter().filter(|m| m.velocity == v).map(|m| m.level_db).collect());
        let range = median(keys.iter().map(|&k| get(k, loud, s).unwrap().level_db - get(k, soft, s).unwrap().level_db).collect());
        let held = ms.iter().filter(|m| m.decay_s.is_none()).count();
        let decay_med = median(ms.iter().filter_map(|m| m.decay_s).collect());
        println!("  {}:", SOURCES[s]);
        if s != 3 {
            println!("    mean distance {dist:.2} dB");
        }
        println!(
            "    |pitch error| C2–C7: median {pmed:.2} cents, max {pmax:.2} cents{}",
            if pitch_missing > 0 { format!(" ({pitch_missing} notes without a fundamental peak)") } else { String::new() }
        );
        println!(
            "    attack: median {attack_med:.2} ms, max {attack_max:.2} ms ({} vel {}); {slow_attacks} of {} notes over {ATTACK_TARGET_MS} ms",
            note_name(worst_attack.key),
            worst_attack.velocity,
            ms.len()
        );
        println!(
            "    soft darker than loud at {centroid_ok}/{} keys, soft quieter at {level_ok}/{}; median loud − soft {range:.1} dB; median level soft/medium/loud {:.1}/{:.1}/{:.1} dBFS",
            keys.len(),
            keys.len(),
            lvl(soft),
            lvl(VELOCITIES[1].1),
            lvl(loud)
        );
        println!("    decay to −{DECAY_DB} dB while held: median {decay_med:.2} s; {held} of {} notes hold longer than {HOLD_S} s", ms.len());
        summary.insert(
            SOURCES[s].into(),
            json!({
                "mean_distance_db": dist,
                "pitch_abs_cents_c2_c7": {"median": pmed, "max": pmax, "missing": pitch_missing},
                "attack_ms": {"median": attack_med, "max": attack_max, "worst_key": worst_attack.key, "worst_velocity": worst_attack.velocity, "over_target": slow_attacks},
                "soft_darker_than_loud": centroid_ok,
                "soft_quieter_than_loud": level_ok,
                "keys": keys.len(),
                "median_loud_minus_soft_db": range,
                "median_level_dbfs": {"soft": lvl(soft), "medium": lvl(VELOCITIES[1].1), "loud": lvl(loud)},
                "decay_median_s": decay_med,
                "notes_held_longer": held,
            }),
        );
    }
    let t = summary.get("trained").cloned().unwrap_or_default();
    let pitch_max = t["pitch_abs_cents_c2_c7"]["max"].as_f64().unwrap_or(f64::NAN) as f32;
    let attack_max = t["attack_ms"]["max"].as_f64().unwrap_or(f64::NAN) as f32;
    let targets = [
        (format!("trained distance {:.2} dB ≤ FluidR3 playback's {:.2} dB", mean_dist[0], mean_dist[2]), mean_dist[0] <= mean_dist[2]),
        (format!("trained distance {:.2} dB clearly below v0's {:.2} dB (by ≥ 1 dB)", mean_dist[0], mean_dist[1]), mean_dist[0] + 1.0 <= mean_dist[1]),
        (format!("trained |pitch error| C2–C7 max {pitch_max:.2} ≤ {PITCH_TARGET_CENTS} cents"), pitch_max <= PITCH_TARGET_CENTS),
        (format!("trained attack max {attack_max:.2} ≤ {ATTACK_TARGET_MS} ms"), attack_max <= ATTACK_TARGET_MS),
    ];
    println!("\ntargets:");
    for (what, ok) in &targets {
        println!("  [{}] {what}", if *ok { "met" } else { "NOT met" });
    }

    let notes: Vec<serde_json::Value> = all
        .iter()
        .map(|m| {
            json!({
                "key": m.key, "name": note_name(m.key), "velocity": m.velocity, "source": SOURCES[m.source],
                "distance_db": m.distance_db, "attack_ms": m.attack_ms, "decay_s": m.decay_s,
                "pitch_cents": m.pitch_cents, "centroid_hz": m.centroid_hz, "level_db": m.level_db,
            })
        })
        .collect();
    let doc = json!({
        "model": model_name,
        "sample_rate": SR,
        "hold_s": HOLD_S,
        "tail_s": TAIL_S,
        "velocities": VELOCITIES.iter().map(|(n, v)| json!({"name": n, "midi": v})).collect::<Vec<_>>(),
        "sources": SOURCES,
        "reference": "TimGM6mb piano (held out)",
        "metrics": {
            "distance": format!("mean |dB| difference of Hann STFT magnitudes, sizes {:?}, hop n/4, floor {LSD_FLOOR_DB} dB, both signals at RMS 1, onsets aligned", LSD_SIZES),
            "attack": "10 %→90 % rise of a 1 ms RMS envelope, relative to its 90th percentile over the first 0.1 s (the single highest crest of a 1 ms envelope wanders with the phases of the partials)",
            "decay": format!("peak to −{DECAY_DB} dB of a {DECAY_WINDOW_S} s RMS envelope while held (null: held longer)"),
            "pitch": format!("fundamental vs equal temperament (A4 = 440 Hz), {}–{} s, 8× zero-padded FFT, parabolic interpolation", PITCH_T.0, PITCH_T.1),
            "centroid_level": format!("{}–{} s after the onset", TIMBRE_T.0, TIMBRE_T.1),
        },
        "notes": notes,
        "per_key": per_key,
        "summary": summary,
        "targets": targets.iter().map(|(w, ok)| json!({"target": w, "met": ok})).collect::<Vec<_>>(),
    });
    let docs = root.join("docs");
    std::fs::create_dir_all(&docs)?;
    let json_path = docs.join("pianist-eval.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&doc)?)?;
    let png = docs.join("pianist-spectrograms.png");
    plot_spectrograms(&pictures, &png)?;
    println!("\nwrote {} and {}", json_path.display(), png.display());
    Ok(())
}

/// Viridis (matplotlib's stops), `v` in 0..1.
fn viridis(v: f32) -> plotters::style::RGBColor {
    const STOPS: [(u8, u8, u8); 8] =
        [(68, 1, 84), (70, 50, 127), (54, 92, 141), (39, 127, 143), (31, 162, 136), (74, 194, 110), (160, 219, 57), (254, 232, 37)];
    let x = v.clamp(0.0, 1.0) * (STOPS.len() - 1) as f32;
    let i = (x as usize).min(STOPS.len() - 2);
    let f = x - i as f32;
    let mix = |a: u8, b: u8| (a as f32 + (b as f32 - a as f32) * f).round() as u8;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    plotters::style::RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Rows: keys (loud); columns: sources. Log frequency 30 Hz–16 kHz, dB re each panel's peak.
fn plot_spectrograms(rows: &[(u8, Vec<Vec<f32>>)], path: &Path) -> Result<()> {
    use plotters::prelude::*;
    const N: usize = 4096;
    const HOP: usize = 512;
    const RANGE_DB: f32 = 90.0;
    const F_LO: f32 = 30.0;
    const F_HI: f32 = 16000.0;
    const ROWS_PX: usize = 160;
    let text = register_font();
    let area = BitMapBackend::new(path, (1400, 260 * rows.len() as u32 + 40)).into_drawing_area();
    area.fill(&WHITE)?;
    let area = if text {
        area.titled(
            &format!("isolated notes, MIDI velocity {} (loud), {HOP}-sample hop, {N}-point Hann; dB re each panel's peak (0…−{RANGE_DB})", VELOCITIES[2].1),
            ("sans-serif", 18),
        )?
    } else {
        area
    };
    let panels = area.split_evenly((rows.len().max(1), SOURCES.len()));
    let stft = Stft::new(N, HOP);
    let bin_hz = SR / N as f32;
    for (r, (key, signals)) in rows.iter().enumerate() {
        for (c, x) in signals.iter().enumerate() {
            let panel = &panels[r * SOURCES.len() + c];
            let frames = stft.db_frames(x, -200.0);
            let peak = frames.iter().flatten().copied().fold(f32::NEG_INFINITY, f32::max);
            let secs = x.len() as f32 / SR;
            let mut b = ChartBuilder::on(panel);
            b.margin(6).x_label_area_size(24).y_label_area_size(44);
            if text {
                b.caption(format!("{} — {}", note_name(*key), SOURCES[c]), ("sans-serif", 15));
            }
            let mut chart = b.build_cartesian_2d(0f32..secs, (F_LO..F_HI).log_scale())?;
            // One rectangle per frame × log-spaced row, coloured by the loudest bin in the row.
            let edges: Vec<f32> = (0..=ROWS_PX).map(|i| F_LO * (F_HI / F_LO).powf(i as f32 / ROWS_PX as f32)).collect();
            let mut rects = Vec::with_capacity(frames.len() * ROWS_PX);
            for (fi, fr) in frames.iter().enumerate() {
                let t0 = (fi * HOP + N / 2 - HOP / 2) as f32 / SR;
                let t1 = t0 + HOP as f32 / SR;
                for w in edges.windows(2) {
                    let (k0, k1) = ((w[0] / bin_hz).round() as usize, ((w[1] / bin_hz).round() as usize).max((w[0] / bin_hz).round() as usize));
                    let v = fr[k0.min(fr.len() - 1)..=k1.min(fr.len() - 1)].iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let col = viridis(1.0 + (v - peak) / RANGE_DB);
                    rects.push(Rectangle::new([(t0, w[0]), (t1, w[1])], col.filled()));
                }
            }
            chart.draw_series(rects)?;
            if text {
                chart.configure_mesh().disable_mesh().x_desc("s").y_desc("Hz").label_style(("sans-serif", 11)).draw()?;
            }
        }
    }
    area.present()?;
    Ok(())
}
