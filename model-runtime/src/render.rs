//! Offline render of a whole signal through the engine (the CLI's path, and the reference an
//! offline bounce in a host must equal).

use std::sync::Arc;
use std::time::Instant;

use crate::controls::Controls;
use crate::engine::{Engine, EngineConfig, EngineError, NoteEvent, NotePlacement, ProcessMode};
use crate::feed::PitchFeed;
use crate::mixer::Mixer;
use crate::model::{DeviceChoice, Model};

#[derive(Debug, Clone, Copy)]
pub struct RenderOptions {
    pub controls: Controls,
    /// 0..1, 0 = dry only.
    pub mix: f32,
    /// Output gain, dB.
    pub gain_db: f32,
    pub device: DeviceChoice,
    /// Block size fed to the engine, samples (the result does not depend on it).
    pub block: usize,
    /// When the notes play: as the live plugin plays them, or placed with lookahead (the
    /// latency, removed from the result, grows by [`crate::lookahead::placement_hops`] hops).
    pub notes: NotePlacement,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions { controls: Controls::default(), mix: 1.0, gain_db: 0.0, device: DeviceChoice::Auto, block: 1024, notes: NotePlacement::Live }
    }
}

/// A note of the render, in input samples (latency removed).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RenderedNote {
    pub start_sample: u64,
    pub end_sample: u64,
    pub note: u8,
    /// 0..1.
    pub velocity: f32,
}

/// The pitch the listener heard, one value per hop, on the input's clock (like the notes).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PitchCurve {
    /// Time of `midi[0]` in seconds from the start of the input (negative: before it).
    pub first_s: f64,
    /// Seconds between values.
    pub hop_s: f64,
    /// MIDI note number with fraction; NaN where the listener heard no pitch.
    pub midi: Vec<f32>,
}

impl PitchCurve {
    /// Time of value `i`, seconds.
    pub fn time(&self, i: usize) -> f64 {
        self.first_s + i as f64 * self.hop_s
    }
}

#[derive(Debug, Clone)]
pub struct RenderResult {
    /// Same channel count and length as the input, latency removed.
    pub channels: Vec<Vec<f32>>,
    pub notes: Vec<RenderedNote>,
    /// What the listener heard (for pictures).
    pub pitch: PitchCurve,
    pub sample_rate: f32,
    pub latency_samples: u32,
    pub late_frames: u64,
    /// Input duration, seconds.
    pub seconds: f64,
    /// Wall-clock time of the render, seconds.
    pub elapsed_s: f64,
    /// Device the generator ran on.
    pub device: String,
    /// Why the requested device was not used, if it was not.
    pub device_note: Option<String>,
}

/// Pair the engine's note-ons with their note-offs, times moved back by `latency` to the input's
/// clock; notes still open at the end close at `len`. Sorted by onset.
fn pair_notes(events: Vec<(u64, NoteEvent)>, latency: usize, len: usize) -> Vec<RenderedNote> {
    let mut notes = Vec::new();
    let mut open: Vec<(u64, u8, f32)> = Vec::new();
    for (t, ev) in events {
        let t = t.saturating_sub(latency as u64);
        if ev.on {
            open.push((t, ev.note, ev.velocity));
        } else if let Some(i) = open.iter().position(|o| o.1 == ev.note) {
            let (s, note, velocity) = open.remove(i);
            notes.push(RenderedNote { start_sample: s, end_sample: t.max(s + 1), note, velocity });
        }
    }
    for (s, note, velocity) in open {
        notes.push(RenderedNote { start_sample: s, end_sample: (len as u64).max(s + 1), note, velocity });
    }
    notes.sort_by_key(|n| n.start_sample);
    notes
}

/// Render `channels` (all the same length) offline: the engine listens to their mono mix hop
/// by hop, as in a host's offline bounce with the same note placement, and its piano is mixed
/// with them. `progress` receives 0..1.
pub fn render_offline(
    channels: &[Vec<f32>],
    sample_rate: f32,
    opts: &RenderOptions,
    model: Arc<Model>,
    progress: &mut dyn FnMut(f32),
) -> Result<RenderResult, EngineError> {
    let nch = channels.len();
    if nch == 0 {
        return Err(EngineError::Input("no audio channels".into()));
    }
    let len = channels[0].len();
    if channels.iter().any(|c| c.len() != len) {
        return Err(EngineError::Input("channels differ in length".into()));
    }
    let block = opts.block.clamp(1, 1 << 16);
    let cfg = EngineConfig { sample_rate, max_block: block, mode: ProcessMode::Offline, device: opts.device };
    // Every decided frame's pitch; drained after each block, far below the feed's capacity.
    let feed = Arc::new(PitchFeed::default());
    feed.set_enabled(true);
    let mut engine = Engine::placing(cfg, model, Some(feed.clone()), opts.notes)?;
    let mut pitch: Vec<f32> = Vec::new();
    let mut next_frame = 0;
    let latency = engine.latency_samples() as usize;
    let mut mixer = Mixer::new(nch, latency);
    let total = len + latency;
    let mut out: Vec<Vec<f32>> = vec![Vec::with_capacity(total); nch];
    let mut mono = vec![0.0f32; block];
    let mut wet = vec![0.0f32; block];
    let mut bufs: Vec<Vec<f32>> = vec![vec![0.0; block]; nch];
    let mut events: Vec<(u64, NoteEvent)> = Vec::new();
    let start = Instant::now();
    let mut pos = 0usize;
    let mut last_report = 0usize;
    while pos < total {
        let n = block.min(total - pos);
        for i in 0..n {
            let t = pos + i;
            let mut acc = 0.0;
            for (c, buf) in bufs.iter_mut().enumerate() {
                let x = if t < len { channels[c][t] } else { 0.0 };
                buf[i] = x;
                acc += x;
            }
            mono[i] = acc / nch as f32;
        }
        let base = pos as u64;
        engine.process(&mono[..n], &mut wet[..n], &opts.controls, &mut |ev| events.push((base + ev.timing as u64, ev)));
        let mut slices: Vec<&mut [f32]> = bufs.iter_mut().map(|b| &mut b[..n]).collect();
        mixer.process(&mut slices, &wet[..n], opts.mix, opts.gain_db, sample_rate);
        next_frame = feed.read_since(next_frame, &mut |f| {
            pitch.resize(f.index as usize, f32::NAN);
            pitch.push(f.pitch);
        });
        for (o, b) in out.iter_mut().zip(&bufs) {
            o.extend_from_slice(&b[..n]);
        }
        pos += n;
        if pos - last_report >= sample_rate as usize || pos == total {
            last_report = pos;
            progress(pos as f32 / total as f32);
        }
    }
    let elapsed_s = start.elapsed().as_secs_f64();
    for o in out.iter_mut() {
        o.drain(..latency.min(o.len()));
        o.truncate(len);
    }
    let notes = pair_notes(events, latency, len);
    let stats = engine.stats();
    // Frame `k`'s events leave the output `(k + 1.5)` hops in (see `Engine::schedule`), and its
    // pitch belongs to the hop whose events it plays; minus the latency, like the notes.
    let hop = engine.timing().hop as f64;
    let pitch = PitchCurve {
        first_s: (1.5 * hop - latency as f64) / sample_rate as f64,
        hop_s: hop / sample_rate as f64,
        midi: pitch,
    };
    Ok(RenderResult {
        channels: out,
        notes,
        pitch,
        sample_rate,
        latency_samples: latency as u32,
        late_frames: stats.late_frames.load(std::sync::atomic::Ordering::Relaxed),
        seconds: len as f64 / sample_rate as f64,
        elapsed_s,
        device: engine.device_name().to_string(),
        device_note: engine.device_note().map(str::to_string),
    })
}

/// A MIDI input event at an absolute time, seconds from the start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimedMidi {
    pub seconds: f64,
    pub event: crate::generator::MidiIn,
}

/// Result of [`render_midi`].
#[derive(Debug, Clone)]
pub struct MidiRenderResult {
    /// Mono piano, latency removed.
    pub samples: Vec<f32>,
    pub sample_rate: f32,
    /// Notes as played (from the engine's note output, on the file's clock).
    pub notes: Vec<RenderedNote>,
    pub latency_samples: u32,
    pub elapsed_s: f64,
    pub device: String,
    pub device_note: Option<String>,
    /// Which pianist played.
    pub pianist: crate::generator::PianistKind,
}

/// Play MIDI events (sorted by time) on the pianist through the engine (offline: the same
/// analysis/worker/overlap-add path as a vocal render, with the listener resting), for
/// `seconds` of output. The controls' gain and the output gain apply; the mix does not (there
/// is no dry signal).
pub fn render_midi(
    events: &[TimedMidi],
    seconds: f64,
    sample_rate: f32,
    opts: &RenderOptions,
    model: Arc<Model>,
    progress: &mut dyn FnMut(f32),
) -> Result<MidiRenderResult, EngineError> {
    use crate::engine::MidiInEvent;
    let block = opts.block.clamp(1, 1 << 16);
    let pianist = model.pianist();
    let mut engine = Engine::new(EngineConfig { sample_rate, max_block: block, mode: ProcessMode::Offline, device: opts.device }, model)?;
    engine.set_midi_only(true);
    let latency = engine.latency_samples() as usize;
    let len = (seconds.max(0.0) * sample_rate as f64).round() as usize;
    let total = len + latency;
    let gain = 10f32.powf(opts.gain_db / 20.0);
    let silence = vec![0.0f32; block];
    let mut wet = vec![0.0f32; block];
    let mut out = Vec::with_capacity(total);
    let mut midi: Vec<MidiInEvent> = Vec::with_capacity(64);
    let mut next = 0usize;
    let mut played: Vec<(u64, NoteEvent)> = Vec::new();
    let start = Instant::now();
    let mut pos = 0usize;
    let mut last_report = 0usize;
    while pos < total {
        let n = block.min(total - pos);
        midi.clear();
        while next < events.len() {
            let at = (events[next].seconds.max(0.0) * sample_rate as f64).round() as usize;
            if at >= pos + n {
                break;
            }
            midi.push(MidiInEvent { timing: at.saturating_sub(pos) as u32, event: events[next].event });
            next += 1;
        }
        let base = pos as u64;
        engine.process_midi(&silence[..n], &mut wet[..n], &opts.controls, &midi, &mut |ev| played.push((base + ev.timing as u64, ev)));
        out.extend(wet[..n].iter().map(|x| x * gain));
        pos += n;
        if pos - last_report >= sample_rate as usize || pos == total {
            last_report = pos;
            progress(pos as f32 / total.max(1) as f32);
        }
    }
    let elapsed_s = start.elapsed().as_secs_f64();
    out.drain(..latency.min(out.len()));
    out.truncate(len);
    let notes = pair_notes(played, latency, len);
    Ok(MidiRenderResult {
        samples: out,
        sample_rate,
        notes,
        latency_samples: latency as u32,
        elapsed_s,
        device: engine.device_name().to_string(),
        device_note: engine.device_note().map(str::to_string),
        pianist,
    })
}
