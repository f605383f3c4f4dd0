//! `hummingface`: render a sung melody to piano from the command line, or show what the engine
//! would do on this machine.
//!
//! Every failure ends with exit status ≠ 0 and one line on stderr that starts with `error:`.

use std::io::IsTerminal;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::error::ErrorKind;
use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use hummingface::audio_file::{prepare_wav_f32, read_audio};
use hummingface::midi_file::prepare_midi;
use hummingface::params::limits;
use hummingface::picture::prepare_png;
use hummingface::presets::{self, Sound};
use hummingface_runtime::{
    key_from_name, render_offline, DeviceChoice, NotePlacement, Engine, EngineConfig, Model,
    ProcessMode, RenderOptions, Scale, KEY_NAMES,
};

#[derive(Parser)]
#[command(
    name = "hummingface",
    version,
    about = "Sing, and a piano plays what you sang"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Render a vocal recording to piano (offline: waits for every frame, deterministic).
    Render(RenderArgs),
    /// Play a Standard MIDI File on the pianist (velocity, sustain pedal) through the same
    /// engine path, to a WAV file.
    RenderMidi(RenderMidiArgs),
    /// List the factory presets and the user presets (the names `render --preset` takes).
    Presets(PresetsArgs),
    /// Show the version, the model, the device `auto` picks and the latency.
    Info(InfoArgs),
    /// Measure the generator on CPU and (when usable) CUDA on the same input: per-hop latency,
    /// batched listener throughput, full offline render speed, largest CPU/GPU differences.
    BenchGpu(BenchGpuArgs),
}

#[derive(Args)]
struct RenderArgs {
    /// Input audio file(s): WAV, FLAC, MP3 or Ogg Vorbis. Several files need --out-dir; with it
    /// a directory stands for the audio files in it.
    #[arg(required = true, num_args = 1.., value_name = "IN")]
    inputs: Vec<PathBuf>,
    /// Output file, written as 32-bit float WAV at the input's sample rate and channel count.
    #[arg(short = 'o', long = "output", value_name = "OUT.wav",
          required_unless_present = "out_dir", conflicts_with = "out_dir")]
    output: Option<PathBuf>,
    /// Also write the notes as a Standard MIDI File (120 bpm, 480 ticks per quarter).
    #[arg(long, value_name = "OUT.mid", conflicts_with = "out_dir")]
    midi: Option<PathBuf>,
    /// Also draw what was heard, the sung pitch over the notes as a piano roll, as a PNG.
    #[arg(long, value_name = "OUT.png", conflicts_with = "out_dir")]
    png: Option<PathBuf>,
    /// Batch: render every input (a directory: its audio files) into DIR (made if missing) as
    /// NAME.wav, NAME being the input's file name without its extension. A file that fails is
    /// reported and skipped, the others are rendered; the exit status is 1 if any failed.
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
    /// With --out-dir: also write NAME.mid for every input.
    #[arg(long)]
    midi_files: bool,
    /// With --out-dir: also write NAME.png for every input.
    #[arg(long)]
    png_files: bool,
    /// With --out-dir: files rendered at the same time (each render uses about one core)
    /// [default: 1].
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: Option<u16>,
    /// Print one JSON object with the result on stdout (with --out-dir, one line per input,
    /// holding `input` and either the result's fields or `error`).
    #[arg(long)]
    json: bool,
    /// Start from a preset: a factory preset (natural-grand, soft-ballad, staccato, free-pitch,
    /// pentatonic-a-minor, low-voice-octave-up), a user preset's name, or a preset file
    /// (FILE.json). `hummingface presets` lists them. The options below override its values.
    #[arg(long, value_name = "NAME")]
    preset: Option<String>,
    /// Dry/wet mix, 0 (vocal only) … 1 (piano only) [default: 1].
    #[arg(long, value_parser = ranged(limits::MIX))]
    mix: Option<f32>,
    /// Output gain in dB, −24 … 12 [default: 0].
    #[arg(long, value_name = "DB", allow_negative_numbers = true,
          value_parser = ranged(limits::GAIN_DB))]
    gain: Option<f32>,
    /// Semitones added after the key snap, −24 … 24 [default: 0].
    #[arg(long, value_name = "N", allow_negative_numbers = true,
          value_parser = clap::value_parser!(i32).range(
              *limits::TRANSPOSE.start() as i64..=*limits::TRANSPOSE.end() as i64))]
    transpose: Option<i32>,
    /// Tonic of the key snap: C, C#, Db, D, … B [default: C].
    #[arg(long, value_parser = parse_key)]
    key: Option<u8>,
    /// Scale of the key snap: chromatic, major, minor, harmonic-minor, major-pentatonic,
    /// minor-pentatonic, blues, dorian, mixolydian [default: chromatic].
    #[arg(long, value_parser = parse_scale)]
    scale: Option<Scale>,
    /// How readily quiet or breathy singing becomes a note, 0 … 1 [default: 0.5].
    #[arg(long, value_parser = ranged(limits::SENSITIVITY))]
    sensitivity: Option<f32>,
    /// Minimum note length in milliseconds, 0 … 500 [default: 60]. With lookahead, a note held
    /// this long (counted up to 50 ms, at least 20) is kept even when the next one follows
    /// within 80 ms: lower it for very fast runs.
    #[arg(long, value_name = "MS", value_parser = ranged(limits::MIN_NOTE_MS))]
    min_note: Option<f32>,
    /// Velocity curve exponent, 0.25 … 4 (below 1 lifts soft singing) [default: 1].
    #[arg(long, value_parser = ranged(limits::VELOCITY_RESPONSE))]
    velocity_response: Option<f32>,
    /// Piano tone, −1 (dark) … 1 (bright) [default: 0].
    #[arg(long, allow_negative_numbers = true, value_parser = ranged(limits::TONE))]
    tone: Option<f32>,
    /// Damper release in milliseconds, 10 … 3000 [default: 250].
    #[arg(long, value_name = "MS", value_parser = ranged(limits::RELEASE_MS))]
    release: Option<f32>,
    /// Compute device: auto, cpu or cuda.
    #[arg(long, default_value = "auto", value_parser = parse_device)]
    device: DeviceChoice,
    /// Generator weights (safetensors) to use instead of the built-in model.
    #[arg(long, value_name = "PATH")]
    model: Option<PathBuf>,
    /// Listener: trained (the network; the default when the model has one, as in the plugin) or
    /// v0 (harmonic summation, the plugin's Classic listener; see BENCHMARKS.md for where each
    /// is ahead).
    #[arg(long, value_parser = ["trained", "v0"])]
    listener: Option<String>,
    /// Where the notes go: lookahead (the default: each note where it began — up to 107 ms
    /// before the live decoder was sure of it — and the live decoder's quick corrections
    /// dropped, found by listening 181 ms further; what the plugin plays with `Note timing` on
    /// `Lookahead`) or live (what the plugin plays by default, in real time and in a host's
    /// offline bounce: each note from the moment the decoder is sure of it).
    #[arg(long, default_value = "lookahead", value_parser = ["lookahead", "live"])]
    notes: String,
}

#[derive(Args)]
struct RenderMidiArgs {
    /// Standard MIDI File (format 0 or 1). Channel 10 (percussion) is left out.
    input: PathBuf,
    /// Output file, written as 32-bit float mono WAV.
    #[arg(short = 'o', long = "output", value_name = "OUT.wav")]
    output: PathBuf,
    /// Print one JSON object with the result on stdout.
    #[arg(long)]
    json: bool,
    /// Sample rate of the output, 8000 … 192000 Hz.
    #[arg(long, default_value_t = 48000, value_parser = clap::value_parser!(u32).range(8000..=192000))]
    rate: u32,
    /// Seconds rendered after the last event (the release tail).
    #[arg(long, value_name = "S", default_value_t = 2.0, value_parser = ranged(0.0..=60.0))]
    tail: f32,
    /// Output gain in dB, −24 … 12 [default: 0].
    #[arg(long, value_name = "DB", allow_negative_numbers = true, default_value_t = 0.0,
          value_parser = ranged(limits::GAIN_DB))]
    gain: f32,
    /// Pianist: trained (the network learned from FluidR3's grand, the default) or v0 (the
    /// parametric piano).
    #[arg(long, default_value = "trained", value_parser = ["trained", "v0"])]
    pianist: String,
    /// Compute device: auto, cpu or cuda.
    #[arg(long, default_value = "auto", value_parser = parse_device)]
    device: DeviceChoice,
    /// Generator weights (safetensors) to use instead of the built-in model.
    #[arg(long, value_name = "PATH")]
    model: Option<PathBuf>,
}

/// The `render-midi --json` output.
#[derive(Serialize)]
struct RenderMidiReport {
    sample_rate: u32,
    /// Output duration, seconds.
    seconds: f64,
    /// Notes played.
    notes: usize,
    /// Percussion (channel 10) notes left out.
    percussion_skipped: usize,
    /// Sustain pedal changes in the file.
    pedal_events: usize,
    /// Engine latency in samples (already removed from the output).
    latency_samples: u32,
    /// Output seconds per second of processing.
    realtime_factor: f64,
    /// Peak of the output, dBFS.
    peak_dbfs: f64,
    /// `trained` or `v0`.
    pianist: &'static str,
    device: String,
    model: String,
}

fn render_midi_cmd(args: RenderMidiArgs) -> Result<()> {
    use hummingface_runtime::generator::{MidiIn, PianistKind};
    let song = hummingface::midi_file::read_midi(&args.input)?;
    let model = load_model(args.model.as_deref())?;
    let kind = if args.pianist == "v0" { PianistKind::V0 } else { PianistKind::Trained };
    if kind == PianistKind::Trained && !model.has_trained_pianist() {
        anyhow::bail!("this model has no trained pianist ({}): use --pianist v0", model.name());
    }
    let model = Arc::new((*model).clone().with_pianist(kind));
    let seconds = song.end_s + f64::from(args.tail);
    let opts = RenderOptions { gain_db: args.gain, device: args.device, ..RenderOptions::default() };
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(1000);
        if let Ok(style) = indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {percent:>3}% {eta}") {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message("playing");
        bar
    });
    let mut progress = |p: f32| {
        if let Some(bar) = &bar {
            bar.set_position((p.clamp(0.0, 1.0) * 1000.0) as u64);
        }
    };
    let result = hummingface_runtime::render_midi(&song.events, seconds, args.rate as f32, &opts, model.clone(), &mut progress);
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let result = result.with_context(|| format!("cannot render {}", args.input.display()))?;
    if let Some(note) = &result.device_note {
        eprintln!("note: {}", one_line(note));
    }
    let peak = result.samples.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let peak_dbfs = 20.0 * f64::from(peak.max(1e-10)).log10();
    if peak > 1.0 {
        eprintln!("note: the output peaks at {peak_dbfs:+.1} dBFS (kept in the float WAV); lower it with --gain");
    }
    let wav = prepare_wav_f32(&args.output, std::slice::from_ref(&result.samples), args.rate)?;
    let target = wav.target().to_path_buf();
    wav.commit().map_err(|e| anyhow::anyhow!("{}: cannot write: {e}", target.display()))?;
    let report = RenderMidiReport {
        sample_rate: args.rate,
        seconds,
        notes: song.notes,
        percussion_skipped: song.percussion_skipped,
        pedal_events: song.events.iter().filter(|e| matches!(e.event, MidiIn::Sustain(_))).count(),
        latency_samples: result.latency_samples,
        realtime_factor: seconds / result.elapsed_s.max(1e-9),
        peak_dbfs,
        pianist: result.pianist.name(),
        device: result.device.clone(),
        model: model.name().to_string(),
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "wrote {}: {:.2} s, {} notes on the {} pianist, peak {:+.1} dBFS, {:.1}x real time on {}",
            args.output.display(),
            report.seconds,
            report.notes,
            report.pianist,
            report.peak_dbfs,
            report.realtime_factor,
            report.device
        );
    }
    Ok(())
}

#[derive(Args)]
struct PresetsArgs {
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct BenchGpuArgs {
    /// Vocal recording to measure on (mono mix of its channels).
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// Print one JSON object on stdout (otherwise pretty JSON).
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct InfoArgs {
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Device to ask about: auto, cpu or cuda.
    #[arg(long, default_value = "auto", value_parser = parse_device)]
    device: DeviceChoice,
    /// Generator weights (safetensors) to describe instead of the built-in model.
    #[arg(long, value_name = "PATH")]
    model: Option<PathBuf>,
}

/// A value parser for an `f32` that must be finite and inside `range`.
fn ranged(
    range: RangeInclusive<f32>,
) -> impl Fn(&str) -> Result<f32, String> + Clone + Send + Sync + 'static {
    move |s: &str| {
        let v: f32 = s
            .trim()
            .parse()
            .map_err(|_| format!("'{s}' is not a number"))?;
        if !v.is_finite() {
            Err(format!("'{s}' is not a finite number"))
        } else if range.contains(&v) {
            Ok(v)
        } else {
            Err(format!(
                "{s} is outside {} … {}",
                range.start(),
                range.end()
            ))
        }
    }
}

fn parse_key(s: &str) -> Result<u8, String> {
    key_from_name(s.trim()).ok_or_else(|| {
        format!(
            "unknown key '{s}' (expected one of {})",
            KEY_NAMES.join(", ")
        )
    })
}

fn parse_scale(s: &str) -> Result<Scale, String> {
    Scale::from_name(s.trim()).ok_or_else(|| {
        let names: Vec<&str> = Scale::ALL.iter().map(|s| s.name()).collect();
        format!("unknown scale '{s}' (expected one of {})", names.join(", "))
    })
}

fn parse_device(s: &str) -> Result<DeviceChoice, String> {
    s.trim().parse()
}

/// The model to use: the file given with `--model` (an error if it does not load), else the
/// built-in one.
fn load_model(path: Option<&Path>) -> Result<Arc<Model>> {
    match path {
        Some(path) => Model::from_file(path)
            .and_then(Model::playable)
            .map(Arc::new)
            .with_context(|| format!("cannot use model {}", path.display())),
        None => Ok(Model::embedded()),
    }
}

/// One note in the `--json` output.
#[derive(Serialize)]
struct JsonNote {
    /// Onset in seconds from the start of the input.
    start_s: f64,
    /// Release in seconds from the start of the input.
    end_s: f64,
    /// MIDI note number.
    note: u8,
    /// 0..1.
    velocity: f32,
}

/// The `render --json` output.
#[derive(Serialize)]
struct RenderReport {
    /// Input (and output) sample rate in Hz.
    sample_rate: u32,
    /// Engine latency in samples, with the placement's when the notes are placed with lookahead
    /// (already removed from the output; the plugin reports the same).
    latency_samples: u32,
    /// The same in milliseconds.
    latency_ms: f64,
    /// Notes played, in onset order.
    notes: Vec<JsonNote>,
    /// Input duration in seconds.
    seconds: f64,
    /// Input seconds per second of processing.
    realtime_factor: f64,
    /// Frames the worker delivered late (0 in an offline render).
    late_frames: u64,
    /// Device the generator ran on, e.g. `cpu` or `cuda:0`.
    device: String,
    /// Model name.
    model: String,
    /// Listener that heard the vocal: `trained` or `v0`.
    listener: String,
    /// How the notes were placed: `lookahead` or `live`.
    notes_placed: String,
    /// Preset the render started from, if any.
    preset: Option<String>,
    /// The settings used (preset, then the options given).
    settings: presets::Preset,
    /// Key the notes suggest (Krumhansl–Kessler profiles), e.g. `A minor`; null for fewer than
    /// three pitch classes.
    suggested_key: Option<String>,
}

/// The sound to render: the preset's (or the defaults), then every option given on the command
/// line.
fn sound_for(args: &RenderArgs) -> Result<(Sound, Option<String>)> {
    let (mut sound, preset) = match &args.preset {
        Some(name) => {
            let preset = presets::find_preset(name)?;
            let sound = preset.sound(&preset.name)?;
            (sound, Some(preset.name))
        }
        None => (Sound::default(), None),
    };
    let c = &mut sound.controls;
    c.sensitivity = args.sensitivity.unwrap_or(c.sensitivity);
    c.min_note_ms = args.min_note.unwrap_or(c.min_note_ms);
    c.key = args.key.unwrap_or(c.key);
    c.scale = args.scale.unwrap_or(c.scale);
    c.transpose = args.transpose.unwrap_or(c.transpose);
    c.velocity_response = args.velocity_response.unwrap_or(c.velocity_response);
    c.tone = args.tone.unwrap_or(c.tone);
    c.release_ms = args.release.unwrap_or(c.release_ms);
    sound.mix = args.mix.unwrap_or(sound.mix);
    sound.gain_db = args.gain.unwrap_or(sound.gain_db);
    Ok((sound, preset))
}

/// What every input of one `render` call is rendered with.
struct RenderSetup {
    sound: Sound,
    preset: Option<String>,
    model: Arc<Model>,
    /// `trained` or `v0`.
    listener: &'static str,
    opts: RenderOptions,
    notes_placed: String,
}

/// Where one input's render goes.
struct RenderJob {
    input: PathBuf,
    wav: PathBuf,
    midi: Option<PathBuf>,
    png: Option<PathBuf>,
}

fn render_setup(args: &RenderArgs) -> Result<RenderSetup> {
    // Settings first: a bad preset fails before the input is decoded.
    let (sound, preset) = sound_for(args)?;
    let model = load_model(args.model.as_deref())?;
    let listener = match args.listener.as_deref() {
        Some("trained") if !model.has_trained_listener() => {
            anyhow::bail!("this model has no trained listener ({}): use --listener v0", model.name());
        }
        Some("trained") => "trained",
        Some(_) => "v0",
        None if model.has_trained_listener() => "trained",
        None => {
            eprintln!("note: this model has no trained listener ({}): listening with v0", model.name());
            "v0"
        }
    };
    let model = if listener == "trained" {
        model.listening_with(hummingface_runtime::generator::ListenerKind::Trained)
    } else {
        model.listening_with(hummingface_runtime::generator::ListenerKind::V0)
    };
    let opts = RenderOptions {
        controls: sound.controls,
        mix: sound.mix,
        gain_db: sound.gain_db,
        device: args.device,
        notes: if args.notes == "live" { NotePlacement::Live } else { NotePlacement::Lookahead },
        ..RenderOptions::default()
    };
    Ok(RenderSetup { sound, preset, model, listener, opts, notes_placed: args.notes.clone() })
}

/// Renders one input and writes its files (every output complete on disk before any is renamed
/// into place; nothing is written when the render fails). `progress` gets 0..1.
fn render_one(setup: &RenderSetup, job: &RenderJob, progress: &mut dyn FnMut(f32)) -> Result<RenderReport> {
    let audio = read_audio(&job.input)?;
    let sample_rate = audio.sample_rate as f32;
    let result = render_offline(&audio.channels, sample_rate, &setup.opts, setup.model.clone(), progress)
        .with_context(|| format!("cannot render {}", job.input.display()))?;
    if let Some(note) = &result.device_note {
        eprintln!("note: {}", one_line(note));
    }

    let wav = prepare_wav_f32(&job.wav, &result.channels, audio.sample_rate)?;
    let midi = match &job.midi {
        Some(path) => Some(prepare_midi(path, &result.notes, sample_rate)?),
        None => None,
    };
    let png = match &job.png {
        Some(path) => {
            let title = format!(
                "{} — {} notes{}",
                job.input.file_name().map_or_else(|| "input".into(), |n| n.to_string_lossy()),
                result.notes.len(),
                setup.preset.as_ref().map(|p| format!(", preset {p}")).unwrap_or_default()
            );
            Some(prepare_png(path, &result.notes, &result.pitch, sample_rate, result.seconds, &title)?)
        }
        None => None,
    };
    for pending in std::iter::once(wav).chain(midi).chain(png) {
        let target = pending.target().to_path_buf();
        pending
            .commit()
            .map_err(|e| anyhow::anyhow!("{}: cannot write: {e}", target.display()))?;
    }

    let sr = f64::from(sample_rate);
    let sound = &setup.sound;
    let preset = &setup.preset;
    Ok(RenderReport {
        sample_rate: audio.sample_rate,
        latency_samples: result.latency_samples,
        latency_ms: f64::from(result.latency_samples) * 1000.0 / sr,
        notes: result
            .notes
            .iter()
            .map(|n| JsonNote {
                start_s: n.start_sample as f64 / sr,
                end_s: n.end_sample as f64 / sr,
                note: n.note,
                velocity: n.velocity,
            })
            .collect(),
        seconds: result.seconds,
        realtime_factor: result.seconds / result.elapsed_s.max(1e-9),
        late_frames: result.late_frames,
        device: result.device.clone(),
        model: setup.model.name().to_string(),
        listener: setup.listener.to_string(),
        notes_placed: setup.notes_placed.clone(),
        preset: preset.clone(),
        settings: presets::Preset::from_sound(preset.as_deref().unwrap_or("command line"), "", sound),
        suggested_key: hummingface_runtime::estimate_key(result.notes.iter().map(|n| {
            (n.note, n.end_sample.saturating_sub(n.start_sample) as f32 / sample_rate)
        }))
        .map(|k| {
            let mode = if k.scale == Scale::Major { "major" } else { "minor" };
            format!("{} {mode}", presets::key_name(k.key))
        }),
    })
}

/// A progress bar on stderr when it is a terminal, `len` steps long.
fn progress_bar(len: u64, message: &str) -> Option<indicatif::ProgressBar> {
    std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(len);
        if let Ok(style) = indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {percent:>3}% {eta}") {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(message.to_string());
        bar
    })
}

fn render(args: RenderArgs) -> Result<()> {
    if let Some(dir) = &args.out_dir {
        return render_batch(&args, dir);
    }
    for (given, flag) in [(args.midi_files, "--midi-files"), (args.png_files, "--png-files"), (args.jobs.is_some(), "--jobs")] {
        if given {
            anyhow::bail!("{flag} is for rendering into a directory: add --out-dir DIR (one file: --midi / --png OUT)");
        }
    }
    let (input, output) = match (&args.inputs[..], &args.output) {
        ([input], Some(output)) => (input.clone(), output.clone()),
        (inputs, _) => anyhow::bail!(
            "{} inputs and one output file: render several files with --out-dir DIR",
            inputs.len()
        ),
    };
    if input.is_dir() {
        anyhow::bail!("{} is a directory: render the audio files in it with --out-dir DIR", input.display());
    }
    let setup = render_setup(&args)?;
    let job = RenderJob { input, wav: output, midi: args.midi.clone(), png: args.png.clone() };
    let bar = progress_bar(1000, "rendering");
    let mut progress = |p: f32| {
        if let Some(bar) = &bar {
            bar.set_position((p.clamp(0.0, 1.0) * 1000.0) as u64);
        }
    };
    let report = render_one(&setup, &job, &mut progress);
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let report = report?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        for line in job.written(&report) {
            println!("{line}");
        }
    }
    Ok(())
}

impl RenderJob {
    /// What a finished render says: the WAV's summary, then each other file written.
    fn written(&self, report: &RenderReport) -> Vec<String> {
        std::iter::once(report.summary(&self.wav))
            .chain(self.midi.iter().chain(&self.png).map(|p| format!("wrote {}", p.display())))
            .collect()
    }
}

impl RenderReport {
    /// `wrote OUT.wav: 5.00 s, 13 notes, …`.
    fn summary(&self, wav: &Path) -> String {
        format!(
            "wrote {}: {:.2} s, {} notes, latency {} samples ({:.1} ms), {:.1}x real time on {}",
            wav.display(),
            self.seconds,
            self.notes.len(),
            self.latency_samples,
            self.latency_ms,
            self.realtime_factor,
            self.device
        )
    }
}

/// File extensions of the audio files a directory given to `render --out-dir` stands for.
const AUDIO_EXTENSIONS: [&str; 6] = ["wav", "wave", "flac", "mp3", "ogg", "oga"];

/// One line of `render --out-dir --json`.
#[derive(Serialize)]
struct BatchLine<'a> {
    input: &'a Path,
    /// The WAV written (absent when the input failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<&'a Path>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    result: Option<RenderReport>,
}

/// `render IN... --out-dir DIR`: every input into DIR; a failing input is reported and the
/// others still rendered.
fn render_batch(args: &RenderArgs, dir: &Path) -> Result<()> {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
    use std::sync::Mutex;

    // A directory given as an input stands for the audio files in it (by name, not recursive).
    let mut inputs: Vec<PathBuf> = Vec::with_capacity(args.inputs.len());
    for input in &args.inputs {
        if !input.is_dir() {
            inputs.push(input.clone());
            continue;
        }
        let mut found: Vec<PathBuf> = std::fs::read_dir(input)
            .with_context(|| format!("cannot list {}", input.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().and_then(|e| e.to_str()).is_some_and(|e| AUDIO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str())))
            .collect();
        if found.is_empty() {
            anyhow::bail!("{}: no audio files in it ({})", input.display(), AUDIO_EXTENSIONS.join(", "));
        }
        found.sort();
        inputs.extend(found);
    }

    // Every output name is decided, and checked, before anything is rendered.
    let mut jobs: Vec<RenderJob> = Vec::with_capacity(inputs.len());
    let mut by_name: HashMap<std::ffi::OsString, &Path> = HashMap::new();
    for input in &inputs {
        let stem = input
            .file_stem()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| anyhow::anyhow!("{}: not a file name", input.display()))?;
        if let Some(other) = by_name.insert(stem.to_os_string(), input) {
            if other == input {
                anyhow::bail!("{} is given twice", input.display());
            }
            anyhow::bail!(
                "{} and {} would both be written as {}: rename one, or render them into different directories",
                other.display(),
                input.display(),
                dir.join(stem).with_extension("wav").display()
            );
        }
        let out = |ext: &str| dir.join(stem).with_extension(ext);
        jobs.push(RenderJob {
            input: input.clone(),
            wav: out("wav"),
            midi: args.midi_files.then(|| out("mid")),
            png: args.png_files.then(|| out("png")),
        });
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot make the output directory {}", dir.display()))?;
    // An output that already exists must not be one of the inputs.
    let real_inputs: Vec<(PathBuf, &Path)> = jobs.iter().filter_map(|j| Some((j.input.canonicalize().ok()?, j.input.as_path()))).collect();
    for out in jobs.iter().flat_map(|j| std::iter::once(&j.wav).chain(&j.midi).chain(&j.png)) {
        let Ok(real) = out.canonicalize() else { continue };
        if let Some((_, input)) = real_inputs.iter().find(|(r, _)| *r == real) {
            anyhow::bail!("{} would overwrite the input {}: choose another --out-dir", out.display(), input.display());
        }
    }
    let setup = render_setup(args)?;

    let total = jobs.len();
    let bar = progress_bar(total as u64 * 1000, &format!("rendering {total} files"));
    // Per input, its progress in thousandths; the bar shows their sum.
    let done_parts: Vec<AtomicU32> = jobs.iter().map(|_| AtomicU32::new(0)).collect();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<RenderReport>>>> = Mutex::new(jobs.iter().map(|_| None).collect());
    let print = Mutex::new(());
    let workers = usize::from(args.jobs.unwrap_or(1)).min(total).max(1);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(i) else { break };
                let mut progress = |p: f32| {
                    done_parts[i].store((p.clamp(0.0, 1.0) * 1000.0) as u32, Ordering::Relaxed);
                    if let Some(bar) = &bar {
                        bar.set_position(done_parts.iter().map(|d| u64::from(d.load(Ordering::Relaxed))).sum());
                    }
                };
                let result = render_one(&setup, job, &mut progress);
                done_parts[i].store(1000, Ordering::Relaxed);
                {
                    // One input's lines together, above the bar.
                    let _guard = print.lock().unwrap_or_else(|e| e.into_inner());
                    match &result {
                        Ok(report) if !args.json => {
                            for line in job.written(report) {
                                match &bar {
                                    Some(bar) => bar.println(line),
                                    None => println!("{line}"),
                                }
                            }
                        }
                        _ => {}
                    }
                    if let Err(e) = &result {
                        // Name the input, unless the error already does.
                        let (name, why) = (job.input.display().to_string(), error_line(e));
                        let text = if why.contains(&name) { format!("error: {why}") } else { format!("error: {name}: {why}") };
                        match &bar {
                            Some(bar) => bar.suspend(|| eprintln!("{text}")),
                            None => eprintln!("{text}"),
                        }
                    }
                }
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(result);
            });
        }
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut failed = 0;
    for (job, result) in jobs.iter().zip(results) {
        let result = result.unwrap_or_else(|| Err(anyhow::anyhow!("not rendered")));
        if result.is_err() {
            failed += 1;
        }
        if args.json {
            let line = match result {
                Ok(report) => BatchLine { input: &job.input, output: Some(&job.wav), error: None, result: Some(report) },
                Err(e) => BatchLine { input: &job.input, output: None, error: Some(error_line(&e)), result: None },
            };
            println!("{}", serde_json::to_string(&line)?);
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {total} inputs failed; {} rendered into {}", total - failed, dir.display());
    }
    if !args.json {
        println!("rendered {total} inputs into {}", dir.display());
    }
    Ok(())
}

/// One preset in the `presets --json` output.
#[derive(Serialize)]
struct PresetEntry {
    /// What `render --preset` takes.
    id: String,
    name: String,
    description: String,
    /// `factory` or `user`.
    kind: &'static str,
    /// The file of a user preset.
    path: Option<PathBuf>,
}

fn list_presets(args: PresetsArgs) -> Result<()> {
    let mut entries: Vec<PresetEntry> = presets::factory_by_stem()
        .into_iter()
        .map(|(id, p)| PresetEntry { id: id.to_string(), name: p.name, description: p.description, kind: "factory", path: None })
        .collect();
    // Keep the menu order of the factory presets.
    entries.sort_by_key(|e| presets::FACTORY.iter().position(|(s, _)| *s == e.id));
    let dir = presets::user_preset_dir();
    let (user, bad) = presets::user_presets(&dir);
    for (path, p) in user {
        let id = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        entries.push(PresetEntry { id, name: p.name, description: p.description, kind: "user", path: Some(path) });
    }
    for err in &bad {
        eprintln!("warning: {}", one_line(&err.to_string()));
    }
    if args.json {
        println!("{}", serde_json::json!({ "presets": entries, "user_dir": dir }));
    } else {
        for e in &entries {
            println!("{:<22} {:<8} {}", e.id, e.kind, e.description);
        }
        println!("user presets: {}", dir.display());
    }
    Ok(())
}

/// Latency at one sample rate in the `info` output.
#[derive(Serialize)]
struct LatencyInfo {
    /// Hz.
    sample_rate: u32,
    /// Samples the host must compensate (notes played live, the plugin's default).
    latency_samples: u32,
    /// The same in milliseconds.
    latency_ms: f64,
    /// Samples with the notes placed with lookahead (`Note timing` on `Lookahead`, the render's
    /// default).
    lookahead_latency_samples: u32,
    /// The same in milliseconds.
    lookahead_latency_ms: f64,
}

/// The `info --json` output.
#[derive(Serialize)]
struct InfoReport {
    /// Version of this program.
    version: &'static str,
    /// Model name.
    model: String,
    /// Device the `auto` setting picks on this machine.
    device: String,
    /// Whether this build can use CUDA at all.
    cuda_compiled: bool,
    /// Why `auto` did not pick CUDA, when it did not and the runtime says why.
    device_note: Option<String>,
    /// Latency at 44.1 and 48 kHz.
    latency: Vec<LatencyInfo>,
}

fn info(args: InfoArgs) -> Result<()> {
    let model = load_model(args.model.as_deref())?;
    let mut device = None;
    let mut device_note = None;
    let mut latency = Vec::new();
    for sample_rate in [44100u32, 48000] {
        let engine = Engine::new(
            EngineConfig {
                sample_rate: sample_rate as f32,
                max_block: 1024,
                mode: ProcessMode::Offline,
                device: args.device,
            },
            model.clone(),
        )
        .with_context(|| format!("cannot start the engine at {sample_rate} Hz"))?;
        if device.is_none() {
            device = Some(engine.device_name().to_string());
            device_note = engine.device_note().map(str::to_string);
        }
        let samples = engine.latency_samples();
        let placed = engine.latency_with(NotePlacement::Lookahead);
        latency.push(LatencyInfo {
            sample_rate,
            latency_samples: samples,
            latency_ms: f64::from(samples) * 1000.0 / f64::from(sample_rate),
            lookahead_latency_samples: placed,
            lookahead_latency_ms: f64::from(placed) * 1000.0 / f64::from(sample_rate),
        });
    }
    let report = InfoReport {
        version: env!("CARGO_PKG_VERSION"),
        model: model.name().to_string(),
        device: device.unwrap_or_else(|| "cpu".into()),
        cuda_compiled: hummingface_runtime::CUDA_COMPILED,
        device_note,
        latency,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("hummingface {}", report.version);
        println!("model:   {}", report.model);
        println!(
            "device:  {} (what 'auto' picks; CUDA {})",
            report.device,
            if report.cuda_compiled {
                "built in"
            } else {
                "not built in"
            }
        );
        if let Some(note) = &report.device_note {
            println!("         {}", one_line(note));
        }
        for l in &report.latency {
            println!(
                "latency: {} samples ({:.2} ms) at {} Hz; {} samples ({:.2} ms) with notes placed with lookahead",
                l.latency_samples, l.latency_ms, l.sample_rate, l.lookahead_latency_samples, l.lookahead_latency_ms
            );
        }
    }
    Ok(())
}

/// The error and its causes on one line, `outer: inner: …`, skipping a cause whose text the
/// line already holds (some errors print their source themselves).
fn error_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = one_line(&cause.to_string());
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Squash a message onto one line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Report a command-line parse error on one line (help and version print normally).
fn clap_exit(err: clap::Error) -> ExitCode {
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            // Printing help can only fail on a closed stdout; nothing useful is left to do then.
            let _ = err.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // `hummingface` alone: the help is the clearest answer, but it is still an error.
            let _ = err.print();
            ExitCode::from(2)
        }
        _ => {
            let text = err.to_string();
            let lines: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| {
                    !l.is_empty()
                        && !l.starts_with("Usage:")
                        && !l.starts_with("For more information")
                })
                .collect();
            let mut msg = one_line(&lines.join(" "));
            if !msg.starts_with("error:") {
                msg = format!("error: {msg}");
            }
            eprintln!("{msg} (see 'hummingface --help')");
            ExitCode::from(2)
        }
    }
}

fn bench_gpu(args: BenchGpuArgs) -> Result<()> {
    let audio = hummingface::audio_file::read_audio(&args.input)?;
    let n = audio.channels.len().max(1) as f32;
    let len = audio.channels.first().map_or(0, |c| c.len());
    let mono: Vec<f32> = (0..len).map(|i| audio.channels.iter().map(|c| c[i]).sum::<f32>() / n).collect();
    let report = hummingface_runtime::bench::compare_devices(&mono, audio.sample_rate as f32, Model::embedded())
        .map_err(|e| anyhow::anyhow!(e))?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}

fn main() -> ExitCode {
    hummingface_runtime::generator::pin_thread_count_env();
    // A bug must still end with one clear line rather than a multi-line panic report.
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "error: internal error (please report it): {}{at}",
            one_line(&what)
        );
    }));

    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return clap_exit(err),
    };
    let result = match cli.command {
        Command::Render(args) => render(args),
        Command::RenderMidi(args) => render_midi_cmd(args),
        Command::Presets(args) => list_presets(args),
        Command::Info(args) => info(args),
        Command::BenchGpu(args) => bench_gpu(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", error_line(&err));
            ExitCode::FAILURE
        }
    }
}
