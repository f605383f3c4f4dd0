//! The engine: audio side (analysis, queues, synthesis, overlap-add) and the inference worker.
//!
//! The audio side works hop by hop whatever the host's block size, so the block size never
//! changes the result. Frames go to the worker through wait-free SPSC rings (`rtrb`) whose
//! storage is allocated in [`Engine::new`]; results come back the same way.
//!
//! - [`ProcessMode::Realtime`]: the audio thread never waits. The result for hop `k` is used
//!   `slack` samples after hop `k` was handed over (one host block plus a wake-up margin); if it
//!   has not arrived the previous piano frame's tail fades out over that hop, and `late_frames`
//!   goes up.
//! - [`ProcessMode::Offline`]: the audio thread waits for every frame, so a render is
//!   deterministic and equal to the command-line render.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use atomic_float::AtomicF32;
use realfft::num_complex::Complex32;
use realfft::{ComplexToReal, RealFftPlanner};

use crate::controls::Controls;
use crate::feed::PitchFeed;
use crate::generator::{device_name, select_device, Generator, ListenerKind, MidiIn};
use crate::model::{DeviceChoice, Model};
use crate::timing::Timing;
use crate::tracker::TrackEvent;

/// An input sample as the analysis takes it: bad input never reaches the listener (NaN/Inf →
/// 0, absurd levels clipped).
pub(crate) fn clean_input(x: f32) -> f32 {
    if x.is_finite() { x.clamp(-8.0, 8.0) } else { 0.0 }
}

/// Lowest sample rate the engine accepts, Hz.
pub const MIN_SAMPLE_RATE: f32 = 8000.0;
/// Highest sample rate the engine accepts, Hz.
pub const MAX_SAMPLE_RATE: f32 = 192000.0;
/// Frames the rings hold.
const QUEUE_FRAMES: usize = 64;
/// Tracker events one frame can carry back.
const MAX_EVENTS: usize = 6;
/// Note events waiting for their output position.
const PENDING_EVENTS: usize = 64;
/// MIDI input events one hop can carry to the worker.
const MIDI_PER_HOP: usize = 16;
/// MIDI input events waiting for their hop.
const MIDI_QUEUE: usize = 256;
/// Times the idle worker yields before it parks.
const YIELDS_BEFORE_PARK: u32 = 32;
/// Offline waiting gives up on a frame after this long (a dead worker must not hang a host).
const OFFLINE_WAIT_LIMIT: Duration = Duration::from_secs(10);
/// ... and on the worker's first frame after this long: a GPU loads its kernels then (12–20 s
/// measured on an H100 and an H200), and a render must not lose that frame.
const OFFLINE_FIRST_WAIT_LIMIT: Duration = Duration::from_secs(120);

/// Waiting policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessMode {
    Realtime,
    Offline,
}

/// When the engine plays the notes it hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NotePlacement {
    /// Each note from the hop the decoder decides it (the latency the plugin reports live).
    #[default]
    Live,
    /// Where each note began, found by listening [`crate::lookahead::placement_hops`] hops
    /// further ([`crate::lookahead`]); the latency grows by as much (181 ms at 48 kHz). For
    /// recorded vocals and renders, where the host (or the CLI) removes the latency.
    Lookahead,
}

impl NotePlacement {
    /// `live` (the timing with notes played as decided) with the notes placed this way.
    pub fn timing(self, live: Timing) -> Timing {
        match self {
            NotePlacement::Live => live,
            NotePlacement::Lookahead => live.placing_notes(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct EngineConfig {
    /// Samples per second, [`MIN_SAMPLE_RATE`]..=[`MAX_SAMPLE_RATE`].
    pub sample_rate: f32,
    /// Largest block the host will pass, samples (sets the real-time slack).
    pub max_block: usize,
    pub mode: ProcessMode,
    pub device: DeviceChoice,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("unsupported sample rate {0} Hz (supported: 8000 to 192000 Hz)")]
    UnsupportedSampleRate(f32),
    #[error("inference device: {0}")]
    Device(String),
    #[error("cannot start the inference thread: {0}")]
    Thread(String),
    #[error("invalid input: {0}")]
    Input(String),
}

/// Counters and readings shared with the GUI, the CLI and tests (all lock-free).
#[derive(Debug, Default)]
pub struct EngineStats {
    /// Frames handed to the worker.
    pub frames: AtomicU64,
    /// Frames the worker has finished.
    pub frames_done: AtomicU64,
    /// Real-time frames whose result was not back in time (faded instead).
    pub late_frames: AtomicU64,
    /// Frames not handed over because the worker's queue was full.
    pub dropped_frames: AtomicU64,
    /// Frames the worker failed to compute (silence instead).
    pub worker_errors: AtomicU64,
    /// Inference time of the last frame, ns.
    pub inference_ns_last: AtomicU64,
    /// Longest inference time seen, ns.
    pub inference_ns_max: AtomicU64,
    /// Sum of inference times, ns (divide by `frames` for the mean).
    pub inference_ns_total: AtomicU64,
    /// Sounding MIDI note, −1 for none.
    pub note: AtomicI32,
    /// Pitch heard in the last decided frame, MIDI; NaN when unvoiced.
    pub pitch: AtomicF32,
    /// Whether the worker thread is running.
    pub worker_alive: AtomicBool,
    /// The latency the engine has now, samples (it changes with the note placement).
    pub latency_samples: AtomicU32,
    /// Whether the trained listener hears the voice now (else v0).
    pub trained_listener: AtomicBool,
    /// Test hook (see [`Engine::set_worker_delay_us`]): extra µs the worker sleeps per frame.
    worker_delay_us: AtomicU32,
}

impl EngineStats {
    /// The test hook [`Engine::set_worker_delay_us`], reachable from another thread through
    /// [`Engine::stats`] while the engine waits inside `process` (offline). Not for products.
    #[doc(hidden)]
    pub fn set_worker_delay_us(&self, us: u32) {
        self.worker_delay_us.store(us, Ordering::Relaxed);
    }
}

/// A note event leaving the engine, aligned with the piano audio.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoteEvent {
    /// Sample offset inside the current block.
    pub timing: u32,
    /// MIDI note.
    pub note: u8,
    /// 0..1 (0 for note-off).
    pub velocity: f32,
    pub on: bool,
}

/// A MIDI input event at a sample offset inside the current block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MidiInEvent {
    pub timing: u32,
    pub event: MidiIn,
}

/// Audio → worker: one hop's frame header (its data follows in the data ring).
#[derive(Debug, Clone, Copy)]
struct Job {
    /// Hop index within the epoch.
    index: u64,
    /// Incremented by every reset; the worker resets its state when it changes.
    epoch: u32,
    controls: Controls,
    /// Play MIDI input instead of the voice.
    midi_only: bool,
    /// Play the notes placed with lookahead.
    placing: bool,
    /// The listener that hears the voice.
    listener: ListenerKind,
    /// MIDI input events for this hop.
    midi: [Option<MidiIn>; MIDI_PER_HOP],
}

/// Worker → audio: one piano frame's header (its spectrum follows in the data ring).
#[derive(Debug, Clone, Copy)]
struct Done {
    /// Hop index of the job this answers.
    index: u64,
    epoch: u32,
    /// Tracker events decided for this piano frame.
    events: [Option<TrackEvent>; MAX_EVENTS],
}

#[derive(Debug, Clone, Copy, Default)]
struct Pending {
    /// Absolute output sample (within the epoch).
    pos: u64,
    note: u8,
    velocity: f32,
    on: bool,
}

/// What the worker thread owns.
struct Worker {
    gen: Generator,
    timing: Timing,
    jobs: rtrb::Consumer<Job>,
    job_data: rtrb::Consumer<f32>,
    done: rtrb::Producer<Done>,
    done_data: rtrb::Producer<Complex32>,
    stats: Arc<EngineStats>,
    stop: Arc<AtomicBool>,
    /// Per-frame pitch and note for a display, pushed while the feed is enabled.
    feed: Option<Arc<PitchFeed>>,
}

impl Worker {
    fn run(mut self) {
        let t = self.timing;
        let mut mags = vec![0.0f32; t.analysis_bins];
        let mut hop = vec![0.0f32; t.hop];
        let mut spec = vec![Complex32::new(0.0, 0.0); t.synth_bins];
        let mut epoch = u32::MAX;
        let mut idle = 0u32;
        while !self.stop.load(Ordering::Acquire) {
            let Ok(job) = self.jobs.pop() else {
                // Yield a few times before sleeping: the next frame usually follows within one
                // hop, and yielding lets a waiting offline audio thread on the same core run
                // without two futex round trips per frame.
                idle += 1;
                if idle < YIELDS_BEFORE_PARK {
                    std::thread::yield_now();
                } else {
                    std::thread::park_timeout(Duration::from_millis(2));
                }
                continue;
            };
            idle = 0;
            // The data was pushed before the header, so it is there.
            if self.job_data.pop_entire_slice(&mut mags).is_err() || self.job_data.pop_entire_slice(&mut hop).is_err() {
                self.stats.worker_errors.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if job.epoch != epoch {
                self.gen.set_listener(job.listener);
                self.gen.set_placing(job.placing);
                self.gen.reset();
                epoch = job.epoch;
            }
            let start = Instant::now();
            // Test hook: an artificially slow worker (0, i.e. off, unless a test set it).
            let delay_us = self.stats.worker_delay_us.load(Ordering::Relaxed);
            if delay_us > 0 {
                std::thread::sleep(Duration::from_micros(delay_us as u64));
            }
            let mut events = [None; MAX_EVENTS];
            let mut n = 0;
            let mut emit = |ev| {
                if n < MAX_EVENTS {
                    events[n] = Some(ev);
                    n += 1;
                }
            };
            let result = if job.midi_only {
                self.gen.step_midi(&job.midi, &job.controls, &mut spec, &mut emit)
            } else {
                self.gen.step(&mags, &hop, &job.controls, &mut spec, &mut emit)
            };
            match result {
                Ok(report) => {
                    self.stats.note.store(report.note.map_or(-1, |n| n as i32), Ordering::Relaxed);
                    self.stats.pitch.store(report.pitch, Ordering::Relaxed);
                    if let Some(feed) = &self.feed {
                        feed.push(report.pitch, report.note);
                    }
                }
                Err(_) => {
                    spec.iter_mut().for_each(|z| *z = Complex32::new(0.0, 0.0));
                    self.stats.worker_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            let ns = start.elapsed().as_nanos() as u64;
            self.stats.inference_ns_last.store(ns, Ordering::Relaxed);
            self.stats.inference_ns_max.fetch_max(ns, Ordering::Relaxed);
            self.stats.inference_ns_total.fetch_add(ns, Ordering::Relaxed);
            if self.done.slots() >= 1 && self.done_data.slots() >= spec.len() {
                let _ = self.done_data.push_entire_slice(&spec);
                let _ = self.done.push(Done { index: job.index, epoch: job.epoch, events });
            }
            self.stats.frames_done.fetch_add(1, Ordering::Release);
        }
    }
}

pub struct Engine {
    timing: Timing,
    /// The timing with notes played as decided (`timing` adds the placement's hops to it).
    live_timing: Timing,
    /// The listener the worker is told to hear with.
    listener: ListenerKind,
    /// Whether the model carries the trained listener (else only v0 can hear).
    has_trained_listener: bool,
    mode: ProcessMode,
    /// Name of the device the generator runs on.
    device_name: String,
    /// Why the requested device was not used, if it was not.
    device_note: Option<String>,
    /// Newest `win_len` input samples, oldest first.
    history: Vec<f32>,
    /// Window + FFT + magnitudes of `history`, every hop.
    analyzer: crate::features::Analyzer,
    /// Input of the current hop, `hop`.
    in_hop: Vec<f32>,
    /// Samples of the current hop received so far.
    fill: usize,
    inv: Arc<dyn ComplexToReal<f32>>,
    inv_scratch: Vec<Complex32>,
    /// Piano spectrum from the worker, `synth_bins`.
    spec: Vec<Complex32>,
    /// Inverse transform of `spec`, `synth_len`.
    frame: Vec<f32>,
    /// Overlap-add accumulator, `synth_len`.
    ola: Vec<f32>,
    /// Output of the current hop, `hop`.
    out_hop: Vec<f32>,
    /// Read position in `out_hop`.
    out_fill: usize,
    /// Samples until the next output boundary (the first one comes `hop + slack` in).
    out_left: usize,
    /// Index of the next piano frame the output side takes.
    next_out: u64,
    /// Whether the last frame was handed to the worker (offline waits only for those).
    last_pushed: bool,
    jobs: rtrb::Producer<Job>,
    job_data: rtrb::Producer<f32>,
    done: rtrb::Consumer<Done>,
    done_data: rtrb::Consumer<Complex32>,
    /// Next hop index within the epoch.
    index: u64,
    epoch: u32,
    /// Output samples emitted in this epoch.
    out_pos: u64,
    /// Note events waiting for their output position (FIFO, time ordered).
    pending: [Pending; PENDING_EVENTS],
    pending_head: usize,
    pending_len: usize,
    /// Play MIDI input instead of the voice ([`Engine::set_midi_only`]).
    midi_only: bool,
    /// MIDI input waiting for its hop: (hop index, event), FIFO.
    midi_queue: [(u64, MidiIn); MIDI_QUEUE],
    midi_head: usize,
    midi_len: usize,
    stats: Arc<EngineStats>,
    stop: Arc<AtomicBool>,
    worker_thread: Thread,
    worker: Option<JoinHandle<()>>,
}

impl Engine {
    pub fn new(cfg: EngineConfig, model: Arc<Model>) -> Result<Engine, EngineError> {
        Engine::with_feed(cfg, model, None)
    }

    /// [`Engine::new`], with the worker pushing every decided frame's pitch and note into `feed`
    /// while it is enabled.
    pub fn with_feed(cfg: EngineConfig, model: Arc<Model>, feed: Option<Arc<PitchFeed>>) -> Result<Engine, EngineError> {
        Engine::placing(cfg, model, feed, NotePlacement::Live)
    }

    /// [`Engine::with_feed`], playing the notes it hears as `placement` says.
    pub fn placing(cfg: EngineConfig, model: Arc<Model>, feed: Option<Arc<PitchFeed>>, placement: NotePlacement) -> Result<Engine, EngineError> {
        let sr = cfg.sample_rate;
        if !sr.is_finite() || !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&sr) {
            return Err(EngineError::UnsupportedSampleRate(sr));
        }
        let live_timing = Timing::new(sr, cfg.max_block, cfg.mode);
        let timing = placement.timing(live_timing);
        crate::generator::pin_thread_count_env();
        let (device, device_note) = select_device(cfg.device);
        let gen = Generator::switchable(&model, &timing, &device).map_err(|e| EngineError::Device(e.to_string()))?;
        let listener = gen.listener();
        let has_trained_listener = model.has_trained_listener();
        let device_name = device_name(gen.device());

        let mut planner = RealFftPlanner::<f32>::new();
        let inv = planner.plan_fft_inverse(timing.synth_len);

        let (jobs, jobs_rx) = rtrb::RingBuffer::new(QUEUE_FRAMES);
        let (job_data, job_data_rx) = rtrb::RingBuffer::new(QUEUE_FRAMES * (timing.analysis_bins + timing.hop));
        let (done_tx, done) = rtrb::RingBuffer::new(QUEUE_FRAMES);
        let (done_data_tx, done_data) = rtrb::RingBuffer::new(QUEUE_FRAMES * timing.synth_bins);
        let stats = Arc::new(EngineStats {
            note: AtomicI32::new(-1),
            pitch: AtomicF32::new(f32::NAN),
            latency_samples: AtomicU32::new(timing.latency as u32),
            trained_listener: AtomicBool::new(listener == ListenerKind::Trained),
            ..Default::default()
        });
        let stop = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            gen,
            timing,
            jobs: jobs_rx,
            job_data: job_data_rx,
            done: done_tx,
            done_data: done_data_tx,
            stats: stats.clone(),
            stop: stop.clone(),
            feed,
        };
        if let Some(feed) = &worker.feed {
            feed.set_hop_seconds(timing.hop_seconds());
        }
        stats.worker_alive.store(true, Ordering::Release);
        let alive = stats.clone();
        // The worker runs as the only thread of its own one-thread rayon pool, so Candle's CPU
        // kernels stay inline on it (as `generator::single_threaded` does), but on a thread we
        // spawn and join ourselves: a `use_current_thread` pool leaks its registry (≈ 7 KiB)
        // every time, i.e. on every activation (found by `tests/tests/lifecycle.rs`).
        let mut spawned = None;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            // A panic ends the worker (audio then fades and offline gives up), never the host.
            .panic_handler(|_| {})
            .spawn_handler(|thread| {
                let h = std::thread::Builder::new().name("hummingface-inference".into()).spawn(move || thread.run())?;
                spawned = Some(h);
                Ok(())
            })
            .build()
            .map_err(|e| EngineError::Thread(e.to_string()))?;
        let handle = spawned.ok_or_else(|| EngineError::Thread("no inference thread".into()))?;
        /// Clears `worker_alive` however the worker ends.
        struct Alive(Arc<EngineStats>);
        impl Drop for Alive {
            fn drop(&mut self) {
                self.0.worker_alive.store(false, Ordering::Release);
            }
        }
        pool.spawn(move || {
            let _alive = Alive(alive);
            worker.run();
        });
        // The pool's thread exits once this job returns (rayon keeps a pool with a spawned job
        // alive); `Drop for Engine` stops the job and joins the thread.
        drop(pool);

        Ok(Engine {
            timing,
            live_timing,
            listener,
            has_trained_listener,
            mode: cfg.mode,
            device_name,
            device_note,
            history: vec![0.0; timing.win_len],
            analyzer: crate::features::Analyzer::new(&timing),
            in_hop: vec![0.0; timing.hop],
            fill: 0,
            inv_scratch: inv.make_scratch_vec(),
            spec: inv.make_input_vec(),
            frame: inv.make_output_vec(),
            inv,
            ola: vec![0.0; timing.synth_len],
            out_hop: vec![0.0; timing.hop],
            out_fill: 0,
            out_left: timing.hop + timing.slack,
            next_out: 0,
            last_pushed: false,
            jobs,
            job_data,
            done,
            done_data,
            index: 0,
            epoch: 0,
            out_pos: 0,
            pending: [Pending::default(); PENDING_EVENTS],
            pending_head: 0,
            pending_len: 0,
            midi_only: false,
            midi_queue: [(0, MidiIn::Sustain(false)); MIDI_QUEUE],
            midi_head: 0,
            midi_len: 0,
            worker_thread: handle.thread().clone(),
            worker: Some(handle),
            stats,
            stop,
        })
    }

    pub fn latency_samples(&self) -> u32 {
        self.timing.latency as u32
    }

    /// The latency with notes placed as `placement` says, samples.
    pub fn latency_with(&self, placement: NotePlacement) -> u32 {
        placement.timing(self.live_timing).latency as u32
    }

    /// The listener hearing the voice (v0 whatever was asked when the model has no trained one).
    pub fn listener(&self) -> ListenerKind {
        self.listener
    }

    /// Hear the voice with a listener of `kind` from now on (audio-thread safe, no allocation):
    /// a change resets the engine (as [`Engine::reset`]); the latency stays. A model without the
    /// trained listener keeps v0.
    pub fn set_listener(&mut self, kind: ListenerKind) {
        let kind = if self.has_trained_listener { kind } else { ListenerKind::V0 };
        if kind == self.listener {
            return;
        }
        self.listener = kind;
        self.stats.trained_listener.store(kind == ListenerKind::Trained, Ordering::Relaxed);
        self.reset();
    }

    /// How the notes are placed now.
    pub fn placement(&self) -> NotePlacement {
        if self.timing.placement_hops > 0 { NotePlacement::Lookahead } else { NotePlacement::Live }
    }

    /// Place the notes as `placement` says from now on (audio-thread safe, no allocation). A
    /// change resets the engine (as [`Engine::reset`]) and changes its latency: the caller
    /// reports the new [`Engine::latency_samples`] to the host.
    pub fn set_placement(&mut self, placement: NotePlacement) {
        if placement == self.placement() {
            return;
        }
        self.timing = placement.timing(self.live_timing);
        self.stats.latency_samples.store(self.timing.latency as u32, Ordering::Relaxed);
        self.reset();
    }

    pub fn timing(&self) -> &Timing {
        &self.timing
    }

    pub fn sample_rate(&self) -> f32 {
        self.timing.sample_rate
    }

    pub fn mode(&self) -> ProcessMode {
        self.mode
    }

    pub fn device_name(&self) -> &str {
        &self.device_name
    }

    /// Why the requested device was not used (e.g. no CUDA), if it was not.
    pub fn device_note(&self) -> Option<&str> {
        self.device_note.as_deref()
    }

    pub fn stats(&self) -> Arc<EngineStats> {
        self.stats.clone()
    }

    /// Test hook, not for products: make the inference worker sleep `us` microseconds on every
    /// frame from now on (counted as inference time), to starve the real-time path on purpose
    /// (`tests/tests/starvation.rs`). 0, the default, turns it off. Safe from any thread.
    #[doc(hidden)]
    pub fn set_worker_delay_us(&self, us: u32) {
        self.stats.set_worker_delay_us(us);
    }

    /// Clear all state (audio thread safe). The worker resets when it sees the new epoch.
    pub fn reset(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
        self.index = 0;
        self.fill = 0;
        self.out_pos = 0;
        self.history.iter_mut().for_each(|x| *x = 0.0);
        self.ola.iter_mut().for_each(|x| *x = 0.0);
        self.out_hop.iter_mut().for_each(|x| *x = 0.0);
        self.out_fill = 0;
        self.out_left = self.timing.hop + self.timing.slack;
        self.next_out = 0;
        self.last_pushed = false;
        self.pending_len = 0;
        self.pending_head = 0;
        self.midi_len = 0;
        self.midi_head = 0;
    }

    /// Play MIDI input ([`Engine::process_midi`]) instead of the voice: the listener and the
    /// note tracker rest, the pianist plays the MIDI events, and the output keeps the same
    /// latency, whatever the note placement (a note played at input sample `p` sounds at output
    /// `p + latency`, within half a hop).
    pub fn set_midi_only(&mut self, on: bool) {
        self.midi_only = on;
    }

    /// [`Engine::process`] with MIDI input events (sorted by `timing`, offsets in this block).
    /// Never allocates or locks; events beyond the queue's capacity are dropped.
    pub fn process_midi(&mut self, input: &[f32], wet: &mut [f32], controls: &Controls, midi: &[MidiInEvent], on_note: &mut dyn FnMut(NoteEvent)) {
        let hop = self.timing.hop as u64;
        let here = self.index * hop + self.fill as u64;
        for ev in midi {
            if self.midi_len == MIDI_QUEUE {
                break;
            }
            // The hop whose piano frame's attack lands on the event once the latency is added.
            let target = (here + ev.timing as u64) / hop + (self.timing.detection_hops + self.timing.placement_hops) as u64;
            let slot = (self.midi_head + self.midi_len) % MIDI_QUEUE;
            self.midi_queue[slot] = (target, ev.event);
            self.midi_len += 1;
        }
        self.process(input, wet, controls, on_note);
    }

    /// Process one block (see the module docs). Never allocates or locks.
    pub fn process(&mut self, input: &[f32], wet: &mut [f32], controls: &Controls, on_note: &mut dyn FnMut(NoteEvent)) {
        let n = input.len().min(wet.len());
        let hop = self.timing.hop;
        let controls = controls.sanitized();
        let block_start = self.out_pos;
        let mut done = 0;
        while done < n {
            // Up to the next input boundary (a frame to analyse) or output boundary (a piano
            // frame due), whichever comes first.
            let take = (n - done).min(hop - self.fill).min(self.out_left);
            for i in 0..take {
                self.in_hop[self.fill + i] = clean_input(input[done + i]);
                let y = self.out_hop[(self.out_fill + i) % hop];
                wet[done + i] = if y.is_finite() { y } else { 0.0 };
            }
            self.fill += take;
            self.out_fill = (self.out_fill + take) % hop;
            self.out_left -= take;
            done += take;
            self.out_pos += take as u64;
            if self.fill == hop {
                self.fill = 0;
                self.input_boundary(&controls);
            }
            if self.out_left == 0 {
                self.out_left = hop;
                self.out_fill = 0;
                self.output_boundary();
            }
        }
        // Events due inside this block.
        let block_end = block_start + n as u64;
        while self.pending_len > 0 {
            let p = self.pending[self.pending_head];
            if p.pos >= block_end {
                break;
            }
            self.pending_head = (self.pending_head + 1) % PENDING_EVENTS;
            self.pending_len -= 1;
            let timing = p.pos.saturating_sub(block_start) as u32;
            on_note(NoteEvent { timing, note: p.note, velocity: p.velocity, on: p.on });
        }
    }

    /// A hop of input is complete: analyse it and hand the frame to the worker.
    fn input_boundary(&mut self, controls: &Controls) {
        let t = self.timing;
        self.history.copy_within(t.hop.., 0);
        self.history[t.win_len - t.hop..].copy_from_slice(&self.in_hop);
        let mags = self.analyzer.analyse(&self.history);

        let index = self.index;
        self.index += 1;
        let need = t.analysis_bins + t.hop;
        self.last_pushed = self.jobs.slots() >= 1 && self.job_data.slots() >= need;
        if self.last_pushed {
            let _ = self.job_data.push_entire_slice(mags);
            let _ = self.job_data.push_entire_slice(&self.in_hop);
            let mut midi = [None; MIDI_PER_HOP];
            let mut m = 0;
            while self.midi_len > 0 && m < MIDI_PER_HOP && self.midi_queue[self.midi_head].0 <= index {
                midi[m] = Some(self.midi_queue[self.midi_head].1);
                m += 1;
                self.midi_head = (self.midi_head + 1) % MIDI_QUEUE;
                self.midi_len -= 1;
            }
            let placing = self.timing.placement_hops > 0;
            let _ = self.jobs.push(Job { index, epoch: self.epoch, controls: *controls, midi_only: self.midi_only, placing, listener: self.listener, midi });
            self.stats.frames.fetch_add(1, Ordering::Relaxed);
            self.worker_thread.unpark();
        } else {
            self.stats.dropped_frames.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A piano frame is due: take it (offline: wait for it), inverse-transform, overlap-add,
    /// and refill the output hop.
    fn output_boundary(&mut self) {
        let t = self.timing;
        let want = self.next_out;
        self.next_out += 1;
        let got = match self.mode {
            // Offline the slack is 0, so this boundary follows frame `want`'s input boundary.
            ProcessMode::Offline => self.last_pushed && self.wait_for(want),
            ProcessMode::Realtime => self.take_if_ready(want),
        };
        if !got {
            self.stats.late_frames.fetch_add(1, Ordering::Relaxed);
        }
        if got && self.inv.process_with_scratch(&mut self.spec, &mut self.frame, &mut self.inv_scratch).is_ok() {
            let scale = 1.0 / t.synth_len as f32;
            for (acc, x) in self.ola.iter_mut().zip(&self.frame) {
                *acc += x * scale;
            }
        }
        // (A missing frame leaves only the previous frame's falling half: a one-hop fade.)
        self.out_hop.copy_from_slice(&self.ola[..t.hop]);
        self.ola.copy_within(t.hop.., 0);
        self.ola[t.hop..].iter_mut().for_each(|x| *x = 0.0);
    }

    /// Drop results older than `want` (or from an old epoch); take `want` if it is first.
    fn take_if_ready(&mut self, want: u64) -> bool {
        let bins = self.timing.synth_bins;
        loop {
            let Ok(head) = self.done.peek() else { return false };
            let head = *head;
            if head.epoch == self.epoch && head.index > want {
                return false;
            }
            let _ = self.done.pop();
            if self.done_data.pop_entire_slice(&mut self.spec[..bins]).is_err() {
                return false;
            }
            if head.epoch == self.epoch && head.index == want {
                self.schedule(&head);
                return true;
            }
        }
    }

    /// Offline: wait for result `want` (by design); gives up if the worker died.
    fn wait_for(&mut self, want: u64) -> bool {
        let start = Instant::now();
        let limit = if self.stats.frames_done.load(Ordering::Relaxed) == 0 { OFFLINE_FIRST_WAIT_LIMIT } else { OFFLINE_WAIT_LIMIT };
        let mut spins = 0u32;
        loop {
            if self.take_if_ready(want) {
                return true;
            }
            // Stop waiting only if the result cannot come any more.
            if let Ok(head) = self.done.peek() {
                if head.epoch == self.epoch && head.index > want {
                    return false;
                }
            }
            if !self.stats.worker_alive.load(Ordering::Acquire) {
                return false;
            }
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
                if spins.is_multiple_of(1024) && start.elapsed() > limit {
                    return false;
                }
            }
        }
    }

    /// Queue this piano frame's note events at the output position of its attack.
    fn schedule(&mut self, done: &Done) {
        // The frame's first hop leaves the output from `out_pos` on; its attack is half way up
        // half a hop later.
        let pos = self.out_pos + (self.timing.hop / 2) as u64;
        for ev in done.events.iter().flatten() {
            if self.pending_len == PENDING_EVENTS {
                break;
            }
            let (note, velocity, on) = match *ev {
                TrackEvent::On { note, velocity } => (note, velocity, true),
                TrackEvent::Off { note } => (note, 0.0, false),
            };
            let slot = (self.pending_head + self.pending_len) % PENDING_EVENTS;
            self.pending[slot] = Pending { pos, note, velocity, on };
            self.pending_len += 1;
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.worker_thread.unpark();
        if let Some(h) = self.worker.take() {
            let _ = h.join();
        }
    }
}
