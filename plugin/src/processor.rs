//! The audio-thread side of the plugin as a plain struct, so tests and other hosts can drive it
//! without a plugin host: mono sum → engine → dry/wet mixer, in chunks of at most the size the
//! buffers were allocated for.

use std::sync::Arc;

use hummingface_runtime::generator::ListenerKind;
use hummingface_runtime::{
    Controls, Engine, EngineConfig, EngineError, Mixer, Model, NoteEvent, NotePlacement, PitchFeed,
};

/// Most channels one call to [`Processor::process`] handles; further channels are left as they
/// are (undelayed dry). The plugin's layouts are mono and stereo. This bounds the stack array that holds
/// one chunk's channel slices, so chunking needs no allocation.
pub const MAX_CHANNELS: usize = 8;

/// Block size used when a host reports a maximum block size of zero, in samples.
pub const FALLBACK_MAX_BLOCK: usize = 1024;

/// Engine, mixer and the buffers between them; everything allocated in [`Processor::new`].
pub struct Processor {
    /// Analysis, inference worker and synthesis; the source of the latency.
    engine: Engine,
    /// Dry/wet mix; delays the dry signal by exactly the engine latency.
    mixer: Mixer,
    /// Mono sum of the input for one chunk, indexed by sample. Its length is the chunk size.
    mono: Vec<f32>,
    /// Piano output of the engine for one chunk, indexed by sample; same length as `mono`.
    wet: Vec<f32>,
    /// Number of channels the mixer was built for (at most [`MAX_CHANNELS`]).
    channels: usize,
    /// Sample rate in Hz (the mixer's parameter smoothing needs it).
    sample_rate: f32,
    /// Bypassed: the mixer crossfades to the delayed dry signal and no note leaves.
    bypass: bool,
    /// MIDI notes whose note-on left through `process_with_notes` and whose note-off has not.
    sounding: [bool; 128],
}

impl Processor {
    /// Build the engine for `cfg` and a mixer for `channels` output channels (clamped to
    /// 1..=[`MAX_CHANNELS`]). Allocates every buffer `process` will use. Blocks larger than
    /// `cfg.max_block` are processed in several chunks.
    pub fn new(
        cfg: EngineConfig,
        channels: usize,
        model: Arc<Model>,
    ) -> Result<Processor, EngineError> {
        Processor::with_feed(cfg, channels, model, None)
    }

    /// [`Processor::new`], with the engine's worker pushing every decided frame into `feed` while
    /// the feed is enabled (the editor's piano roll).
    pub fn with_feed(
        cfg: EngineConfig,
        channels: usize,
        model: Arc<Model>,
        feed: Option<Arc<PitchFeed>>,
    ) -> Result<Processor, EngineError> {
        Processor::placing(cfg, channels, model, feed, NotePlacement::Live)
    }

    /// [`Processor::with_feed`], the engine playing its notes as `placement` says (the latency
    /// follows it).
    pub fn placing(
        mut cfg: EngineConfig,
        channels: usize,
        model: Arc<Model>,
        feed: Option<Arc<PitchFeed>>,
        placement: NotePlacement,
    ) -> Result<Processor, EngineError> {
        if cfg.max_block == 0 {
            cfg.max_block = FALLBACK_MAX_BLOCK;
        }
        let channels = channels.clamp(1, MAX_CHANNELS);
        let (max_block, sample_rate) = (cfg.max_block, cfg.sample_rate);
        let engine = Engine::placing(cfg, model, feed, placement)?;
        // Room for the larger latency, so that the note timing can change without allocating.
        let mixer = Mixer::with_capacity(
            channels,
            engine.latency_samples() as usize,
            engine.latency_with(NotePlacement::Lookahead) as usize,
        );
        Ok(Processor {
            engine,
            mixer,
            mono: vec![0.0; max_block],
            wet: vec![0.0; max_block],
            channels,
            sample_rate,
            bypass: false,
            sounding: [false; 128],
        })
    }

    /// Latency of the output relative to the input, in samples (what the host must compensate).
    pub fn latency_samples(&self) -> u32 {
        self.engine.latency_samples()
    }

    /// Largest chunk handed to the engine in one call, in samples.
    pub fn max_block(&self) -> usize {
        self.mono.len()
    }

    /// Number of output channels the mixer was built for.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Sample rate in Hz.
    pub fn sample_rate(&self) -> f32 {
        self.sample_rate
    }

    /// The engine, for its device name and statistics.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// How long the output keeps sounding after the input stops, in samples: the latency plus
    /// the damper release. Used as the plugin's tail.
    pub fn tail_samples(&self, release_ms: f32) -> u32 {
        let release = (release_ms.max(0.0) * 0.001 * self.sample_rate) as u32;
        self.latency_samples().saturating_add(release)
    }

    /// The listener hearing the voice.
    pub fn listener(&self) -> ListenerKind {
        self.engine.listener()
    }

    /// Hear the voice with a listener of `kind` from now on (v0 if the model has no trained
    /// one): a change resets the engine and the mixer; the latency stays. Audio-thread safe, no
    /// allocation.
    pub fn set_listener(&mut self, kind: ListenerKind) {
        let before = self.engine.listener();
        self.engine.set_listener(kind);
        if self.engine.listener() != before {
            self.mixer.reset();
        }
    }

    /// How the engine places its notes now.
    pub fn placement(&self) -> NotePlacement {
        self.engine.placement()
    }

    /// Place the notes as `placement` says from now on: a change resets the engine and the
    /// mixer, and changes [`Processor::latency_samples`] (report it to the host). Audio-thread
    /// safe, no allocation.
    pub fn set_placement(&mut self, placement: NotePlacement) {
        if placement != self.engine.placement() {
            self.engine.set_placement(placement);
            self.mixer.set_delay(self.engine.latency_samples() as usize);
        }
    }

    /// Clear all signal state (engine queues and history, mixer delay line). Audio-thread safe.
    pub fn reset(&mut self) {
        self.engine.reset();
        self.mixer.reset();
        self.sounding = [false; 128];
    }

    /// Bypass (the host's bypass button, the `bypass` parameter) from the next sample on: the
    /// output crossfades in [`hummingface_runtime::mixer::BYPASS_FADE_S`] to the input delayed
    /// by the latency (bit for bit once the fade is over; the latency stays, so the host's
    /// compensation holds), every note sounding on the MIDI output ends on that sample and no
    /// note starts while bypassed. The engine keeps listening, so the piano comes back where
    /// the singer is. Audio-thread safe, no allocation.
    pub fn set_bypass(&mut self, bypass: bool) {
        self.bypass = bypass;
        self.mixer.set_bypass(bypass);
    }

    /// Whether the output is the delayed input alone (bypassed and the crossfade over).
    pub fn fully_bypassed(&self) -> bool {
        self.mixer.fully_bypassed()
    }

    /// Process one host block in place: `channels` hold the dry input on entry and the mix on
    /// return. `mix` is 0..1 (0 = dry), `gain_db` the output gain; the mixer smooths both.
    /// Never allocates, locks or panics; in offline mode the engine waits for its worker.
    pub fn process(
        &mut self,
        channels: &mut [&mut [f32]],
        controls: &Controls,
        mix: f32,
        gain_db: f32,
    ) {
        self.process_with_notes(channels, controls, mix, gain_db, &mut |_| {});
    }

    /// [`Processor::process`], also reporting the note events. An event's `timing` is its sample
    /// offset inside this whole block (not the chunk), aligned with the piano audio.
    pub fn process_with_notes(
        &mut self,
        channels: &mut [&mut [f32]],
        controls: &Controls,
        mix: f32,
        gain_db: f32,
        on_note: &mut dyn FnMut(NoteEvent),
    ) {
        // The mixer passes channels beyond those it was built for as wet only; the layouts are
        // mono and stereo, so this only matters for direct callers.
        let n = channels.len().min(MAX_CHANNELS);
        if n == 0 {
            return;
        }
        // All channels have the same length in a host buffer; use the shortest so that slicing
        // below can never go out of bounds.
        let total = channels[..n].iter().map(|c| c.len()).min().unwrap_or(0);
        let chunk_max = self.mono.len();
        let bypass = self.bypass;
        if bypass {
            for (note, on) in self.sounding.iter_mut().enumerate() {
                if std::mem::take(on) {
                    on_note(NoteEvent { timing: 0, note: note as u8, velocity: 0.0, on: false });
                }
            }
        }
        let sounding = &mut self.sounding;
        let inv_n = 1.0 / n as f32;

        let mut start = 0;
        while start < total {
            let end = (start + chunk_max).min(total);
            let len = end - start;

            let mono = &mut self.mono[..len];
            mono.fill(0.0);
            for ch in channels[..n].iter() {
                for (m, &x) in mono.iter_mut().zip(&ch[start..end]) {
                    *m += x;
                }
            }
            for m in mono.iter_mut() {
                *m *= inv_n;
            }

            let wet = &mut self.wet[..len];
            let offset = start as u32;
            self.engine
                .process(mono, wet, controls, &mut |mut ev: NoteEvent| {
                    let slot = &mut sounding[usize::from(ev.note.min(127))];
                    // Bypassed, no note starts (and none is sounding to end).
                    if bypass || (!ev.on && !*slot) {
                        return;
                    }
                    *slot = ev.on;
                    ev.timing = ev.timing.saturating_add(offset);
                    on_note(ev);
                });

            let mut chunk: [&mut [f32]; MAX_CHANNELS] = Default::default();
            for (dst, ch) in chunk.iter_mut().zip(channels.iter_mut()).take(n) {
                *dst = &mut ch[start..end];
            }
            self.mixer
                .process(&mut chunk[..n], wet, mix, gain_db, self.sample_rate);

            start = end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hummingface_runtime::singer::demo_phrase;
    use hummingface_runtime::{DeviceChoice, ProcessMode, Singer};

    const SR: f32 = 44100.0;

    /// Three seconds of the demo phrase: left as sung, right at half level.
    fn stereo_vocal() -> Vec<Vec<f32>> {
        let (notes, total_s) = demo_phrase();
        let left = Singer::default().render(&notes, SR, total_s.min(3.0));
        let right = left.iter().map(|x| x * 0.5).collect();
        vec![left, right]
    }

    fn processor(max_block: usize) -> Processor {
        let cfg = EngineConfig {
            sample_rate: SR,
            max_block,
            mode: ProcessMode::Offline,
            device: DeviceChoice::Cpu,
        };
        let mut p = Processor::new(cfg, 2, Model::embedded()).expect("engine starts on the CPU");
        p.reset();
        p
    }

    /// A note event: (absolute sample, note, on).
    type NoteAt = (usize, u8, bool);

    /// Run `input` through a processor in host blocks of `host_block`; returns the output and
    /// the note events.
    fn run(
        max_block: usize,
        host_block: usize,
        input: &[Vec<f32>],
        mix: f32,
    ) -> (Vec<Vec<f32>>, Vec<NoteAt>) {
        let mut p = processor(max_block);
        let mut out = input.to_vec();
        let mut events = Vec::new();
        let len = out[0].len();
        let mut start = 0;
        while start < len {
            let end = (start + host_block).min(len);
            let (l, r) = out.split_at_mut(1);
            let mut chans: [&mut [f32]; 2] = [&mut l[0][start..end], &mut r[0][start..end]];
            p.process_with_notes(&mut chans, &Controls::default(), mix, 0.0, &mut |ev| {
                assert!((ev.timing as usize) < end - start);
                events.push((start + ev.timing as usize, ev.note, ev.on));
            });
            start = end;
        }
        (out, events)
    }

    #[test]
    fn host_blocks_larger_than_max_block_are_chunked_transparently() {
        let input = stereo_vocal();
        let (reference, ref_events) = run(256, 256, &input, 1.0);
        assert!(
            ref_events.iter().any(|e| e.2),
            "the demo phrase produces notes"
        );
        for host_block in [37, 1000, 4096] {
            let (out, events) = run(256, host_block, &input, 1.0);
            assert_eq!(events, ref_events, "host block {host_block}");
            for (a, b) in out.iter().flatten().zip(reference.iter().flatten()) {
                assert!((a - b).abs() <= 1e-6, "host block {host_block}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn dry_signal_is_delayed_by_the_latency_per_channel() {
        let input = stereo_vocal();
        let latency = processor(512).latency_samples() as usize;
        let (out, _) = run(512, 1000, &input, 0.0);
        for (ch_in, ch_out) in input.iter().zip(&out) {
            assert!(ch_out[..latency].iter().all(|&x| x == 0.0));
            for (x, y) in ch_in.iter().zip(&ch_out[latency..]) {
                assert!((x - y).abs() <= 1e-6);
            }
        }
    }

    /// Allocation counting for the calling thread only (the audio thread; the inference worker
    /// may allocate). Release builds only: in debug builds nice-plug's `assert_process_allocs`
    /// feature already installs its own global allocator, and there can be only one.
    #[cfg(not(debug_assertions))]
    mod alloc_count {
        use std::alloc::{GlobalAlloc, Layout, System};
        use std::cell::Cell;
        use std::sync::atomic::{AtomicUsize, Ordering};

        /// `System`, counting calls made while this thread is armed.
        struct Counting;

        thread_local! {
            /// Whether allocations on this thread are counted.
            static ARMED: Cell<bool> = const { Cell::new(false) };
        }
        /// Allocator calls made on armed threads.
        static COUNT: AtomicUsize = AtomicUsize::new(0);

        fn note() {
            if ARMED.try_with(Cell::get).unwrap_or(false) {
                COUNT.fetch_add(1, Ordering::Relaxed);
            }
        }

        unsafe impl GlobalAlloc for Counting {
            unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
                note();
                unsafe { System.alloc(layout) }
            }
            unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
                note();
                unsafe { System.alloc_zeroed(layout) }
            }
            unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
                note();
                unsafe { System.dealloc(ptr, layout) }
            }
            unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
                note();
                unsafe { System.realloc(ptr, layout, new_size) }
            }
        }

        #[global_allocator]
        static ALLOCATOR: Counting = Counting;

        /// Run `f`, returning how many allocator calls it made on this thread.
        pub fn count(f: impl FnOnce()) -> usize {
            let before = COUNT.load(Ordering::SeqCst);
            ARMED.with(|a| a.set(true));
            f();
            ARMED.with(|a| a.set(false));
            COUNT.load(Ordering::SeqCst) - before
        }
    }

    #[cfg(not(debug_assertions))]
    #[test]
    fn process_does_not_allocate() {
        use crate::params::{controls_from_params, HummingFaceParams};
        // The counter works: a Vec allocates.
        assert!(alloc_count::count(|| drop(std::hint::black_box(Vec::<u8>::with_capacity(8)))) > 0);
        let params = HummingFaceParams::default();
        let input = stereo_vocal();
        for mode in [ProcessMode::Realtime, ProcessMode::Offline] {
            let cfg = EngineConfig {
                sample_rate: SR,
                max_block: 256,
                mode,
                device: DeviceChoice::Cpu,
            };
            let mut p =
                Processor::new(cfg, 2, Model::embedded()).expect("engine starts on the CPU");
            let mut out = input.clone();
            let (l, r) = out.split_at_mut(1);
            // Host blocks of 1000 against a 256-sample maximum: the chunking path too.
            let allocs = alloc_count::count(|| {
                p.reset();
                for (a, b) in l[0].chunks_mut(1000).zip(r[0].chunks_mut(1000)) {
                    let controls = controls_from_params(&params);
                    p.process_with_notes(&mut [a, b], &controls, 0.8, -3.0, &mut |ev| {
                        std::hint::black_box(ev);
                    });
                }
            });
            assert_eq!(allocs, 0, "{mode:?}: process() allocated");
        }
    }

    #[cfg(not(debug_assertions))]
    #[test]
    fn note_timing_and_listener_switch_between_blocks_without_allocating() {
        // Live for the first second, then a host reset: from there on the output (and its notes)
        // is a fresh processor's on the rest of the input (the trained pianist's control clock
        // was not reset before: 2.4e-4 off). Then Lookahead: from the switch on, a fresh
        // Lookahead processor's, at the larger latency; then the network listener, and back to
        // Live and to v0 likewise. Neither the reset nor a switch allocates.
        let input = stereo_vocal();
        let switch = 44100;
        let rest: Vec<Vec<f32>> = input.iter().map(|c| c[switch..].to_vec()).collect();
        let mut p = processor(512);
        let live_latency = p.latency_samples();
        let run_part = |p: &mut Processor, part: &mut [Vec<f32>]| {
            let mut events = Vec::new();
            let mut start = 0;
            let len = part[0].len();
            while start < len {
                let end = (start + 512).min(len);
                let (l, r) = part.split_at_mut(1);
                let mut chans: [&mut [f32]; 2] = [&mut l[0][start..end], &mut r[0][start..end]];
                p.process_with_notes(&mut chans, &Controls::default(), 0.7, 0.0, &mut |ev| events.push((start + ev.timing as usize, ev.note, ev.on)));
                start = end;
            }
            events
        };
        let mut head: Vec<Vec<f32>> = input.iter().map(|c| c[..switch].to_vec()).collect();
        run_part(&mut p, &mut head);
        use ListenerKind::{Trained, V0};
        let steps = [
            (NotePlacement::Live, V0, true),
            (NotePlacement::Lookahead, V0, false),
            (NotePlacement::Lookahead, Trained, false),
            (NotePlacement::Live, Trained, false),
            (NotePlacement::Live, V0, false),
        ];
        for (placement, listener, host_reset) in steps {
            let allocs = alloc_count::count(|| {
                p.set_placement(placement);
                p.set_listener(listener);
                if host_reset {
                    p.reset();
                }
            });
            assert_eq!(allocs, 0, "switching to {placement:?}, {listener:?} allocated");
            assert_eq!((p.placement(), p.listener()), (placement, listener));
            let mut switched = rest.clone();
            let events = run_part(&mut p, &mut switched);
            let cfg = EngineConfig { sample_rate: SR, max_block: 512, mode: ProcessMode::Offline, device: DeviceChoice::Cpu };
            let mut fresh = Processor::placing(cfg, 2, Model::embedded().listening_with(listener), None, placement).unwrap();
            assert_eq!(fresh.latency_samples(), p.latency_samples());
            let mut reference = rest.clone();
            let ref_events = run_part(&mut fresh, &mut reference);
            assert!(ref_events.iter().any(|e| e.2), "{placement:?}, {listener:?}: no notes");
            assert_eq!(events, ref_events, "{placement:?}, {listener:?}");
            let diff = switched.iter().flatten().zip(reference.iter().flatten()).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            let first = switched[0].iter().zip(&reference[0]).position(|(a, b)| a != b);
            assert!(diff <= 1e-6, "{placement:?}, {listener:?}: the output differs from a fresh processor's by {diff:e}, first at {first:?}");
        }
        let cfg = EngineConfig { sample_rate: SR, max_block: 512, mode: ProcessMode::Offline, device: DeviceChoice::Cpu };
        let placed = Processor::placing(cfg, 2, Model::embedded(), None, NotePlacement::Lookahead).unwrap();
        // 35 hops of 235 samples at 44.1 kHz.
        assert_eq!(placed.latency_samples(), live_latency + 35 * 235);
        assert_eq!(p.latency_samples(), live_latency);
    }

    #[test]
    fn empty_and_zero_length_calls_are_harmless() {
        let mut p = processor(128);
        p.process(&mut [], &Controls::default(), 1.0, 0.0);
        let mut a: [f32; 0] = [];
        let mut b: [f32; 0] = [];
        p.process(&mut [&mut a, &mut b], &Controls::default(), 1.0, 0.0);
        let mut one = [0.5f32];
        p.process(&mut [&mut one], &Controls::default(), 1.0, 0.0);
        assert!(one[0].is_finite());
    }
}
