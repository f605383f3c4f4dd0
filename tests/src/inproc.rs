//! An in-process host for the plugin: the real `HummingFace` struct driven through nice-plug's
//! `Plugin` trait in the order the CLAP and VST3 wrappers call it (`activate` → `reset` →
//! `process` … → `deactivate`), with minimal activate/process contexts. No plugin binary and no
//! host process, so a test can run thousands of lifecycles and read `/proc/self` about them.
//!
//! Parameters are set the way the wrappers set them from host automation
//! (`ParamPtr::_internal_set_normalized_value` on the plugin's own parameter objects).

use std::cell::Cell;
use std::sync::Arc;

use hummingface::HummingFace;
use nice_plug::midi::Key;
use nice_plug::prelude::*;

/// What `activate` may call back.
struct ActivateCtx {
    latency: Cell<u32>,
}

impl ActivateContext<HummingFace> for ActivateCtx {
    fn plugin_api(&self) -> PluginApi {
        PluginApi::Clap
    }
    fn execute(&self, _task: ()) {}
    fn set_latency_samples(&self, samples: u32) {
        self.latency.set(samples);
    }
    fn set_current_voice_capacity(&self, _capacity: u32) {}
}

/// What `process` may call back: counts the note events the plugin sends (no allocation).
struct ProcessCtx {
    transport: Transport,
    notes_on: u64,
    notes_off: u64,
    /// Key of the last note-on, −1 before the first.
    last_on: i32,
    latency: Cell<u32>,
    /// Every note event: (absolute sample since the instance was made, key, on). Pre-allocated;
    /// events beyond its capacity are counted but not logged (no allocation in `process`).
    log: Vec<(u64, u8, bool)>,
    /// Samples processed before the current block.
    pos: u64,
}

/// Note events [`InProcessHost`] keeps with their times.
const NOTE_LOG_CAPACITY: usize = 1 << 16;

impl ProcessContext<HummingFace> for ProcessCtx {
    fn plugin_api(&self) -> PluginApi {
        PluginApi::Clap
    }
    fn execute_background(&self, _task: ()) {}
    fn execute_gui(&self, _task: ()) {}
    fn transport(&self) -> &Transport {
        &self.transport
    }
    fn next_event(&mut self) -> Option<PluginNoteEvent<HummingFace>> {
        None
    }
    fn try_send_event(
        &mut self,
        event: PluginNoteEvent<HummingFace>,
    ) -> Result<(), (PluginNoteEvent<HummingFace>, nice_plug::context::process::SendEventError)>
    {
        let logged = |key: &Key, timing: u32, on: bool| match key {
            Key::Number(k) => Some((self.pos + timing as u64, *k, on)),
            Key::Wildcard => None,
        };
        let entry = match &event {
            NoteEvent::NoteOn { key, timing, .. } => logged(key, *timing, true),
            NoteEvent::NoteOff { key, timing, .. } => logged(key, *timing, false),
            _ => None,
        };
        if let Some(e) = entry {
            if self.log.len() < self.log.capacity() {
                self.log.push(e);
            }
        }
        match event {
            NoteEvent::NoteOn { key, .. } => {
                self.notes_on += 1;
                self.last_on = match key {
                    Key::Number(k) => k as i32,
                    Key::Wildcard => -1,
                };
            }
            NoteEvent::NoteOff { .. } => self.notes_off += 1,
            _ => {}
        }
        Ok(())
    }
    fn set_latency_samples(&self, samples: u32) {
        self.latency.set(samples);
    }
    fn request_restart(&self) {}
    fn set_current_voice_capacity(&self, _capacity: u32) {}
}

/// One plugin instance and the host-side settings it is activated with.
pub struct InProcessHost {
    pub plugin: HummingFace,
    layout: AudioIOLayout,
    config: BufferConfig,
    ctx: ProcessCtx,
    /// Latency reported by the last successful `activate`.
    latency: u32,
    active: bool,
}

impl InProcessHost {
    /// A new instance (`HummingFace::default()`, as a host's scan makes it) for `channels` (1 or
    /// 2) at `sample_rate` with host blocks up to `max_block`; not yet active.
    pub fn new(channels: usize, sample_rate: f32, max_block: u32, offline: bool) -> InProcessHost {
        let layout = *HummingFace::AUDIO_IO_LAYOUTS
            .iter()
            .find(|l| l.main_output_channels.map_or(0, NonZeroU32::get) as usize == channels)
            .expect("the plugin has a layout with that many channels");
        InProcessHost {
            plugin: HummingFace::default(),
            layout,
            config: BufferConfig {
                sample_rate,
                min_buffer_size: None,
                max_buffer_size: max_block,
                process_mode: if offline { ProcessMode::Offline } else { ProcessMode::Realtime },
            },
            ctx: ProcessCtx {
                transport: Transport::new(sample_rate),
                notes_on: 0,
                notes_off: 0,
                last_on: -1,
                latency: Cell::new(0),
                log: Vec::with_capacity(NOTE_LOG_CAPACITY),
                pos: 0,
            },
            latency: 0,
            active: false,
        }
    }

    /// Change the processing mode for the next activation (a host reactivates when it changes).
    pub fn set_offline(&mut self, offline: bool) {
        self.config.process_mode = if offline { ProcessMode::Offline } else { ProcessMode::Realtime };
    }

    /// `activate` then `reset`, as the wrappers do; whether the plugin accepted.
    pub fn activate(&mut self) -> bool {
        let mut ctx = ActivateCtx { latency: Cell::new(0) };
        self.active = self.plugin.activate(&self.layout, &self.config, &mut ctx);
        if self.active {
            self.latency = ctx.latency.get();
            self.plugin.reset();
        }
        self.active
    }

    /// `reset` (audio-thread safe; hosts call it on transport jumps).
    pub fn reset(&mut self) {
        self.plugin.reset();
    }

    /// `deactivate`: the plugin drops its engine and joins the inference worker.
    pub fn deactivate(&mut self) {
        self.plugin.deactivate();
        self.active = false;
    }

    /// Latency reported at the last activation, in samples.
    pub fn latency(&self) -> u32 {
        self.latency
    }

    /// Note-ons and note-offs the plugin has sent, and the key of the last note-on (−1: none).
    pub fn notes(&self) -> (u64, u64, i32) {
        (self.ctx.notes_on, self.ctx.notes_off, self.ctx.last_on)
    }

    /// The plugin's parameters (the same objects its `process` reads).
    pub fn params(&self) -> Arc<dyn Params> {
        self.plugin.params()
    }

    /// Process one block in place. Only the plugin's `process` call runs under
    /// `assert_no_alloc` (building the `Buffer` view allocates a small vector, as a wrapper does
    /// once at activation); a test binary that installs `AllocDisabler` counts violations.
    pub fn process(&mut self, channels: &mut [&mut [f32]]) -> ProcessStatus {
        let n = channels.iter().map(|c| c.len()).min().unwrap_or(0);
        let mut buffer = Buffer::default();
        // SAFETY: the slices borrow `channels`, which outlives `buffer`; all have length `n`.
        unsafe {
            buffer.set_slices(n, |slices| {
                slices.clear();
                slices.extend(channels.iter_mut().map(|c| &mut c[..n]));
            });
        }
        let mut aux = AuxiliaryBuffers { inputs: &mut [], outputs: &mut [] };
        let (plugin, ctx) = (&mut self.plugin, &mut self.ctx);
        let status = assert_no_alloc::assert_no_alloc(|| plugin.process(&mut buffer, &mut aux, ctx));
        self.ctx.pos += n as u64;
        status
    }

    /// Every note event so far: (absolute output sample, key, on), in order.
    pub fn note_log(&self) -> &[(u64, u8, bool)] {
        &self.ctx.log
    }
}

/// Every parameter of `params`: (id, pointer, step count, `None` for continuous ones). The
/// device parameter is included; the plugin reads it only at activation.
pub fn all_params(params: &Arc<dyn Params>) -> Vec<(String, ParamPtr, Option<usize>)> {
    params
        .param_map()
        .into_iter()
        .map(|(id, p, _)| {
            // SAFETY: the pointers point into `params`, which the caller keeps alive.
            let steps = unsafe { p.step_count() };
            (id, p, steps)
        })
        .collect()
}

/// Set a parameter from the host side, as a wrapper does for an automation event.
///
/// # Safety
///
/// `param` must point into a parameter object that is alive (keep its `Arc<dyn Params>`).
pub unsafe fn set_normalized(param: &ParamPtr, normalized: f32) {
    unsafe {
        param._internal_set_normalized_value(normalized.clamp(0.0, 1.0));
    }
}
