//! `cargo xtask train listener` and `cargo xtask eval listener`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use hummingface_runtime::model::Model;
use hummingface_runtime::train::evaluate::{evaluate, Oracle, Scores, Which};
use hummingface_runtime::train::listener::{train, LogRow, Progress, TrainConfig};
use indicatif::{ProgressBar, ProgressStyle};

/// The shipped model: the v0 tensors (harmonic template, pianist tables) plus the trained
/// listener.
pub const SHIPPED: &str = "assets/hummingface-v1.safetensors";

pub fn flag<T: std::str::FromStr>(args: &[String], name: &str) -> Result<Option<T>> {
    match args.iter().position(|a| a == name) {
        None => Ok(None),
        Some(i) => {
            let v = args.get(i + 1).with_context(|| format!("{name} needs a value"))?;
            v.parse().map(Some).map_err(|_| anyhow::anyhow!("bad value for {name}: {v}"))
        }
    }
}

/// `*dst` = the value of `name` when the arguments give it.
pub fn set_flag<T: std::str::FromStr>(args: &[String], name: &str, dst: &mut T) -> Result<()> {
    if let Some(v) = flag(args, name)? {
        *dst = v;
    }
    Ok(())
}

pub fn train_cmd(root: &Path, args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("listener") => train_listener(root, &args[1..]),
        Some("listener-curve") => listener_curve(root, &args[1..]),
        Some("pianist") => crate::pianist::train_pianist(root, &args[1..]),
        _ => bail!("usage: cargo xtask train listener [--steps N] [--clips N] [--seed S] [--hops D] [--context A,B,…] [--steep-hums] [--no-global-pitch] [--out FILE]\n       cargo xtask train pianist [--steps N] [--seed S] [--batch B] [--key-step K] [--out FILE]"),
    }
}

fn train_listener(root: &Path, args: &[String]) -> Result<()> {
    hummingface_runtime::generator::pin_thread_count_env();
    let mut cfg = TrainConfig::default();
    set_flag(args, "--steps", &mut cfg.steps)?;
    set_flag(args, "--clips", &mut cfg.clips)?;
    set_flag(args, "--seed", &mut cfg.seed)?;
    set_flag(args, "--hops", &mut cfg.detection_hops)?;
    if let Some(v) = flag::<String>(args, "--context")? {
        cfg.context = v.split(',').map(|x| x.trim().parse()).collect::<Result<_, _>>().with_context(|| format!("--context {v}: whole numbers of hops, comma-separated"))?;
        hummingface_runtime::listener_net::check_context(&cfg.context).map_err(|e| anyhow::anyhow!("--context {v}: {e}"))?;
    }
    if cfg.detection_hops >= hummingface_runtime::listener_net::history(&cfg.context) {
        bail!("--hops {} lies outside the context (offsets {:?}): the listener must see the hop it describes", cfg.detection_hops, cfg.context);
    }
    set_flag(args, "--val-clips", &mut cfg.val_clips)?;
    set_flag(args, "--batch", &mut cfg.batch)?;
    set_flag(args, "--log-every", &mut cfg.log_every)?;
    set_flag(args, "--transition-weight", &mut cfg.transition_weight)?;
    set_flag(args, "--repeat-weight", &mut cfg.repeat_weight)?;
    cfg.articulated_onsets = args.iter().any(|a| a == "--articulated-onsets");
    cfg.steep_hums = args.iter().any(|a| a == "--steep-hums");
    // The global pitch layer is the default since the twenty-third session; `--global-pitch`
    // (the earlier sessions' commands) still names it.
    let (with, without) = (args.iter().any(|a| a == "--global-pitch"), args.iter().any(|a| a == "--no-global-pitch"));
    if with && without {
        bail!("--global-pitch and --no-global-pitch: choose one");
    }
    cfg.global_pitch = !without;
    let out: PathBuf = flag::<String>(args, "--out")?.map(PathBuf::from).unwrap_or_else(|| root.join(SHIPPED));
    // The file written: the v0 tensors, the trained pianist if the shipped file has it, and this
    // network. Loaded before training, so that a file that cannot be read stops the command now
    // rather than after the training (whose result would be lost).
    let shipped = root.join(SHIPPED);
    let base = if shipped.exists() {
        Model::from_file(&shipped).with_context(|| format!("loading {} (the base of the file to write)", shipped.display()))?
    } else {
        Model::from_bytes(&Model::serialize("hummingface-v0", &hummingface_runtime::v0::build_tensors())?)?
    };
    // One folder per recipe: a run with other options does not overwrite the default run's log.
    let mut run_name = format!("seed{}-hops{}", cfg.seed, cfg.detection_hops);
    if cfg.articulated_onsets {
        run_name += "-articulated-onsets";
    }
    if cfg.transition_weight != 1.0 {
        run_name += &format!("-transition-weight{}", cfg.transition_weight);
    }
    if cfg.steep_hums {
        run_name += "-steep-hums";
    }
    if !cfg.global_pitch {
        run_name += "-no-global-pitch";
    }
    if cfg.repeat_weight != 1.0 {
        run_name += &format!("-repeat-weight{}", cfg.repeat_weight);
    }
    let defaults = TrainConfig::default();
    if cfg.context != defaults.context {
        run_name += &format!("-context{}", cfg.context.iter().map(|c| c.to_string()).collect::<Vec<_>>().join("_"));
    }
    if cfg.steps != defaults.steps {
        run_name += &format!("-steps{}", cfg.steps);
    }
    if cfg.clips != defaults.clips {
        run_name += &format!("-clips{}", cfg.clips);
    }
    let run_dir = root.join("runs/train-listener").join(run_name);
    std::fs::create_dir_all(&run_dir)?;
    println!(
        "training the listener: {} clips, {} steps of {} frames, seed {}, detection {} hops, {} parameters",
        cfg.clips,
        cfg.steps,
        cfg.batch,
        cfg.seed,
        cfg.detection_hops,
        hummingface_runtime::listener_net::parameter_count(cfg.context.len(), cfg.global_pitch)
    );
    let bar = ProgressBar::new(cfg.steps as u64);
    bar.set_style(ProgressStyle::with_template("{spinner} {msg} [{bar:40}] {pos}/{len} steps, {elapsed} elapsed, eta {eta}").unwrap_or_else(|_| ProgressStyle::default_bar()));
    let csv_path = run_dir.join("log.csv");
    let mut csv = std::fs::File::create(&csv_path)?;
    writeln!(csv, "step,seconds,lr,loss,pitch_loss,voicing_loss,onset_loss,val_loss,val_rpa,val_voicing")?;
    let mut rows: Vec<LogRow> = Vec::new();
    let started = std::time::Instant::now();
    let (tensors, _) = train(&cfg, &mut |p| match p {
        Progress::Data { done, total } => {
            if bar.is_hidden() {
                println!("data: {done}/{total} clips made ({:.0} s)", started.elapsed().as_secs_f64());
            }
            bar.set_message(format!("data {done}/{total} clips"));
        }
        Progress::Step { loss, .. } => {
            bar.inc(1);
            bar.set_message(format!("loss {loss:.3}"));
        }
        Progress::Log(r) => {
            log_step(
                &bar,
                &mut csv,
                format!(
                    "{},{:.1},{:.6},{:.5},{:.5},{:.5},{:.5},{:.5},{:.4},{:.4}",
                    r.step, r.seconds, r.lr, r.loss, r.pitch_loss, r.voicing_loss, r.onset_loss, r.val_loss, r.val_rpa, r.val_voicing
                ),
                format!(
                    "step {:>6}  loss {:.4} (pitch {:.4} voicing {:.4} onset {:.4})  val loss {:.4} RPA {:.4} voicing {:.4}",
                    r.step, r.loss, r.pitch_loss, r.voicing_loss, r.onset_loss, r.val_loss, r.val_rpa, r.val_voicing
                ),
            );
            rows.push(r.clone());
        }
    })?;
    bar.finish();
    let png = run_dir.join("curves.png");
    plot_curves(&rows, &png)?;
    let bytes = crate::pianist::write_model(&base, "listener.net.", tensors, &out)?;
    println!(
        "wrote {} ({} bytes) in {:.1} min; log {}, curves {}",
        out.display(),
        bytes,
        started.elapsed().as_secs_f64() / 60.0,
        csv_path.display(),
        png.display()
    );
    // Most listeners trained since the sixteenth session heard a low real note an octave up
    // (seeds 2-4 of the six-frame recipe, other singers, seeds 1 and 3 of the eight-frame one): the
    // real clips are the first thing to look at.
    println!("check it on real voices before shipping it: cargo xtask eval listener-real --model {}", out.display());
    Ok(())
}

/// One logged training step: a row of the CSV (flushed, so a killed run keeps its log) and a line
/// above the progress bar (printed plainly when the bar is hidden, as in CI).
pub fn log_step(bar: &ProgressBar, csv: &mut std::fs::File, row: String, line: String) {
    let _ = writeln!(csv, "{row}");
    let _ = csv.flush();
    if bar.is_hidden() {
        println!("{line}");
    } else {
        bar.println(line);
    }
}

/// Registers a system sans-serif font for plot labels, if one is installed.
pub fn register_font() -> bool {
    for p in ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf"] {
        if let Ok(bytes) = std::fs::read(p) {
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font("sans-serif", plotters::style::FontStyle::Normal, bytes).is_ok() {
                return true;
            }
        }
    }
    false
}

/// One line of a training-curve panel.
pub struct Series {
    pub points: Vec<(f32, f32)>,
    pub color: plotters::style::RGBColor,
    pub label: Option<&'static str>,
}

/// One panel of a training-curve picture: caption, y range, lines, legend corner.
pub struct Panel {
    pub caption: &'static str,
    pub y: std::ops::Range<f32>,
    pub series: Vec<Series>,
    pub legend_lower_right: bool,
}

/// Two panels side by side against the training step (1000 × 420 PNG), as both trainings
/// (listener, pianist) draw their curves. Points that are not finite are left out.
pub fn plot_training_curves(path: &Path, max_step: f32, panels: [Panel; 2]) -> Result<()> {
    use plotters::prelude::*;
    let text = register_font();
    let root = BitMapBackend::new(path, (1000, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(500);
    for (area, panel) in [left, right].iter().zip(panels) {
        let mut b = ChartBuilder::on(area);
        b.margin(10).x_label_area_size(30).y_label_area_size(50);
        if text {
            b.caption(panel.caption, ("sans-serif", 18));
        }
        let mut c = b.build_cartesian_2d(0f32..max_step.max(1.0), panel.y.clone())?;
        if text {
            c.configure_mesh().x_desc("step").draw()?;
        }
        let mut labelled = false;
        for s in panel.series {
            let color = s.color;
            let line = c.draw_series(LineSeries::new(s.points.into_iter().filter(|(_, y)| y.is_finite()), &color))?;
            if let Some(label) = s.label {
                line.label(label).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
                labelled = true;
            }
        }
        if text && labelled {
            let mut legend = c.configure_series_labels();
            if panel.legend_lower_right {
                legend.position(SeriesLabelPosition::LowerRight);
            }
            legend.background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
        }
    }
    root.present()?;
    Ok(())
}

fn plot_curves(rows: &[LogRow], path: &Path) -> Result<()> {
    use plotters::prelude::*;
    if rows.is_empty() {
        return Ok(());
    }
    let max_step = rows.last().map(|r| r.step).unwrap_or(1) as f32;
    let max_loss = rows.iter().map(|r| r.loss.max(r.val_loss)).filter(|v| v.is_finite()).fold(0.0f32, f32::max) * 1.05;
    let lo = rows.iter().flat_map(|r| [r.val_rpa, r.val_voicing]).filter(|v| v.is_finite()).fold(1.0f32, f32::min).min(0.9);
    let line = |f: fn(&LogRow) -> f32, color, label| Series { points: rows.iter().map(|r| (r.step as f32, f(r))).collect(), color, label: Some(label) };
    plot_training_curves(
        path,
        max_step,
        [
            Panel {
                caption: "loss",
                y: 0f32..max_loss.max(1e-3),
                series: vec![line(|r| r.loss, BLUE, "train"), line(|r| r.val_loss, RED, "held-out")],
                legend_lower_right: false,
            },
            Panel {
                caption: "held-out frame accuracy",
                y: lo..1.0f32,
                series: vec![line(|r| r.val_rpa, GREEN, "raw pitch accuracy"), line(|r| r.val_voicing, MAGENTA, "voicing accuracy")],
                legend_lower_right: true,
            },
        ],
    )
}

fn print_scores(name: &str, s: &Scores) {
    println!(
        "{name:<26} RPA {:.3}  voicing {:.3}  octave-err frames {:>5}  notes: ref {:>5} est {:>5}  P {:.3} R {:.3} F1 {:.3}  onset median {:+.1} ms",
        s.rpa(),
        s.voicing_accuracy(),
        s.octave_errors,
        s.notes.n_ref,
        s.notes.n_est,
        s.notes.precision(),
        s.notes.recall(),
        s.notes.f1(),
        s.notes.median_onset_error_ms()
    );
    let g = &s.notes_glide_mid;
    println!("{:<26} notes with glide onsets at the glide's half-way point: P {:.3} R {:.3} F1 {:.3}  onset median {:+.1} ms", "", g.precision(), g.recall(), g.f1(), g.median_onset_error_ms());
    let (l, lg) = (&s.notes_lookahead, &s.notes_lookahead_glide_mid);
    println!(
        "{:<26} notes placed with lookahead (a file render): P {:.3} R {:.3} F1 {:.3}  onset median {:+.1} ms; half-way glide onsets F1 {:.3}",
        "",
        l.precision(),
        l.recall(),
        l.f1(),
        l.median_onset_error_ms(),
        lg.f1()
    );
    println!("{:<26} RPA at note starts (a note's first 60 ms or its glide): {:.3} of {} frames", "", s.start_rpa(), s.start_ref_frames);
}

/// `--oracle voicing,pitch,start-pitch,onset`: parts of the listener's frames replaced by the reference
/// (start-pitch: the pitch on the hops of note starts only).
fn oracle_flag(args: &[String]) -> Result<Oracle> {
    match flag::<String>(args, "--oracle")? {
        Some(list) => Oracle::parse(&list).map_err(|e| anyhow::anyhow!(e)),
        None => Ok(Oracle::default()),
    }
}

/// The model `--model FILE` names, else the shipped file, and its path; it must hold a trained
/// listener.
fn listener_model(root: &Path, args: &[String]) -> Result<(Arc<Model>, PathBuf)> {
    let path: PathBuf = flag::<String>(args, "--model")?.map(PathBuf::from).unwrap_or_else(|| root.join(SHIPPED));
    let model = Arc::new(Model::from_file(&path).with_context(|| format!("loading {}", path.display()))?);
    if !model.has_trained_listener() {
        bail!("{} has no trained listener (run `cargo xtask train listener`)", path.display());
    }
    Ok((model, path))
}

/// `cargo xtask eval listener [N] [--from K] [--model FILE] [--clean] [--trained-only] [--oracle PARTS]`.
pub fn eval_listener(root: &Path, args: &[String]) -> Result<()> {
    hummingface_runtime::generator::pin_thread_count_env();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(60);
    let (model, model_path) = listener_model(root, args)?;
    let oracle = oracle_flag(args)?;
    let which: &[Which] = if args.iter().any(|a| a == "--trained-only") { &[Which::Trained] } else { &[Which::V0, Which::Yin, Which::Trained] };
    // Clips from `--from K` on: the decoder's rules were chosen on clips 0–59, so a set from 60 on
    // scores listeners on clips nothing was tuned on.
    let first: u64 = flag(args, "--from")?.unwrap_or(0);
    println!(
        "held-out synthetic set: {n} clips (seeds from {}), 44.1/48 kHz, model {}",
        hummingface_runtime::train::evaluate::HELDOUT_FIRST_SEED + first,
        model_path.display()
    );
    let started = std::time::Instant::now();
    let strength = if args.iter().any(|a| a == "--clean") { 0.0 } else { 1.0 };
    let verbose = args.iter().any(|a| a == "--verbose");
    if oracle != Oracle::default() {
        println!("oracle (reference in place of the listener's): {oracle:?}");
    }
    let res = evaluate(which, model, first, n, strength, oracle, verbose)?;
    for (w, (all, per_voice)) in which.iter().zip(&res) {
        print_scores(w.name(), all);
        for (v, s) in ["  male", "  female", "  child"].iter().zip(per_voice) {
            print_scores(v, s);
        }
    }
    println!("({:.0} s)", started.elapsed().as_secs_f64());
    Ok(())
}

/// `cargo xtask eval listener-dump [N] [--clean] [--out DIR]`: per held-out clip, the trained
/// listener's frames, the tracker's notes and the ground truth as JSON, and the pitch logits
/// as raw little-endian f32 (for note-error breakdowns).
pub fn dump_listener(root: &Path, args: &[String]) -> Result<()> {
    use rayon::prelude::*;
    hummingface_runtime::generator::pin_thread_count_env();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(60);
    let clean = args.iter().any(|a| a == "--clean");
    let wav = args.iter().any(|a| a == "--wav");
    let out: PathBuf = flag::<String>(args, "--out")?.map(PathBuf::from).unwrap_or_else(|| root.join(if clean { "runs/dump-clean" } else { "runs/dump" }));
    let model_path: PathBuf = flag::<String>(args, "--model")?.map(PathBuf::from).unwrap_or_else(|| root.join(SHIPPED));
    let model = Model::from_file(&model_path)?;
    let oracle = oracle_flag(args)?;
    std::fs::create_dir_all(&out)?;
    (0..n).into_par_iter().try_for_each(|i| -> Result<()> {
        let mut logits = Vec::new();
        let (v, clip) = hummingface_runtime::generator::single_threaded(|| hummingface_runtime::train::evaluate::dump_clip(&model, i, if clean { 0.0 } else { 1.0 }, oracle, &mut logits))?;
        std::fs::write(out.join(format!("clip{i:03}.json")), serde_json::to_string(&v)?)?;
        let bytes: Vec<u8> = logits.iter().flat_map(|x| x.to_le_bytes()).collect();
        std::fs::write(out.join(format!("clip{i:03}.logits")), bytes)?;
        if wav {
            // The clip itself (32-bit float, its own rate), for tools that listen to it.
            let spec = hound::WavSpec { channels: 1, sample_rate: clip.sample_rate as u32, bits_per_sample: 32, sample_format: hound::SampleFormat::Float };
            let mut w = hound::WavWriter::create(out.join(format!("clip{i:03}.wav")), spec)?;
            for x in &clip.audio {
                w.write_sample(*x)?;
            }
            w.finalize()?;
        }
        Ok(())
    })?;
    println!("wrote {n} clips to {}", out.display());
    Ok(())
}

/// An offline pitch track (YIN, centred 2048-sample windows at 44.1/48 kHz, hop 256) as
/// (seconds, MIDI) for the voiced frames: the independent reference the notes are drawn on.
fn yin_track(audio: &[f32], sr: f32) -> Vec<(f32, f32)> {
    let win = (sr * 2048.0 / 48000.0) as usize;
    let hop = (sr * 256.0 / 48000.0) as usize;
    let est = hummingface_runtime::train::evaluate::yin_estimator(sr);
    let mut out = Vec::new();
    let mut buf = vec![0.0f64; win];
    let mut start = 0;
    while start + win <= audio.len() {
        for (b, x) in buf.iter_mut().zip(&audio[start..start + win]) {
            *b = *x as f64;
        }
        let energy: f64 = buf.iter().map(|v| v * v).sum::<f64>() / win as f64;
        if let Some(m) = hummingface_runtime::train::evaluate::yin_midi(&est, &buf).filter(|_| energy > 1e-7) {
            out.push(((start + win / 2) as f32 / sr, m));
        }
        start += hop;
    }
    out
}

/// Notes (start s, end s, MIDI) of the shipped generator with `model` over `audio`.
fn notes_of(audio: &[f32], sr: f32, model: Arc<Model>, notes: hummingface_runtime::NotePlacement) -> Result<Vec<(f32, f32, f32)>> {
    use hummingface_runtime::{render_offline, DeviceChoice, RenderOptions};
    let res = render_offline(&[audio.to_vec()], sr, &RenderOptions { device: DeviceChoice::Cpu, notes, ..Default::default() }, model, &mut |_| {})?;
    Ok(res.notes.iter().map(|n| (n.start_sample as f32 / sr, n.end_sample as f32 / sr, n.note as f32)).collect())
}

/// Octave errors: notes whose pitch is 11–13 (or 23–25) semitones from the median of the
/// pitch track over the note. Returns (judged, octave errors, other notes more than 1.5
/// semitones off the track).
fn octave_errors(who: &str, notes: &[(f32, f32, f32)], track: &[(f32, f32)]) -> (usize, usize, usize) {
    let mut judged = 0;
    let mut errors = 0;
    let mut off = 0;
    for &(s, e, m) in notes {
        let mut v: Vec<f32> = track.iter().filter(|(t, _)| *t >= s && *t < e.max(s + 0.03)).map(|p| p.1).collect();
        if v.is_empty() {
            continue;
        }
        v.sort_by(f32::total_cmp);
        let med = v[v.len() / 2];
        judged += 1;
        let d = (m - med).abs();
        if (d - 12.0).abs() < 1.0 || (d - 24.0).abs() < 1.0 {
            errors += 1;
            println!("  {who}: octave error, note {m} at {s:.3}–{e:.3} s, YIN median {med:.2} over {} frames", v.len());
        } else if d > 1.5 {
            off += 1;
            println!("  {who}: off the track, note {m} at {s:.3}–{e:.3} s, YIN median {med:.2} over {} frames", v.len());
        }
    }
    (judged, errors, off)
}

/// `cargo xtask eval listener-real [--model FILE] [--png FILE]`: the shipped (trained) and the
/// v0 listener on the real clips in ../shared/data/real-singing/, drawn over a YIN pitch track
/// (docs/listener-real.png). With `--model`, the trained listener of that file instead of the
/// shipped one (a retrained listener checked before it is shipped), drawn into
/// runs/listener-real.png unless `--png` says where.
pub fn eval_listener_real(root: &Path, args: &[String]) -> Result<()> {
    use plotters::prelude::*;
    hummingface_runtime::generator::pin_thread_count_env();
    let dir = root.join("../shared/data/real-singing");
    let mut clips: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wav"))
        .collect();
    clips.sort();
    let (base, _) = listener_model(root, args)?;
    let trained = base.listening_with(hummingface_runtime::generator::ListenerKind::Trained);
    let v0 = Arc::new(Model::from_file(&root.join("assets/hummingface-v0.safetensors"))?);
    let text = register_font();
    let png = match flag::<String>(args, "--png")? {
        Some(p) => PathBuf::from(p),
        None if flag::<String>(args, "--model")?.is_some() => root.join("runs/listener-real.png"),
        None => root.join("docs/listener-real.png"),
    };
    if let Some(dir) = png.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let area = BitMapBackend::new(&png, (1400, 420 * clips.len().max(1) as u32)).into_drawing_area();
    area.fill(&WHITE)?;
    let panels = area.split_evenly((clips.len().max(1), 1));
    for (path, panel) in clips.iter().zip(panels) {
        let (audio, sr) = read_mono_wav(path)?;
        let track = yin_track(&audio, sr);
        use hummingface_runtime::NotePlacement::{Live, Lookahead};
        let nt = notes_of(&audio, sr, trained.clone(), Live)?;
        let nl = notes_of(&audio, sr, trained.clone(), Lookahead)?;
        let n0 = notes_of(&audio, sr, v0.clone(), Live)?;
        let (j1, e1, f1) = octave_errors("trained", &nt, &track);
        let (jl, el, fl) = octave_errors("trained, lookahead", &nl, &track);
        let (j0, e0, f0) = octave_errors("v0", &n0, &track);
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let dur = audio.len() as f32 / sr;
        println!(
            "{name}: {dur:.1} s; trained listener {} notes ({e1} octave errors of {j1} judged, {f1} others over 1.5 semitones off); placed with lookahead (hummingface render) {} notes ({el} octave errors of {jl} judged, {fl} others over 1.5 semitones off); v0 {} notes ({e0} octave errors of {j0} judged, {f0} others over 1.5 semitones off)",
            nt.len(),
            nl.len(),
            n0.len()
        );
        let all: Vec<f32> = track.iter().map(|p| p.1).chain(nt.iter().map(|n| n.2)).chain(nl.iter().map(|n| n.2)).chain(n0.iter().map(|n| n.2)).collect();
        let lo = all.iter().copied().fold(f32::INFINITY, f32::min).floor() - 2.0;
        let hi = all.iter().copied().fold(f32::NEG_INFINITY, f32::max).ceil() + 2.0;
        let (lo, hi) = if lo.is_finite() && hi.is_finite() { (lo, hi) } else { (36.0, 84.0) };
        let mut b = ChartBuilder::on(&panel);
        b.margin(12).x_label_area_size(30).y_label_area_size(40);
        if text {
            b.caption(format!("{name}: YIN pitch track (grey), trained listener notes live (red), placed with lookahead (green outline), v0 notes live (blue outline)"), ("sans-serif", 16));
        }
        let mut c = b.build_cartesian_2d(0f32..dur, lo..hi)?;
        if text {
            c.configure_mesh().x_desc("seconds").y_desc("MIDI").draw()?;
        }
        c.draw_series(nt.iter().map(|&(s, e, m)| Rectangle::new([(s, m - 0.45), (e, m + 0.45)], RED.mix(0.45).filled())))?;
        c.draw_series(nl.iter().map(|&(s, e, m)| Rectangle::new([(s, m - 0.4), (e, m + 0.4)], GREEN.stroke_width(2))))?;
        c.draw_series(n0.iter().map(|&(s, e, m)| Rectangle::new([(s, m - 0.3), (e, m + 0.3)], BLUE.stroke_width(1))))?;
        c.draw_series(track.iter().map(|&(t, m)| Circle::new((t, m), 1, BLACK.mix(0.6).filled())))?;
    }
    area.present()?;
    println!("wrote {}", png.display());
    Ok(())
}

/// `cargo xtask train listener-curve [--steps N] [--clips N] [--eval N]`: the same (reduced)
/// training for detection delays of 0–3 hops, each evaluated on the held-out set: note F1
/// against the latency the plugin would report (docs/listener-latency-curve.png).
pub fn listener_curve(root: &Path, args: &[String]) -> Result<()> {
    use hummingface_runtime::timing::{Timing, DETECTION_HOPS};
    use plotters::prelude::*;
    let steps: usize = flag(args, "--steps")?.unwrap_or(800);
    let clips: usize = flag(args, "--clips")?.unwrap_or(400);
    let n_eval: usize = flag(args, "--eval")?.unwrap_or(40);
    let dir = root.join("runs/curve");
    std::fs::create_dir_all(&dir)?;
    let mut points = Vec::new();
    for d in 0..=DETECTION_HOPS {
        let out = dir.join(format!("hops{d}.safetensors"));
        if !out.exists() {
            let a: Vec<String> = ["listener", "--steps", &steps.to_string(), "--clips", &clips.to_string(), "--hops", &d.to_string(), "--val-clips", "0", "--log-every", "100", "--out"]
                .iter()
                .map(|s| s.to_string())
                .chain([out.display().to_string()])
                .collect();
            train_cmd(root, &a)?;
        }
        let model = Arc::new(Model::from_file(&out)?);
        let res = evaluate(&[Which::Trained], model, 0, n_eval, 1.0, Oracle::default(), false)?;
        let s = &res[0].0;
        // Latency the plugin would report with this delay: (d + 1) hops + one 64-sample block
        // + 1 ms in real time at 48 kHz.
        let t = Timing::new(48000.0, 64, hummingface_runtime::ProcessMode::Realtime);
        let latency_ms = ((d + t.lookahead_hops + 1) * t.hop + t.slack) as f32 * 1000.0 / 48000.0;
        println!("detection {d} hops: real-time latency {latency_ms:.1} ms at 48 kHz / 64-sample blocks; RPA {:.3}, note P {:.3} R {:.3} F1 {:.3}", s.rpa(), s.notes.precision(), s.notes.recall(), s.notes.f1());
        points.push((latency_ms, s.notes.f1(), s.rpa()));
    }
    let text = register_font();
    let png = root.join("docs/listener-latency-curve.png");
    let area = BitMapBackend::new(&png, (700, 420)).into_drawing_area();
    area.fill(&WHITE)?;
    let mut b = ChartBuilder::on(&area);
    b.margin(14).x_label_area_size(35).y_label_area_size(45);
    if text {
        b.caption(format!("note F1 and raw pitch accuracy vs latency ({steps} steps, {clips} clips each)"), ("sans-serif", 16));
    }
    let mut c = b.build_cartesian_2d(0f32..30f32, 0f32..1f32)?;
    if text {
        c.configure_mesh().x_desc("reported real-time latency at 48 kHz, ms").draw()?;
    }
    c.draw_series(LineSeries::new(points.iter().map(|p| (p.0, p.1)), RED.stroke_width(2)))?.label("note F1").legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    c.draw_series(points.iter().map(|p| Circle::new((p.0, p.1), 4, RED.filled())))?;
    c.draw_series(LineSeries::new(points.iter().map(|p| (p.0, p.2)), BLUE.stroke_width(2)))?.label("raw pitch accuracy").legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    c.draw_series(points.iter().map(|p| Circle::new((p.0, p.2), 4, BLUE.filled())))?;
    if text {
        c.configure_series_labels().position(SeriesLabelPosition::LowerRight).background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    }
    area.present()?;
    println!("wrote {}", png.display());
    Ok(())
}

/// `cargo xtask eval placement-curve [N] [--from K] [--clean]`: the trained listener's notes
/// placed with lookahead ([`hummingface_runtime::lookahead::Placement`]) at a grid of settings —
/// how far back a note may move (0–20 hops) and the correction gap (none, 5, 10, 15 hops) — each
/// scored against the latency it adds, on N held-out clips; prints every setting, and draws the
/// best F1 at each added latency with the shipped setting marked (`docs/placement-curve.png`).
pub fn placement_curve(root: &Path, args: &[String]) -> Result<()> {
    use hummingface_runtime::lookahead::Placement;
    use plotters::prelude::*;
    hummingface_runtime::generator::pin_thread_count_env();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(60);
    let first: u64 = flag(args, "--from")?.unwrap_or(0);
    let clean = args.iter().any(|a| a == "--clean");
    let model = Arc::new(Model::from_file(&root.join(SHIPPED))?);
    // At 48 kHz (hop 256): the latency a setting adds is (back + gap − 1) hops.
    let hop_s = 256.0 / 48000.0;
    let mut settings = vec![Placement::SHIPPED];
    for back in [0usize, 2, 4, 6, 8, 12, 16, 20] {
        for gap in [1usize, 5, 10, 15] {
            // Half a hop under a whole number of hops, so the gap is exactly `gap` hops.
            // The shipped setting (first) stands for 20 hops back, a 15-hop gap.
            if (back, gap) != (20, 15) {
                settings.push(Placement { back_s: back as f32 * hop_s, attack_s: 2.0 * hop_s, gap_s: (gap as f32 - 0.5) * hop_s, ..Placement::SHIPPED });
            }
        }
    }
    let started = std::time::Instant::now();
    let res = hummingface_runtime::train::evaluate::placement_curve(model, first, n, if clean { 0.0 } else { 1.0 }, &settings)?;
    println!("{n} held-out{} clips from clip {first}; added latency at 48 kHz (hop 5.33 ms)", if clean { " clean" } else { "" });
    let live = &res[0];
    println!("live (no placement):                              +0.0 ms  P {:.3} R {:.3} F1 {:.3}  half-way glide onsets F1 {:.3}", live.0.precision(), live.0.recall(), live.0.f1(), live.1.f1());
    let mut rows: Vec<(f32, &Placement, f32, f32, f32, f32)> = settings
        .iter()
        .zip(&res[1..])
        .map(|(p, (s, h))| (p.hops(hop_s) as f32 * hop_s * 1000.0, p, s.precision(), s.recall(), s.f1(), h.f1()))
        .collect();
    rows.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.4.total_cmp(&b.4)));
    for (ms, p, pr, re, f1, half) in &rows {
        let tag = if **p == Placement::SHIPPED { "  (shipped)" } else { "" };
        println!(
            "back {:5.1} ms, gap {:5.1} ms, attack {:4.1} ms: +{ms:5.1} ms  P {pr:.3} R {re:.3} F1 {f1:.3}  half-way glide onsets F1 {half:.3}{tag}",
            p.back_s * 1000.0,
            p.gap_s * 1000.0,
            p.attack_s * 1000.0
        );
    }
    // The best F1 at each latency or less: what a setting of that latency can reach.
    let mut front: Vec<(f32, f32, f32)> = vec![(0.0, live.0.f1(), live.1.f1())];
    for r in &rows {
        if r.4 > front.last().unwrap().1 {
            front.push((r.0, r.4, r.5));
        }
    }
    println!("best F1 at each added latency: {}", front.iter().map(|f| format!("+{:.0} ms {:.3}", f.0, f.1)).collect::<Vec<_>>().join(", "));
    println!("({:.0} s)", started.elapsed().as_secs_f64());
    let text = register_font();
    let png = root.join("docs/placement-curve.png");
    let area = BitMapBackend::new(&png, (760, 440)).into_drawing_area();
    area.fill(&WHITE)?;
    let mut b = ChartBuilder::on(&area);
    b.margin(14).x_label_area_size(35).y_label_area_size(45);
    if text {
        b.caption(format!("notes placed with lookahead: note F1 vs added latency ({n} held-out{} clips)", if clean { " clean" } else { "" }), ("sans-serif", 16));
    }
    let max_ms = rows.iter().map(|r| r.0).fold(0.0, f32::max) + 10.0;
    let mut c = b.build_cartesian_2d(0f32..max_ms, 0f32..1f32)?;
    if text {
        c.configure_mesh().x_desc("latency added to the live 23.7 ms, ms at 48 kHz").y_desc("note F1").draw()?;
    }
    c.draw_series(rows.iter().map(|r| Circle::new((r.0, r.4), 3, RGBColor(170, 170, 170).filled())))?
        .label("every setting")
        .legend(|(x, y)| Circle::new((x + 10, y), 3, RGBColor(170, 170, 170).filled()));
    c.draw_series(LineSeries::new(front.iter().map(|f| (f.0, f.1)), RED.stroke_width(2)))?
        .label("best at that latency")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    c.draw_series(LineSeries::new(front.iter().map(|f| (f.0, f.2)), BLUE.stroke_width(2)))?
        .label("the same, glide onsets half-way")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    let shipped = rows.iter().find(|r| *r.1 == Placement::SHIPPED).map(|r| (r.0, r.4)).unwrap_or_default();
    c.draw_series(std::iter::once(Circle::new(shipped, 6, BLACK.stroke_width(2))))?
        .label("shipped (Note timing: Lookahead)")
        .legend(|(x, y)| Circle::new((x + 10, y), 5, BLACK.stroke_width(2)));
    if text {
        c.configure_series_labels().position(SeriesLabelPosition::LowerRight).background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    }
    area.present()?;
    println!("wrote {}", png.display());
    Ok(())
}

/// `cargo xtask eval listener-frames FILE.wav [FROM_S TO_S] [--model FILE]`: the trained
/// listener's frames of a recording over a time range (pitch, confidence, voicing, onset, and
/// the share of the pitch distribution within a semitone of an octave below and above the best
/// candidate): what the note decoder was given. Each frame's time is the end of the hop it
/// describes (its detection delay before the newest hop).
pub fn listener_frames(root: &Path, args: &[String]) -> Result<()> {
    use hummingface_runtime::listener_net::{pitch_share, ListenerNet};
    use hummingface_runtime::v0::CAND_PER_SEMITONE;
    use hummingface_runtime::{ProcessMode, Timing};
    let pos: Vec<&String> = {
        let mut v = Vec::new();
        let mut i = 0;
        while i < args.len() {
            if args[i] == "--model" {
                i += 2;
                continue;
            }
            v.push(&args[i]);
            i += 1;
        }
        v
    };
    let path = pos.first().context("usage: cargo xtask eval listener-frames FILE.wav [FROM_S TO_S] [--model FILE]")?;
    let from: f32 = pos.get(1).map(|s| s.parse()).transpose().context("FROM_S is not a number")?.unwrap_or(0.0);
    let to: f32 = pos.get(2).map(|s| s.parse()).transpose().context("TO_S is not a number")?.unwrap_or(f32::INFINITY);
    let model = match flag::<String>(args, "--model")? {
        Some(m) => Model::from_file(&root.join(m))?,
        None => Model::from_file(&root.join(SHIPPED))?,
    };
    let delay = model.get("listener.net.calib").context("the model has no trained listener")?.data[2] as usize;
    let (audio, sr) = read_mono_wav(Path::new(path.as_str()))?;
    let t = Timing::new(sr, 512, ProcessMode::Offline);
    let (mags, frames) = hummingface_runtime::bench::analysis_frames(&audio, &t);
    let (cpu, _) = hummingface_runtime::generator::select_device(hummingface_runtime::DeviceChoice::Cpu);
    let mut net = ListenerNet::new(&model, &t, &cpu)?;
    let mut logits = Vec::new();
    let out = net.forward_with_logits(&mags, frames, Some(&mut logits))?;
    let n = logits.len() / frames.max(1);
    let octave = 12 * CAND_PER_SEMITONE as isize;
    println!("time_s  pitch  conf  voicing  onset  octave_below  octave_above");
    for (k, f) in out.iter().enumerate() {
        let time = (k + 1).saturating_sub(delay) as f32 * t.hop as f32 / sr;
        if time < from || time > to {
            continue;
        }
        // The share below is the frame's own (what the live decoder doubts by); the share above
        // only this tool reports.
        let l = &logits[k * n..(k + 1) * n];
        let above = pitch_share(l, hummingface_runtime::listener::first_max(l) as isize + octave);
        println!("{time:6.3}  {:5.2}  {:4.2}  {:7.2}  {:5.2}  {:12.3}  {above:12.3}", f.pitch_midi, f.confidence, f.periodicity, f.flux, f.octave_below);
    }
    Ok(())
}

/// A WAV file's samples mixed to mono, and its sample rate.
fn read_mono_wav(path: &Path) -> Result<(Vec<f32>, f32)> {
    let mut r = hound::WavReader::open(path).with_context(|| format!("reading {}", path.display()))?;
    let spec = r.spec();
    let ch = spec.channels as usize;
    let raw: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Int => r.samples::<i32>().map(|s| s.map(|v| v as f32 / (1u32 << (spec.bits_per_sample - 1)) as f32)).collect::<Result<_, _>>()?,
        hound::SampleFormat::Float => r.samples::<f32>().collect::<Result<_, _>>()?,
    };
    Ok((raw.chunks(ch).map(|c| c.iter().sum::<f32>() / ch as f32).collect(), spec.sample_rate as f32))
}

/// `cargo xtask eval fit-decoder [--model FILE] [--clips N] [--clean-clips M] [--rounds R]
/// [--melodies K] [--min-gain G] [--only live|placed] [--write] [--no-heldout]`: fits the note decoder's thresholds
/// ([`hummingface_runtime::decoder::DecoderTuning`], the voicing threshold's offset included) to
/// a listener by coordinate descent on validation clips (the held-out generator from clip
/// [`VALIDATION_FIRST_CLIP`] on: N noisy, then M clean; no held-out score uses them), once for
/// the live decoder and once for the one behind the lookahead placement (`--only live|placed`:
/// that one alone, the other keeping the file's), each maximising the sum of its note F1 on the
/// noisy clips, on the clean ones and on K melodies of `cargo xtask eval`'s singer (seeds
/// [`VALIDATION_FIRST_MELODY`].., `--melodies K`, 120 by default); then scores the file's
/// thresholds and the fitted ones side by side on the 24 eval melodies, the held-out sets
/// (clips 0–59, 60–179, 180–299, 60 clean) and on fresh clips and melodies nothing was chosen on
/// (600 noisy and 200 clean from clip `VALIDATION_FIRST_CLIP + 10 000`, 120 melodies from seed
/// `VALIDATION_FIRST_MELODY + 10 000`). The search starts from the file's thresholds (the
/// decoder's defaults when it has none); `--write` stores the fitted ones in the model file
/// (tensor `listener.net.decoder`), where the engine and the CLI read them.
pub fn fit_decoder(root: &Path, args: &[String]) -> Result<()> {
    use hummingface_runtime::decoder::DecoderTuning;
    use hummingface_runtime::eval::{NoteScore, EVAL_FIRST_MELODY};
    use hummingface_runtime::train::evaluate::{hear_clips, hear_melodies, score_heard, trained_voicing, HeardClip, VALIDATION_FIRST_CLIP, VALIDATION_FIRST_MELODY};
    use hummingface_runtime::model::DECODER_TUNING;
    use hummingface_runtime::tracker::Voicing;
    let model_path: PathBuf = flag::<String>(args, "--model")?.map(PathBuf::from).unwrap_or_else(|| root.join(SHIPPED));
    let model = Model::from_file(&model_path)?;
    let (mut n_noisy, mut n_clean, mut n_melodies, mut rounds) = (600usize, 200usize, 120usize, 3usize);
    set_flag(args, "--clips", &mut n_noisy)?;
    set_flag(args, "--clean-clips", &mut n_clean)?;
    set_flag(args, "--melodies", &mut n_melodies)?;
    set_flag(args, "--rounds", &mut rounds)?;
    // A change is kept when it raises the objective (three F1s summed) by this much: smaller
    // steps are within what the validation clips can tell apart.
    let mut min_gain = 0.002f32;
    set_flag(args, "--min-gain", &mut min_gain)?;
    // The knobs and their values (checked before the clips are heard).
    type Set = fn(&mut DecoderTuning, f32);
    let mut knobs: Vec<(&str, Vec<f32>, Set)> = vec![
        ("voicing offset", vec![-0.25, -0.2, -0.15, -0.1, -0.05, 0.0, 0.05, 0.1], |v, x| v.voicing_offset = x),
        ("settle spread", vec![0.2, 0.3, 0.4, 0.5, 0.6], |v, x| v.settle_spread = x),
        ("settle step", vec![0.03, 0.045, 0.06, 0.1, 0.15], |v, x| v.settle_step = x),
        ("wait frames", vec![6.0, 9.0, 12.0, 15.0], |v, x| v.wait_frames = x as u64),
        ("extrapolate", vec![0.0, 1.5, 3.0, 4.5], |v, x| v.extrapolate = x),
        ("off frames", vec![4.0, 5.0, 6.0, 8.0, 10.0], |v, x| v.off_frames = x as u32),
        ("onset peak", vec![0.5, 0.65, 0.75, 0.85, 0.95], |v, x| v.onset_peak = x),
        ("change deviation", vec![0.8, 0.9, 1.0, 1.1, 1.2], |v, x| v.change_deviation = x),
        ("change jump", vec![1.2, 1.4, 1.7, 2.0], |v, x| v.change_jump = x),
        ("scoop rise", vec![0.5, 0.6, 0.7, 0.8], |v, x| v.scoop_rise = x),
        ("vibrato margin", vec![0.1, 0.2, 0.3, 0.4], |v, x| v.vibrato_margin = x),
        ("confidence min", vec![0.5, 0.6, 0.7, 0.8, 0.9], |v, x| v.confidence_min = x),
        ("lead gate dB", vec![10.0, 15.0, 20.0, 30.0], |v, x| v.lead_gate_db = x),
        ("octave below max", vec![0.15, 0.2, 0.3, 0.5, 1.0], |v, x| v.octave_below_max = x),
    ];
    // `--hold NAME,…`: knobs kept at the file's values (names as printed, spaces or hyphens).
    if let Some(hold) = flag::<String>(args, "--hold")? {
        let held: Vec<String> = hold.split(',').map(|h| h.trim().replace('-', " ")).collect();
        if let Some(h) = held.iter().find(|h| !knobs.iter().any(|k| k.0 == h.as_str())) {
            anyhow::bail!("--hold {hold}: no knob named {h:?} (knobs: {})", knobs.iter().map(|k| k.0.replace(' ', "-")).collect::<Vec<_>>().join(", "));
        }
        knobs.retain(|k| !held.iter().any(|h| h == k.0));
    }
    let t0 = std::time::Instant::now();
    let noisy = hear_clips(&model, VALIDATION_FIRST_CLIP, n_noisy, 1.0)?;
    let clean = hear_clips(&model, VALIDATION_FIRST_CLIP + n_noisy as u64, n_clean, 0.0)?;
    let melodies = hear_melodies(&model, VALIDATION_FIRST_MELODY, n_melodies)?;
    println!(
        "{}: heard {n_noisy} noisy and {n_clean} clean validation clips and {n_melodies} melodies of the other singer in {:.1} s",
        model_path.display(),
        t0.elapsed().as_secs_f32()
    );
    // Per mode (0 live, 1 placed): F1 on the noisy clips, on the clean ones, on the melodies
    // (the singer of `cargo xtask eval`, clean: a voice the training's singer is not). An empty
    // set scores 0.
    let score = |live: Voicing, placed: Voicing| -> [[f32; 3]; 2] {
        let [a, b, c] = [&noisy, &clean, &melodies].map(|set| score_heard(&model, set, live, placed));
        [[a.0.f1(), b.0.f1(), c.0.f1()], [a.1.f1(), b.1.f1(), c.1.f1()]]
    };
    let live0 = trained_voicing(&model);
    let placed0 = live0.for_placement();
    let mut fitted = [live0, placed0];
    // `--only live|placed`: fit that path's thresholds and keep the file's for the other.
    let only = flag::<String>(args, "--only")?;
    if let Some(o) = &only {
        anyhow::ensure!(o == "live" || o == "placed", "--only takes live or placed, not {o:?}");
    }
    for (mode, name) in ["live", "placed"].into_iter().enumerate() {
        if only.as_ref().is_some_and(|o| o != name) {
            continue;
        }
        let at = |v: &[Voicing; 2]| score(v[0], v[1])[mode];
        let mut best = at(&fitted);
        let total = |s: &[f32; 3]| s.iter().sum::<f32>();
        println!("{name}, the file's thresholds: noisy {:.3}, clean {:.3}, melodies {:.3} ({:?})", best[0], best[1], best[2], fitted[mode].tuning);
        for round in 1..=rounds {
            let mut moved = false;
            for (knob, values, set) in &knobs {
                for &x in values {
                    let mut v = fitted;
                    set(&mut v[mode].tuning, x);
                    if v[mode].tuning == fitted[mode].tuning {
                        continue;
                    }
                    let s = at(&v);
                    if total(&s) > total(&best) + min_gain {
                        println!("  round {round}: {knob} {x} → noisy {:.3}, clean {:.3}, melodies {:.3}", s[0], s[1], s[2]);
                        fitted = v;
                        best = s;
                        moved = true;
                    }
                }
            }
            if !moved {
                break;
            }
        }
        println!("{name}, fitted: noisy {:.3}, clean {:.3}, melodies {:.3} ({:?})", best[0], best[1], best[2], fitted[mode].tuning);
    }
    println!("fitted in {:.0} s", t0.elapsed().as_secs_f32());
    if args.iter().any(|a| a == "--write") {
        let data: Vec<f32> = fitted.iter().flat_map(|v| v.tuning.to_row()).collect();
        let tensor = hummingface_runtime::model::HostTensor { shape: vec![data.len()], data };
        let bytes = crate::pianist::write_model(&model, DECODER_TUNING, vec![(DECODER_TUNING, tensor)], &model_path)?;
        println!("wrote the fitted thresholds into {} ({bytes} bytes, tensor '{DECODER_TUNING}')", model_path.display());
    }
    if args.iter().any(|a| a == "--no-heldout") {
        return Ok(());
    }
    // The held-out sets, on which the shipped thresholds were chosen over the sessions, and
    // fresh clips that neither the shipped thresholds nor the fit ever saw.
    let fresh = VALIDATION_FIRST_CLIP + 10_000;
    let sets: [(&str, u64, usize, f32); 6] = [
        ("clips 0-59", 0, 60, 1.0),
        ("clips 60-179", 60, 120, 1.0),
        ("clips 180-299", 180, 120, 1.0),
        ("60 clean", 0, 60, 0.0),
        ("fresh: 600 noisy clips", fresh, 600, 1.0),
        ("fresh: 200 clean clips", fresh + 600, 200, 0.0),
    ];
    println!("note F1, the file's thresholds → fitted:");
    let pr = |a: &NoteScore, b: &NoteScore| format!("{:.3} → {:.3} (P {:.3} → {:.3}, R {:.3} → {:.3})", a.f1(), b.f1(), a.precision(), b.precision(), a.recall(), b.recall());
    let melody_sets: [(&str, u64, usize); 2] = [("the 24 eval melodies (cargo xtask eval)", EVAL_FIRST_MELODY, 24), ("fresh: 120 melodies", VALIDATION_FIRST_MELODY + 10_000, 120)];
    for (name, first, n) in melody_sets {
        let heard = hear_melodies(&model, first, n)?;
        let (a, b) = (score_heard(&model, &heard, live0, placed0), score_heard(&model, &heard, fitted[0], fitted[1]));
        println!("  {name}: live {}; placed {}", pr(&a.0, &b.0), pr(&a.1, &b.1));
    }
    for (name, first, n, strength) in sets {
        let heard: Vec<HeardClip> = hear_clips(&model, first, n, strength)?;
        let (a, b) = (score_heard(&model, &heard, live0, placed0), score_heard(&model, &heard, fitted[0], fitted[1]));
        println!("  {name}: live {}; placed {}", pr(&a.0, &b.0), pr(&a.1, &b.1));
    }
    Ok(())
}
