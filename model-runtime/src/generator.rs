//! The generator the inference worker runs: listener → note tracker → pianist, frame by frame.

use candle_core::Device;
use realfft::num_complex::Complex32;

use crate::controls::Controls;
use crate::decoder::DecoderTuning;
use crate::listener::{ListenerFrame, ListenerV0};
use crate::listener_net::ListenerNet;
use crate::model::{DeviceChoice, Model};
use crate::pianist::PianistV0;
use crate::pianist_net::PianistNet;
use crate::timing::Timing;
use crate::tracker::{FramePosterior, NoteTracker, TrackEvent, Voicing};

/// Pick the Candle device for a choice; `Auto` and `Cuda` fall back to CPU (with the reason)
/// when this build or this machine has no CUDA.
pub fn select_device(choice: DeviceChoice) -> (Device, Option<String>) {
    match choice {
        DeviceChoice::Cpu => (Device::Cpu, None),
        DeviceChoice::Auto | DeviceChoice::Cuda => {
            if !crate::model::CUDA_COMPILED {
                let why = (choice == DeviceChoice::Cuda)
                    .then(|| "this build has no CUDA support (build with --features cuda); using CPU".to_string());
                return (Device::Cpu, why);
            }
            match Device::new_cuda(0) {
                Ok(d) => (d, None),
                Err(e) => {
                    // Candle appends a backtrace to some errors: keep the first line.
                    let msg = e.to_string();
                    let first = msg.lines().next().unwrap_or("unknown error").to_string();
                    (Device::Cpu, Some(format!("CUDA unavailable ({first}); using CPU")))
                }
            }
        }
    }
}

/// Candle asks `std::thread::available_parallelism()` on every CPU matrix product unless
/// `RAYON_NUM_THREADS` is set, and that reads cgroup files each time: measured 143 µs per hop
/// instead of 35 µs on this 2-core machine, 696 µs on a 16-core one. Setting the variable to
/// the value rayon would choose anyway (so nothing else in the process changes) removes it.
/// Called once, from `Engine::new`, before the worker starts; the CLI and the standalone call
/// it first thing in `main`.
pub fn pin_thread_count_env() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("RAYON_NUM_THREADS").is_none() {
            let n = std::thread::available_parallelism().map_or(1, |n| n.get());
            std::env::set_var("RAYON_NUM_THREADS", n.to_string());
        }
    });
}

/// Run `f` with Candle's CPU kernels on this thread alone.
///
/// Candle parallelises every CPU matrix product over all cores through rayon. For one frame's
/// small products that costs far more than it gains (measured on a 16-core machine: 696 µs per
/// hop on all cores against 38 µs on one, see BENCHMARKS.md), and a plugin must not fill every
/// core of the user's machine. A one-thread pool made of the calling thread keeps them inline.
pub fn single_threaded<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    match rayon::ThreadPoolBuilder::new().num_threads(1).use_current_thread().build() {
        Ok(pool) => pool.install(f),
        Err(_) => f(),
    }
}

/// Name of a device for displays: `cpu` or `cuda:N`.
pub fn device_name(d: &Device) -> String {
    match d.location() {
        candle_core::DeviceLocation::Cpu => "cpu".into(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

/// What one frame produced besides its spectrum.
#[derive(Debug, Clone, Copy, Default)]
pub struct FrameReport {
    /// Pitch heard in the decided frame, MIDI (NaN if unvoiced).
    pub pitch: f32,
    /// Note sounding after this frame.
    pub note: Option<u8>,
}

/// Which listener a generator runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    /// The hand-designed harmonic-summation listener.
    V0,
    /// The trained network (when the model file carries it).
    Trained,
}

/// A listener of either kind.
pub enum AnyListener {
    V0(ListenerV0),
    Net(Box<ListenerNet>),
}

impl AnyListener {
    pub fn new(kind: ListenerKind, model: &Model, timing: &Timing, device: &Device) -> candle_core::Result<Self> {
        Ok(match kind {
            ListenerKind::Trained if model.has_trained_listener() => AnyListener::Net(Box::new(ListenerNet::new(model, timing, device)?)),
            _ => AnyListener::V0(ListenerV0::new(model, timing, device)?),
        })
    }
    pub fn kind(&self) -> ListenerKind {
        match self {
            AnyListener::V0(_) => ListenerKind::V0,
            AnyListener::Net(_) => ListenerKind::Trained,
        }
    }
    pub fn reset(&mut self) {
        match self {
            AnyListener::V0(l) => l.reset(),
            AnyListener::Net(l) => l.reset(),
        }
    }
    pub fn device(&self) -> &Device {
        match self {
            AnyListener::V0(l) => l.device(),
            AnyListener::Net(l) => l.device(),
        }
    }
    /// One frame (`salience` is scratch for v0).
    pub fn step(&mut self, mags: &[f32], salience: &mut Vec<f32>) -> candle_core::Result<ListenerFrame> {
        match self {
            AnyListener::V0(l) => l.step(mags, salience),
            AnyListener::Net(l) => l.step(mags),
        }
    }
    /// A batch of consecutive frames `[T, bins]`, continuing the stream.
    pub fn forward(&mut self, mags: &[f32], frames: usize) -> candle_core::Result<Vec<ListenerFrame>> {
        match self {
            AnyListener::V0(l) => l.forward(mags, frames),
            AnyListener::Net(l) => l.forward(mags, frames),
        }
    }
    /// The tracker's voicing calibration for this listener.
    pub fn voicing(&self, model: &Model) -> Voicing {
        voicing_for(self.kind(), model)
    }
}

/// The tracker's voicing calibration for a listener of `kind` from `model` (`listener.voicing`
/// for v0; the trained listener's `listener.net.calib`: thresholds and level gate).
pub fn voicing_for(kind: ListenerKind, model: &Model) -> Voicing {
    let v = &model.tensor("listener.voicing").data;
    match (kind, model.get("listener.net.calib")) {
        (ListenerKind::Trained, Some(c)) => {
            let c = &c.data;
            let gate_db = if c[3] < 0.0 { c[3] } else { v[2] };
            // The decoder's thresholds fitted to this listener (`cargo xtask eval fit-decoder
            // --write`), live and placed; the defaults when the file has none. Validated when
            // the file was read.
            let (tuning, placed) = match model.get(crate::model::DECODER_TUNING) {
                Some(t) => (
                    DecoderTuning::from_row(&t.data[..DecoderTuning::ROW]).unwrap_or_default(),
                    DecoderTuning::from_row(&t.data[DecoderTuning::ROW..]).unwrap_or_else(|_| DecoderTuning::placement()),
                ),
                None => (DecoderTuning::default(), DecoderTuning::placement()),
            };
            Voicing { threshold: c[0], gate_db, gate_span_db: v[3], onset_threshold: Some(c[1]), tuning, placed }
        }
        _ => Voicing { threshold: v[0], gate_db: v[2], gate_span_db: v[3], onset_threshold: None, tuning: DecoderTuning::default(), placed: DecoderTuning::placement() },
    }
}

/// How many hops before its newest frame a listener of `kind` describes: the trained listener's
/// calibration says (its training's detection delay), v0's is the engine's.
pub fn detection_delay(kind: ListenerKind, model: &Model) -> usize {
    match (kind, model.get("listener.net.calib")) {
        (ListenerKind::Trained, Some(c)) => c.data[2] as usize,
        _ => crate::timing::DETECTION_HOPS,
    }
}

/// The tracker's view of one frame: what the listener heard plus the level of the newest hop
/// (`prev_energy` carries the previous hop's mean square between calls).
pub fn posterior(heard: &ListenerFrame, hop_samples: &[f32], prev_energy: &mut f32) -> FramePosterior {
    let energy: f32 = hop_samples.iter().map(|x| x * x).sum::<f32>() / hop_samples.len().max(1) as f32;
    let post = FramePosterior {
        pitch: heard.pitch_midi,
        confidence: heard.confidence,
        periodicity: heard.periodicity,
        flux: heard.flux,
        octave_below: heard.octave_below,
        hop_db: 10.0 * (energy + 1e-12).log10(),
        level_db: 10.0 * (0.5 * (energy + *prev_energy) + 1e-12).log10(),
    };
    *prev_energy = energy;
    post
}

/// Which pianist a generator plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PianistKind {
    /// The parametric piano.
    V0,
    /// The network trained on FluidR3's grand (when the model file carries it).
    Trained,
}

impl PianistKind {
    pub fn name(self) -> &'static str {
        match self {
            PianistKind::V0 => "v0",
            PianistKind::Trained => "trained",
        }
    }
}

/// A note event from MIDI input (a MIDI file, or a host's MIDI).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MidiIn {
    On { note: u8, velocity: f32 },
    Off { note: u8 },
    /// Sustain pedal (CC64 ≥ 64 is down).
    Sustain(bool),
}

/// A pianist of either kind.
pub enum AnyPianist {
    V0(Box<PianistV0>),
    Net(Box<PianistNet>),
}

impl AnyPianist {
    pub fn new(kind: PianistKind, model: &Model, timing: &Timing, device: &Device) -> candle_core::Result<Self> {
        Ok(match kind {
            PianistKind::Trained if model.has_trained_pianist() => {
                AnyPianist::Net(Box::new(PianistNet::new(model, timing.sample_rate, timing.hop, device)?))
            }
            _ => AnyPianist::V0(Box::new(PianistV0::new(model, timing.sample_rate, timing.hop))),
        })
    }
    pub fn kind(&self) -> PianistKind {
        match self {
            AnyPianist::V0(_) => PianistKind::V0,
            AnyPianist::Net(_) => PianistKind::Trained,
        }
    }
    pub fn reset(&mut self) {
        match self {
            AnyPianist::V0(p) => p.reset(),
            AnyPianist::Net(p) => p.reset(),
        }
    }
    pub fn event(&mut self, ev: TrackEvent, c: &Controls) {
        match self {
            AnyPianist::V0(p) => p.event(ev, c),
            AnyPianist::Net(p) => p.event(ev, c),
        }
    }
    pub fn sustain(&mut self, down: bool) {
        match self {
            AnyPianist::V0(p) => p.sustain(down),
            AnyPianist::Net(p) => p.sustain(down),
        }
    }
    pub fn active_voices(&self) -> usize {
        match self {
            AnyPianist::V0(p) => p.active_voices(),
            AnyPianist::Net(p) => p.active_voices(),
        }
    }
    /// The next frame's spectrum (`hop + 1` bins); one hop on.
    pub fn synthesize(&mut self, out: &mut [Complex32]) -> candle_core::Result<()> {
        match self {
            AnyPianist::V0(p) => {
                p.synthesize(out);
                Ok(())
            }
            AnyPianist::Net(p) => p.synthesize(out),
        }
    }
}

/// What hears the voice: a listener with the note tracker and the placer calibrated for it
/// (their voicing and detection delay follow the listener).
struct Ear {
    listener: AnyListener,
    tracker: NoteTracker,
    /// The live decoder and its placer, which play instead of `tracker` while the generator
    /// places notes with lookahead.
    placer: Box<crate::lookahead::Decoder>,
}

impl Ear {
    fn new(kind: ListenerKind, model: &Model, timing: &Timing, device: &Device) -> candle_core::Result<Ear> {
        let listener = AnyListener::new(kind, model, timing, device)?;
        let voicing = listener.voicing(model);
        let placer = Box::new(crate::lookahead::Decoder::new(timing, voicing, detection_delay(listener.kind(), model)));
        Ok(Ear { listener, tracker: NoteTracker::new(timing.hop_seconds(), timing.lookahead_hops, voicing), placer })
    }

    fn reset(&mut self) {
        self.listener.reset();
        self.tracker.reset();
        self.placer.reset();
    }
}

pub struct Generator {
    /// The listener that hears the voice now.
    ear: Ear,
    /// The other listener, when the generator can switch ([`Generator::switchable`]).
    other: Option<Ear>,
    pianist: AnyPianist,
    /// Scratch for the listener's saliences.
    salience: Vec<f32>,
    /// Mean square of the previous hop of input.
    prev_energy: f32,
    /// Play the notes placed with lookahead.
    placing: bool,
    /// The note the placed events leave sounding.
    placed_note: Option<u8>,
}

impl Generator {
    /// The generator with the model's chosen listener ([`Model::listener`]).
    pub fn new(model: &Model, timing: &Timing, device: &Device) -> candle_core::Result<Self> {
        Self::with_listener(model, timing, device, model.listener())
    }

    pub fn with_listener(model: &Model, timing: &Timing, device: &Device, kind: ListenerKind) -> candle_core::Result<Self> {
        Ok(Generator {
            ear: Ear::new(kind, model, timing, device)?,
            other: None,
            pianist: AnyPianist::new(model.pianist(), model, timing, device)?,
            salience: Vec::with_capacity(crate::v0::N_CANDIDATES),
            prev_energy: 0.0,
            placing: timing.placement_hops > 0,
            placed_note: None,
        })
    }

    /// [`Generator::new`], holding both listeners when the model carries the trained one, so
    /// that [`Generator::set_listener`] switches without allocating.
    pub fn switchable(model: &Model, timing: &Timing, device: &Device) -> candle_core::Result<Self> {
        let mut g = Self::new(model, timing, device)?;
        if model.has_trained_listener() {
            let other = if g.ear.listener.kind() == ListenerKind::Trained { ListenerKind::V0 } else { ListenerKind::Trained };
            g.other = Some(Ear::new(other, model, timing, device)?);
        }
        Ok(g)
    }

    /// The listener hearing the voice.
    pub fn listener(&self) -> ListenerKind {
        self.ear.listener.kind()
    }

    /// Hear the voice with a listener of `kind` if this generator holds one (no allocation);
    /// takes effect cleanly after [`Generator::reset`].
    pub fn set_listener(&mut self, kind: ListenerKind) {
        if self.ear.listener.kind() != kind {
            if let Some(other) = self.other.as_mut().filter(|o| o.listener.kind() == kind) {
                std::mem::swap(&mut self.ear, other);
            }
        }
    }

    /// Play notes placed with lookahead (`true`, [`crate::lookahead`]) or as they are decided.
    /// Takes effect cleanly after [`Generator::reset`]; no allocation.
    pub fn set_placing(&mut self, on: bool) {
        self.placing = on;
    }

    pub fn reset(&mut self) {
        self.ear.reset();
        if let Some(other) = &mut self.other {
            other.reset();
        }
        self.pianist.reset();
        self.prev_energy = 0.0;
        self.placed_note = None;
    }

    pub fn device(&self) -> &Device {
        self.ear.listener.device()
    }

    /// One hop: analysis magnitudes and the newest hop of input in, the piano spectrum of the
    /// decided frame out (`synth_bins`), tracker events to `emit`.
    pub fn step(
        &mut self,
        mags: &[f32],
        hop_samples: &[f32],
        controls: &Controls,
        spectrum: &mut [Complex32],
        emit: &mut dyn FnMut(TrackEvent),
    ) -> candle_core::Result<FrameReport> {
        let heard = self.ear.listener.step(mags, &mut self.salience)?;
        self.finish_frame(heard, hop_samples, controls, spectrum, emit)
    }

    /// The part of [`Generator::step`] after the listener (shared with batched offline runs).
    pub fn finish_frame(
        &mut self,
        heard: ListenerFrame,
        hop_samples: &[f32],
        controls: &Controls,
        spectrum: &mut [Complex32],
        emit: &mut dyn FnMut(TrackEvent),
    ) -> candle_core::Result<FrameReport> {
        let pianist = &mut self.pianist;
        if self.placing {
            let d = &mut self.ear.placer;
            // The decisions go to the placer; the placed events of the hop `placement_hops`
            // before the decided one play now.
            let sounding = &mut self.placed_note;
            d.push(&heard, hop_samples, controls, &mut |_, _| {}, &mut |_, ev| {
                pianist.event(ev, controls);
                match ev {
                    TrackEvent::On { note, .. } => *sounding = Some(note),
                    TrackEvent::Off { note } if *sounding == Some(note) => *sounding = None,
                    TrackEvent::Off { .. } => {}
                }
                emit(ev);
            });
            self.pianist.synthesize(spectrum)?;
            let pitch = d.decided_hop().checked_sub(d.delay()).and_then(|h| d.heard(h)).map_or(f32::NAN, |h| h.pitch);
            return Ok(FrameReport { pitch, note: self.placed_note });
        }
        let post = posterior(&heard, hop_samples, &mut self.prev_energy);
        self.ear.tracker.push(post, controls, &mut |ev| {
            pianist.event(ev, controls);
            emit(ev);
        });
        self.pianist.synthesize(spectrum)?;
        Ok(FrameReport { pitch: self.ear.tracker.last_pitch, note: self.ear.tracker.sounding() })
    }

    /// One hop driven by MIDI instead of the voice: `events` are applied (note events also go
    /// to `emit`, so MIDI out follows MIDI in), then the piano frame is synthesized.
    pub fn step_midi(
        &mut self,
        events: &[Option<MidiIn>],
        controls: &Controls,
        spectrum: &mut [Complex32],
        emit: &mut dyn FnMut(TrackEvent),
    ) -> candle_core::Result<FrameReport> {
        for ev in events.iter().flatten() {
            match *ev {
                MidiIn::On { note, velocity } => {
                    let ev = TrackEvent::On { note, velocity };
                    self.pianist.event(ev, controls);
                    emit(ev);
                }
                MidiIn::Off { note } => {
                    let ev = TrackEvent::Off { note };
                    self.pianist.event(ev, controls);
                    emit(ev);
                }
                MidiIn::Sustain(down) => self.pianist.sustain(down),
            }
        }
        self.pianist.synthesize(spectrum)?;
        Ok(FrameReport { pitch: f32::NAN, note: None })
    }

    pub fn pianist(&self) -> &AnyPianist {
        &self.pianist
    }

    pub fn listener_mut(&mut self) -> &mut AnyListener {
        &mut self.ear.listener
    }
}
