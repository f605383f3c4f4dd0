//! `hf-clap-host`: a small, real CLAP host built on `clack-host`, used by the integration tests to
//! drive `HummingFace.clap` the way a DAW does.
//!
//! ```text
//! hf-clap-host PLUGIN.clap --input IN.wav --output OUT.wav [--block N] [--offline] [--pace]
//!              [--flush] [--param NAME=VALUE]... [--rate-check] [--midi OUT.mid] [--json]
//!              [--automate SEED [--automate-gap N]] [--load-state FILE] [--save-state FILE]
//! ```
//!
//! It loads the bundle, creates the first plugin of its factory, reads its audio ports, parameters
//! and latency, activates it at the WAV's sample rate with blocks of exactly N frames (the last
//! block is padded with silence and the padding cut off again), processes the whole file on a
//! separate audio thread with a steady-time counter while the main thread serves the plugin's
//! main-thread callbacks, collects the note on/off events the plugin puts on its output event
//! list, and writes the main output port to a 32-bit float WAV. Then it stops processing,
//! deactivates and destroys the plugin. Any failure: a message on stderr and exit status 1.
//!
//! `--automate SEED` sends CLAP `param_value` events inside the blocks: a schedule made from SEED
//! before the run, one event every 1..2N samples (N = `--automate-gap`, default 64) at absolute
//! sample positions, each setting a random parameter (every parameter the plugin lists) to a
//! random value in its range (whole numbers for stepped ones). Each block carries the events that
//! fall inside it at their offsets, so the same SEED gives the same automation whatever the block
//! size. `--load-state FILE` hands FILE's bytes to `clap_plugin_state.load` before activation
//! (the report says whether the plugin accepted them); `--save-state FILE` writes what
//! `clap_plugin_state.save` gives after the run.
//!
//! `--rate-check` first activates and deactivates the plugin at several sample rates and reports the
//! latency at each (the engine must recompute it when the rate changes).

use std::cell::Cell;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use hummingface_tests::{read_wav, write_wav};
use clack_extensions::audio_ports::{
    AudioPortFlags, AudioPortInfoBuffer, AudioPortRescanFlags, HostAudioPorts, HostAudioPortsImpl,
    PluginAudioPorts,
};
use clack_extensions::latency::{HostLatency, HostLatencyImpl, PluginLatency};
use clack_extensions::params::{
    HostParams, HostParamsImplMainThread, HostParamsImplShared, ParamClearFlags, ParamInfoBuffer,
    ParamInfoFlags, ParamRescanFlags, PluginParams,
};
use clack_extensions::state::PluginState;
use clack_extensions::render::{PluginRender, RenderMode};
use clack_host::events::event_types::ParamValueEvent;
use clack_host::events::spaces::CoreEventSpace;
use clack_host::prelude::*;
use clap::Parser;
use serde::Serialize;

#[derive(Parser, Debug)]
#[command(
    name = "hf-clap-host",
    about = "Minimal CLAP host: run a .clap plugin over a WAV file"
)]
struct Args {
    /// Path to the `.clap` bundle (on Linux: the shared library itself).
    plugin: PathBuf,
    /// Input WAV (any channel count; fed to the plugin's main input port).
    #[arg(long)]
    input: PathBuf,
    /// Output WAV: the plugin's main output port, 32-bit float, same rate as the input.
    #[arg(long)]
    output: PathBuf,
    /// Block size N: the plugin is activated with min = max = N frames and every process call
    /// gets exactly N frames.
    #[arg(long, default_value_t = 512)]
    block: u32,
    /// Before the run, activate/deactivate at several sample rates and report the latency at each.
    #[arg(long)]
    rate_check: bool,
    /// Ask the plugin for offline rendering (CLAP render extension) before activating it.
    #[arg(long)]
    offline: bool,
    /// Pace the process calls at real time (a block every N / sample_rate seconds), like an audio
    /// device would; without it blocks are fed as fast as the plugin takes them.
    #[arg(long)]
    pace: bool,
    /// After the input, keep processing silence for `latency` more samples so the piano that the
    /// last input samples caused (and its note events) come out; the output WAV is that much longer.
    #[arg(long)]
    flush: bool,
    /// Set a parameter before activation: NAME=VALUE, NAME matched case-insensitively against the
    /// parameter's name, or its numeric id. VALUE is the CLAP (plain) value if it parses as a
    /// number, otherwise it is handed to the plugin's text-to-value conversion.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// Write the collected notes as a format-0 SMF (480 ticks per quarter, 120 bpm), note times
    /// shifted back by the reported latency.
    #[arg(long)]
    midi: Option<PathBuf>,
    /// Print one JSON object on stdout (human-readable lines go to stderr instead).
    #[arg(long)]
    json: bool,
    /// Send random parameter-value events inside the blocks, from this seed (see above).
    #[arg(long)]
    automate: Option<u64>,
    /// Mean distance between two automation events, samples.
    #[arg(long, default_value_t = 64)]
    automate_gap: u32,
    /// Load this file's bytes as the plugin state (`clap_plugin_state.load`) before activation.
    #[arg(long)]
    load_state: Option<PathBuf>,
    /// Save the plugin state (`clap_plugin_state.save`) to this file after the run.
    #[arg(long)]
    save_state: Option<PathBuf>,
}

/// One parameter as the params extension reports it.
#[derive(Serialize, Debug, Clone)]
struct ParamReport {
    id: u32,
    name: String,
    module: String,
    min: f64,
    max: f64,
    default: f64,
    /// Value read back after activation (and after `--param` settings were applied).
    value: Option<f64>,
    /// The plugin's own text for `value`.
    text: Option<String>,
    /// Whether the parameter takes whole-number values only.
    stepped: bool,
    /// Whether the plugin marks it as its bypass (`CLAP_PARAM_IS_BYPASS`).
    bypass: bool,
}

/// One note event the plugin emitted.
#[derive(Serialize, Debug, Clone, Copy)]
struct NoteReport {
    /// Absolute sample position in the host's output stream (block start + event offset).
    time_samples: u64,
    key: u8,
    /// 0..1 (CLAP note velocity; MIDI velocities are divided by 127).
    velocity: f64,
    on: bool,
    channel: i16,
}

/// One audio port as the audio-ports extension reports it.
#[derive(Serialize, Debug, Clone)]
struct PortReport {
    name: String,
    channels: u32,
    is_main: bool,
}

#[derive(Serialize, Debug, Clone, Copy)]
struct RateReport {
    sample_rate: f64,
    latency_samples: u32,
    latency_ms: f64,
}

#[derive(Serialize, Debug)]
struct Report {
    plugin_id: String,
    plugin_name: String,
    latency_samples: u32,
    params: Vec<ParamReport>,
    notes: Vec<NoteReport>,
    sample_rate: u32,
    /// Channels written to the output WAV (the plugin's main output port).
    channels: u32,
    /// Channels of the input WAV.
    input_channels: u32,
    input_ports: Vec<PortReport>,
    output_ports: Vec<PortReport>,
    block: u32,
    /// Samples read from the input file.
    input_samples: u64,
    /// Samples written to the output file (input + flush).
    output_samples: u64,
    /// Number of `process` calls.
    blocks: u64,
    render_mode: &'static str,
    /// Times the plugin called `clap_host_latency.changed`.
    latency_changed_calls: u32,
    /// Times the plugin asked for a restart (deactivate + activate), all honoured.
    restarts: u32,
    /// Wall time spent in `process` calls divided by the audio duration.
    realtime_factor: f64,
    /// Process calls that returned after their real-time deadline (only meaningful with `--pace`).
    late_blocks: u64,
    rate_check: Vec<RateReport>,
    /// Parameter-value events sent inside blocks (`--automate`).
    param_events: u64,
    /// Whether the plugin accepted `--load-state` (`None` without it).
    state_loaded: Option<bool>,
}

// ----------------------------------------------------------------------------------------------
// Host callbacks
// ----------------------------------------------------------------------------------------------

/// State the plugin may touch from any thread.
struct HostShared {
    /// The plugin asked for `on_main_thread` (nice-plug uses this for its GUI-thread tasks).
    callback_requested: AtomicBool,
    /// The plugin asked to be deactivated and activated again.
    restart_requested: AtomicBool,
    /// Count of `clap_host_latency.changed` calls (main thread only, but counted atomically so
    /// the audio thread's report can read it).
    latency_changed: AtomicU32,
}

impl<'a> SharedHandler<'a> for HostShared {
    fn request_restart(&self) {
        self.restart_requested.store(true, Ordering::SeqCst);
    }
    fn request_process(&self) {}
    fn request_callback(&self) {
        self.callback_requested.store(true, Ordering::SeqCst);
    }
}

impl HostParamsImplShared for HostShared {
    fn request_flush(&self) {}
}

/// Main-thread state.
struct HostMain<'a> {
    shared: &'a HostShared,
    /// Parameter rescans requested by the plugin (informational).
    rescans: Cell<u32>,
}

impl<'a> MainThreadHandler<'a> for HostMain<'a> {}

impl HostLatencyImpl for HostMain<'_> {
    fn changed(&self) {
        self.shared.latency_changed.fetch_add(1, Ordering::SeqCst);
    }
}

impl HostParamsImplMainThread for HostMain<'_> {
    fn rescan(&self, _flags: ParamRescanFlags) {
        self.rescans.set(self.rescans.get() + 1);
    }
    fn clear(&self, _param_id: ClapId, _flags: ParamClearFlags) {}
}

impl HostAudioPortsImpl for HostMain<'_> {
    fn is_rescan_flag_supported(&self, _flag: AudioPortRescanFlags) -> bool {
        false
    }
    fn rescan(&self, _flags: AudioPortRescanFlags) {}
}

struct HfHost;

impl HostHandlers for HfHost {
    type Shared<'a> = HostShared;
    type MainThread<'a> = HostMain<'a>;
    type AudioProcessor<'a> = ();

    fn declare_extensions(builder: &mut HostExtensions<Self>, _shared: &Self::Shared<'_>) {
        builder
            .register::<HostLatency>()
            .register::<HostParams>()
            .register::<HostAudioPorts>();
    }
}

// ----------------------------------------------------------------------------------------------
// WAV and MIDI files
// ----------------------------------------------------------------------------------------------

/// Format-0 SMF, 480 ticks per quarter note at 120 bpm (so ticks = seconds * 960), note times
/// shifted back by `latency` samples (clamped at 0), events in time order with note-offs first
/// at equal times.
fn write_midi(path: &Path, notes: &[NoteReport], latency: u32, sample_rate: f64) -> Result<()> {
    use midly::num::{u15, u24, u28, u4, u7};
    use midly::{
        Format, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind,
    };

    let mut timed: Vec<(u64, bool, u8, u8)> = notes
        .iter()
        .map(|n| {
            let t = n.time_samples.saturating_sub(latency as u64) as f64 / sample_rate;
            let ticks = (t * 960.0).round() as u64;
            // Same mapping as the CLI's MIDI writer: 0..1 -> round(v * 126) + 1.
            let vel = if n.on {
                (n.velocity.clamp(0.0, 1.0) * 126.0).round() as u8 + 1
            } else {
                0
            };
            (ticks, n.on, n.key.min(127), vel)
        })
        .collect();
    // Stable: at equal ticks, offs (false) before ons (true), otherwise emission order.
    timed.sort_by_key(|&(t, on, _, _)| (t, on));

    let mut track = vec![TrackEvent {
        delta: u28::new(0),
        kind: TrackEventKind::Meta(MetaMessage::Tempo(u24::new(500_000))),
    }];
    let mut last = 0u64;
    for (t, on, key, vel) in timed {
        let delta = (t - last).min(0x0FFF_FFFF) as u32;
        last = t;
        let message = if on {
            MidiMessage::NoteOn {
                key: u7::new(key),
                vel: u7::new(vel),
            }
        } else {
            MidiMessage::NoteOff {
                key: u7::new(key),
                vel: u7::new(0),
            }
        };
        track.push(TrackEvent {
            delta: u28::new(delta),
            kind: TrackEventKind::Midi {
                channel: u4::new(0),
                message,
            },
        });
    }
    track.push(TrackEvent {
        delta: u28::new(0),
        kind: TrackEventKind::Meta(MetaMessage::EndOfTrack),
    });
    let smf = Smf {
        header: Header {
            format: Format::SingleTrack,
            timing: Timing::Metrical(u15::new(480)),
        },
        tracks: vec![track],
    };
    smf.save(path)
        .with_context(|| format!("cannot write MIDI file {}", path.display()))?;
    Ok(())
}

// ----------------------------------------------------------------------------------------------
// Audio thread
// ----------------------------------------------------------------------------------------------

/// What the audio thread hands back.
struct AudioRun {
    /// `[channel][sample]` of the main output port, `total` samples long.
    output: Vec<Vec<f32>>,
    notes: Vec<NoteReport>,
    blocks: u64,
    busy: Duration,
    late_blocks: u64,
    param_events: u64,
}

/// One scheduled automation event: absolute sample, parameter id, plain value.
type Automation = (u64, ClapId, f64);

/// The `--automate` schedule: an event every 1..2·`gap` samples over `total` samples, each a
/// random parameter set to a random value in its range (whole numbers for stepped ones).
fn automation_schedule(seed: u64, gap: u32, total: usize, params: &[ParamReport]) -> Vec<Automation> {
    let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let ids: Vec<(ClapId, &ParamReport)> = params
        .iter()
        .filter_map(|p| ClapId::from_raw(p.id).map(|id| (id, p)))
        .collect();
    let mut out = Vec::new();
    if ids.is_empty() {
        return out;
    }
    let span = 2.0 * gap.max(1) as f64;
    let mut t = 0u64;
    loop {
        t += 1 + (next() * span) as u64;
        if t >= total as u64 {
            break;
        }
        let (id, p) = ids[((next() * ids.len() as f64) as usize).min(ids.len() - 1)];
        let mut v = p.min + next() * (p.max - p.min);
        if p.stepped {
            v = v.round();
        }
        out.push((t, id, v.clamp(p.min, p.max)));
    }
    out
}

/// Everything the audio thread needs about the buses.
struct Buses {
    /// Channel count of every input port (index = port index).
    in_ports: Vec<u32>,
    /// Channel count of every output port.
    out_ports: Vec<u32>,
    /// Index of the main input port (the WAV goes there), if any.
    main_in: Option<usize>,
    /// Index of the main output port (written to the WAV).
    main_out: usize,
}

/// Maps the WAV's channels to `n` plugin input channels: equal counts are copied, a mono file is
/// duplicated, more file channels than inputs are averaged into a mono input, otherwise channel
/// `i` takes file channel `i % file_channels`.
fn map_channels(file: &[Vec<f32>], n: usize) -> Vec<Vec<f32>> {
    let fc = file.len();
    let len = file[0].len();
    if n == fc {
        return file.to_vec();
    }
    if n == 1 {
        let mut mono = vec![0.0f32; len];
        for ch in file {
            for (m, s) in mono.iter_mut().zip(ch) {
                *m += *s / fc as f32;
            }
        }
        return vec![mono];
    }
    (0..n).map(|i| file[i % fc].clone()).collect()
}

#[allow(clippy::too_many_arguments)]
fn audio_thread(
    processor: StoppedPluginAudioProcessor<HfHost>,
    buses: &Buses,
    input: &[Vec<f32>],
    total: usize,
    block: usize,
    sample_rate: f64,
    pace: bool,
    automation: &[Automation],
) -> (StoppedPluginAudioProcessor<HfHost>, Result<AudioRun>) {
    let mut processor = match processor.start_processing() {
        Ok(p) => p,
        Err(e) => {
            let msg = format!("start_processing failed: {e}");
            return (e.into_stopped_processor(), Err(anyhow!(msg)));
        }
    };

    let mut in_bufs: Vec<Vec<Vec<f32>>> = buses
        .in_ports
        .iter()
        .map(|&c| vec![vec![0.0f32; block]; c as usize])
        .collect();
    let mut out_bufs: Vec<Vec<Vec<f32>>> = buses
        .out_ports
        .iter()
        .map(|&c| vec![vec![0.0f32; block]; c as usize])
        .collect();
    let mut in_ports = AudioPorts::with_capacity(
        buses.in_ports.iter().sum::<u32>() as usize,
        buses.in_ports.len(),
    );
    let mut out_ports = AudioPorts::with_capacity(
        buses.out_ports.iter().sum::<u32>() as usize,
        buses.out_ports.len(),
    );
    let mut events_out = EventBuffer::with_capacity(1024);
    let mut events_in = EventBuffer::with_capacity(4096);
    let mut next_automation = 0usize;
    let mut param_events = 0u64;
    let main_out_channels = buses.out_ports[buses.main_out] as usize;
    let mut output = vec![Vec::with_capacity(total); main_out_channels];
    let mut notes = Vec::new();
    let input_len = input.first().map_or(0, Vec::len);

    let start = Instant::now();
    let mut busy = Duration::ZERO;
    let mut late_blocks = 0u64;
    let mut blocks = 0u64;
    let mut pos = 0usize;
    let mut result = Ok(());
    while pos < total {
        let n = block.min(total - pos);
        // Fill the inputs: the main port gets the file (zero past its end and in the padding).
        for (p, port) in in_bufs.iter_mut().enumerate() {
            for (c, ch) in port.iter_mut().enumerate() {
                ch.fill(0.0);
                if Some(p) == buses.main_in {
                    let src = &input[c];
                    let avail = input_len.saturating_sub(pos).min(n);
                    if avail > 0 {
                        ch[..avail].copy_from_slice(&src[pos..pos + avail]);
                    }
                }
            }
        }
        for port in out_bufs.iter_mut() {
            for ch in port.iter_mut() {
                ch.fill(0.0);
            }
        }
        events_out.clear();
        events_in.clear();
        while let Some(&(t, id, v)) = automation.get(next_automation) {
            if t >= (pos + n) as u64 {
                break;
            }
            let offset = t.saturating_sub(pos as u64) as u32;
            events_in.push(&ParamValueEvent::new(offset, id, Pckn::match_all(), v));
            next_automation += 1;
            param_events += 1;
        }

        if pace {
            let deadline = Duration::from_secs_f64(pos as f64 / sample_rate);
            if let Some(wait) = deadline.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        let t0 = Instant::now();
        let status = {
            let inputs = in_ports.with_input_buffers(in_bufs.iter_mut().map(|port| {
                AudioPortBuffer {
                    latency: 0,
                    channels: AudioPortBufferType::f32_input_only(
                        port.iter_mut()
                            .map(|ch| InputChannel::variable(ch.as_mut_slice())),
                    ),
                }
            }));
            let mut outputs =
                out_ports.with_output_buffers(out_bufs.iter_mut().map(|port| AudioPortBuffer {
                    latency: 0,
                    channels: AudioPortBufferType::f32_output_only(
                        port.iter_mut().map(|ch| ch.as_mut_slice()),
                    ),
                }));
            processor.process(
                &inputs,
                &mut outputs,
                &events_in.as_input(),
                &mut events_out.as_output(),
                Some(pos as u64),
                None,
            )
        };
        let spent = t0.elapsed();
        busy += spent;
        blocks += 1;
        if pace && start.elapsed().as_secs_f64() > (pos + block) as f64 / sample_rate {
            late_blocks += 1;
        }
        if let Err(e) = status {
            result = Err(anyhow!("process() failed at sample {pos}: {e}"));
            break;
        }

        for ev in events_out.iter() {
            let offset = ev.header().time() as u64;
            let note = match ev.as_core_event() {
                Some(CoreEventSpace::NoteOn(e)) => Some((
                    e.pckn().raw_key(),
                    e.velocity(),
                    true,
                    e.pckn().raw_channel(),
                )),
                Some(CoreEventSpace::NoteOff(e)) => Some((
                    e.pckn().raw_key(),
                    e.velocity(),
                    false,
                    e.pckn().raw_channel(),
                )),
                Some(CoreEventSpace::Midi(e)) => {
                    let [status, key, vel] = e.data();
                    match status & 0xF0 {
                        0x90 if vel > 0 => {
                            Some((key as i16, vel as f64 / 127.0, true, (status & 0x0F) as i16))
                        }
                        0x90 | 0x80 => Some((
                            key as i16,
                            vel as f64 / 127.0,
                            false,
                            (status & 0x0F) as i16,
                        )),
                        _ => None,
                    }
                }
                _ => None,
            };
            if let Some((key, velocity, on, channel)) = note {
                if !(0..=127).contains(&key) {
                    result = Err(anyhow!(
                        "plugin emitted a note event with key {key} at sample {}",
                        pos as u64 + offset
                    ));
                    break;
                }
                if offset >= block as u64 {
                    result = Err(anyhow!(
                        "note event offset {offset} outside the {block}-frame block"
                    ));
                    break;
                }
                notes.push(NoteReport {
                    time_samples: pos as u64 + offset,
                    key: key as u8,
                    velocity,
                    on,
                    channel,
                });
            }
        }
        if result.is_err() {
            break;
        }
        for (c, ch) in out_bufs[buses.main_out].iter().enumerate() {
            output[c].extend_from_slice(&ch[..n]);
        }
        pos += n;
    }
    let stopped = processor.stop_processing();
    (
        stopped,
        result.map(|()| AudioRun {
            output,
            notes,
            blocks,
            busy,
            late_blocks,
            param_events,
        }),
    )
}

// ----------------------------------------------------------------------------------------------
// Main-thread helpers
// ----------------------------------------------------------------------------------------------

fn host_info() -> Result<HostInfo> {
    HostInfo::new(
        "hf-clap-host",
        "HummingFace tests",
        "https://example.invalid/hf-clap-host",
        "0.1.0",
    )
    .map_err(|e| anyhow!("host info: {e}"))
}

/// Serves main-thread callbacks the plugin asked for.
fn pump_main_thread(instance: &mut PluginInstance<HfHost>) {
    if instance.access_shared_handler(|s| s.callback_requested.swap(false, Ordering::SeqCst)) {
        instance.call_on_main_thread_callback();
    }
}

fn read_ports(instance: &mut PluginInstance<HfHost>, is_input: bool) -> Vec<PortReport> {
    let Some(ext) = instance
        .plugin_shared_handle()
        .get_extension::<PluginAudioPorts>()
    else {
        return Vec::new();
    };
    let handle = instance.plugin_handle();
    let mut buf = AudioPortInfoBuffer::new();
    (0..ext.count(&handle, is_input))
        .filter_map(|i| {
            ext.get(&handle, i, is_input, &mut buf)
                .map(|info| PortReport {
                    name: String::from_utf8_lossy(info.name).into_owned(),
                    channels: info.channel_count,
                    is_main: info.flags.contains(AudioPortFlags::IS_MAIN),
                })
        })
        .collect()
}

fn read_params(instance: &mut PluginInstance<HfHost>) -> Vec<ParamReport> {
    let Some(ext) = instance
        .plugin_shared_handle()
        .get_extension::<PluginParams>()
    else {
        return Vec::new();
    };
    let handle = instance.plugin_handle();
    let mut buf = ParamInfoBuffer::new();
    let mut out = Vec::new();
    for i in 0..ext.count(&handle) {
        let Some(info) = ext.get_info(&handle, i, &mut buf) else {
            continue;
        };
        let id = info.id;
        let mut report = ParamReport {
            id: id.get(),
            name: String::from_utf8_lossy(info.name).into_owned(),
            module: String::from_utf8_lossy(info.module).into_owned(),
            min: info.min_value,
            max: info.max_value,
            default: info.default_value,
            value: None,
            text: None,
            stepped: info.flags.contains(ParamInfoFlags::IS_STEPPED),
            bypass: info.flags.contains(ParamInfoFlags::IS_BYPASS),
        };
        report.value = ext.get_value(&handle, id);
        if let Some(v) = report.value {
            let mut text = [0u8; 256];
            if let Ok(t) = ext.value_to_text(&handle, id, v, &mut text) {
                report.text = Some(String::from_utf8_lossy(t).into_owned());
            }
        }
        out.push(report);
    }
    out
}

fn latency_of(instance: &mut PluginInstance<HfHost>) -> Option<u32> {
    let ext = instance
        .plugin_shared_handle()
        .get_extension::<PluginLatency>()?;
    Some(ext.get(&instance.plugin_handle()))
}

/// Applies `--param` settings through `clap_plugin_params.flush` while the plugin is inactive,
/// so they hold from the first sample (no smoothing from the defaults).
fn apply_params(
    instance: &mut PluginInstance<HfHost>,
    settings: &[String],
    params: &[ParamReport],
) -> Result<()> {
    if settings.is_empty() {
        return Ok(());
    }
    let ext = instance
        .plugin_shared_handle()
        .get_extension::<PluginParams>()
        .ok_or_else(|| anyhow!("--param given but the plugin has no params extension"))?;
    let mut events = EventBuffer::with_capacity(settings.len());
    for s in settings {
        let (name, value) = s
            .split_once('=')
            .ok_or_else(|| anyhow!("--param {s}: expected NAME=VALUE"))?;
        let p = params
            .iter()
            .find(|p| {
                p.name.eq_ignore_ascii_case(name.trim())
                    || name.trim().parse::<u32>().ok() == Some(p.id)
            })
            .ok_or_else(|| {
                anyhow!(
                    "--param {s}: no parameter named {name:?}; the plugin has: {}",
                    params
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
        let id = ClapId::from_raw(p.id).ok_or_else(|| anyhow!("invalid parameter id {}", p.id))?;
        let v = match value.trim().parse::<f64>() {
            Ok(v) => v,
            Err(_) => {
                let text = CString::new(value.trim())?;
                ext.text_to_value(&instance.plugin_handle(), id, &text)
                    .ok_or_else(|| anyhow!("--param {s}: the plugin cannot parse {value:?}"))?
            }
        };
        if !(p.min..=p.max).contains(&v) {
            bail!("--param {s}: value {v} outside {}..{}", p.min, p.max);
        }
        events.push(&ParamValueEvent::new(0, id, Pckn::match_all(), v));
    }
    let mut out_events = EventBuffer::new();
    let mut inactive = instance
        .inactive_plugin_handle()
        .ok_or_else(|| anyhow!("plugin unexpectedly active while setting parameters"))?;
    ext.flush(
        &mut inactive,
        &events.as_input(),
        &mut out_events.as_output(),
    );
    Ok(())
}

fn activate(
    instance: &mut PluginInstance<HfHost>,
    sample_rate: f64,
    block: u32,
) -> Result<StoppedPluginAudioProcessor<HfHost>> {
    instance
        .activate(
            |_, _| (),
            PluginAudioConfiguration {
                sample_rate,
                min_frames_count: block,
                max_frames_count: block,
            },
        )
        .map_err(|e| anyhow!("activate at {sample_rate} Hz, block {block} failed: {e}"))
}

/// Activates, then honours restart requests made during activation (nice-plug asks for one when
/// the latency changes while active) the way a host must: deactivate and activate again.
fn activate_settled(
    instance: &mut PluginInstance<HfHost>,
    sample_rate: f64,
    block: u32,
    restarts: &mut u32,
) -> Result<StoppedPluginAudioProcessor<HfHost>> {
    instance.access_shared_handler(|s| s.restart_requested.store(false, Ordering::SeqCst));
    let mut processor = activate(instance, sample_rate, block)?;
    for _ in 0..4 {
        // Let queued main-thread tasks run (they may be what asks for the restart).
        for _ in 0..20 {
            pump_main_thread(instance);
            std::thread::sleep(Duration::from_millis(1));
        }
        if !instance.access_shared_handler(|s| s.restart_requested.swap(false, Ordering::SeqCst)) {
            return Ok(processor);
        }
        *restarts += 1;
        instance.deactivate(processor);
        processor = activate(instance, sample_rate, block)?;
    }
    bail!("the plugin keeps requesting restarts after activation")
}

fn run(args: &Args) -> Result<Report> {
    if args.block == 0 {
        bail!("--block must be at least 1");
    }
    let input = read_wav(&args.input)?;
    let (file, rate) = (input.channels, input.sample_rate);
    let sample_rate = rate as f64;
    let input_samples = file[0].len();

    // SAFETY: loading a plugin library runs its code; that is the point of this program.
    let entry = unsafe { PluginEntry::load(&args.plugin) }
        .map_err(|e| anyhow!("cannot load CLAP entry {}: {e}", args.plugin.display()))?;
    let factory = entry
        .get_plugin_factory()
        .ok_or_else(|| anyhow!("{} has no plugin factory", args.plugin.display()))?;
    let descriptor = factory
        .plugin_descriptors()
        .next()
        .ok_or_else(|| anyhow!("{} contains no plugin", args.plugin.display()))?;
    let plugin_id = descriptor
        .id()
        .ok_or_else(|| anyhow!("first plugin has no id"))?
        .to_owned();
    let plugin_name = descriptor
        .name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();

    let mut instance = PluginInstance::<HfHost>::new(
        |_| HostShared {
            callback_requested: AtomicBool::new(false),
            restart_requested: AtomicBool::new(false),
            latency_changed: AtomicU32::new(0),
        },
        |shared| HostMain {
            shared,
            rescans: Cell::new(0),
        },
        &entry,
        &plugin_id,
        &host_info()?,
    )
    .map_err(|e| anyhow!("cannot create plugin {plugin_id:?}: {e}"))?;

    let input_ports = read_ports(&mut instance, true);
    let output_ports = read_ports(&mut instance, false);
    if output_ports.is_empty() {
        bail!("the plugin has no audio output port (audio-ports extension missing or empty)");
    }
    let pick_main = |ports: &[PortReport]| ports.iter().position(|p| p.is_main).unwrap_or(0);
    let buses = Buses {
        in_ports: input_ports.iter().map(|p| p.channels).collect(),
        out_ports: output_ports.iter().map(|p| p.channels).collect(),
        main_in: (!input_ports.is_empty()).then(|| pick_main(&input_ports)),
        main_out: pick_main(&output_ports),
    };
    for (kind, ports) in [("input", &input_ports), ("output", &output_ports)] {
        for p in ports.iter() {
            if p.channels == 0 || p.channels > 2 {
                bail!(
                    "{kind} port {:?} has {} channels; this host handles mono or stereo",
                    p.name,
                    p.channels
                );
            }
        }
    }

    let mut state_loaded = None;
    if let Some(path) = &args.load_state {
        let bytes = std::fs::read(path)
            .with_context(|| format!("--load-state: cannot read {}", path.display()))?;
        let ext = instance
            .plugin_shared_handle()
            .get_extension::<PluginState>()
            .ok_or_else(|| anyhow!("--load-state: the plugin has no state extension"))?;
        let ok = ext
            .load(&instance.plugin_handle(), &mut std::io::Cursor::new(bytes))
            .is_ok();
        pump_main_thread(&mut instance);
        state_loaded = Some(ok);
    }

    let params_before = read_params(&mut instance);
    apply_params(&mut instance, &args.params, &params_before)?;

    let mut render_mode = "realtime";
    if args.offline {
        let ext = instance
            .plugin_shared_handle()
            .get_extension::<PluginRender>()
            .ok_or_else(|| anyhow!("--offline: the plugin has no render extension"))?;
        ext.set(&instance.plugin_handle(), RenderMode::Offline)
            .map_err(|e| anyhow!("--offline: {e}"))?;
        render_mode = "offline";
    }

    let mut restarts = 0u32;
    let mut rate_check = Vec::new();
    if args.rate_check {
        let mut rates = vec![44100.0, 48000.0, 96000.0, 22050.0];
        if !rates.contains(&sample_rate) {
            rates.push(sample_rate);
        }
        for sr in rates {
            let p = activate_settled(&mut instance, sr, args.block, &mut restarts)?;
            let lat = latency_of(&mut instance)
                .ok_or_else(|| anyhow!("the plugin has no latency extension"))?;
            instance.deactivate(p);
            pump_main_thread(&mut instance);
            rate_check.push(RateReport {
                sample_rate: sr,
                latency_samples: lat,
                latency_ms: lat as f64 * 1000.0 / sr,
            });
        }
    }

    let processor = activate_settled(&mut instance, sample_rate, args.block, &mut restarts)?;
    let latency_samples = latency_of(&mut instance).unwrap_or(0);
    let params = read_params(&mut instance);

    let automation = match args.automate {
        Some(seed) => automation_schedule(seed, args.automate_gap, input_samples + if args.flush { latency_samples as usize } else { 0 }, &params),
        None => Vec::new(),
    };

    let in_channels = buses.main_in.map_or(0, |i| buses.in_ports[i] as usize);
    let input = if in_channels > 0 {
        map_channels(&file, in_channels)
    } else {
        Vec::new()
    };
    let total = input_samples
        + if args.flush {
            latency_samples as usize
        } else {
            0
        };

    let (processor, audio) = std::thread::scope(|s| {
        let handle = s.spawn(|| {
            audio_thread(
                processor,
                &buses,
                &input,
                total,
                args.block as usize,
                sample_rate,
                args.pace,
                &automation,
            )
        });
        while !handle.is_finished() {
            pump_main_thread(&mut instance);
            std::thread::sleep(Duration::from_millis(2));
        }
        handle
            .join()
            .map_err(|_| anyhow!("the audio thread panicked"))
    })?;
    instance.deactivate(processor);
    pump_main_thread(&mut instance);
    let audio = audio?;

    if let Some(path) = &args.save_state {
        let ext = instance
            .plugin_shared_handle()
            .get_extension::<PluginState>()
            .ok_or_else(|| anyhow!("--save-state: the plugin has no state extension"))?;
        let mut bytes = Vec::new();
        ext.save(&instance.plugin_handle(), &mut bytes)
            .map_err(|e| anyhow!("--save-state: the plugin did not save: {e}"))?;
        std::fs::write(path, &bytes)
            .with_context(|| format!("--save-state: cannot write {}", path.display()))?;
    }

    let latency_changed_calls =
        instance.access_shared_handler(|s| s.latency_changed.load(Ordering::SeqCst));
    drop(instance); // clap_plugin.destroy
    drop(entry); // clap_entry.deinit + dlclose

    write_wav(&args.output, &audio.output, rate)?;
    if let Some(midi) = &args.midi {
        write_midi(midi, &audio.notes, latency_samples, sample_rate)?;
    }

    let seconds = total as f64 / sample_rate;
    Ok(Report {
        plugin_id: plugin_id.to_string_lossy().into_owned(),
        plugin_name,
        latency_samples,
        params,
        notes: audio.notes,
        sample_rate: rate,
        channels: audio.output.len() as u32,
        input_channels: file.len() as u32,
        input_ports,
        output_ports,
        block: args.block,
        input_samples: input_samples as u64,
        output_samples: total as u64,
        blocks: audio.blocks,
        render_mode,
        latency_changed_calls,
        restarts,
        realtime_factor: if seconds > 0.0 {
            audio.busy.as_secs_f64() / seconds
        } else {
            0.0
        },
        late_blocks: audio.late_blocks,
        rate_check,
        param_events: audio.param_events,
        state_loaded,
    })
}

fn print_human(r: &Report, to_stderr: bool) {
    let mut s = String::new();
    use std::fmt::Write;
    let _ = writeln!(s, "plugin: {} ({})", r.plugin_name, r.plugin_id);
    for p in &r.input_ports {
        let _ = writeln!(
            s,
            "input port: {:?} {} ch{}",
            p.name,
            p.channels,
            if p.is_main { " main" } else { "" }
        );
    }
    for p in &r.output_ports {
        let _ = writeln!(
            s,
            "output port: {:?} {} ch{}",
            p.name,
            p.channels,
            if p.is_main { " main" } else { "" }
        );
    }
    let _ = writeln!(
        s,
        "sample rate: {} Hz, block {}, mode {}",
        r.sample_rate, r.block, r.render_mode
    );
    let _ = writeln!(
        s,
        "latency: {} samples ({:.2} ms)",
        r.latency_samples,
        r.latency_samples as f64 * 1000.0 / r.sample_rate as f64
    );
    for rc in &r.rate_check {
        let _ = writeln!(
            s,
            "rate check: {} Hz -> latency {} samples ({:.2} ms)",
            rc.sample_rate, rc.latency_samples, rc.latency_ms
        );
    }
    for p in &r.params {
        let _ = writeln!(
            s,
            "param {:>10} {:<24} min {} max {} default {} value {:?} {:?}",
            p.id,
            p.name,
            p.min,
            p.max,
            p.default,
            p.value,
            p.text.as_deref().unwrap_or("")
        );
    }
    for n in &r.notes {
        let _ = writeln!(
            s,
            "note {} key {} vel {:.3} at sample {} ({:.3} s)",
            if n.on { "on " } else { "off" },
            n.key,
            n.velocity,
            n.time_samples,
            n.time_samples as f64 / r.sample_rate as f64
        );
    }
    let _ = writeln!(
        s,
        "processed {} samples in {} blocks, real-time factor {:.3}, late blocks {}",
        r.output_samples, r.blocks, r.realtime_factor, r.late_blocks
    );
    if to_stderr {
        eprint!("{s}");
    } else {
        print!("{s}");
    }
}

fn main() {
    let args = Args::parse();
    match run(&args) {
        Ok(report) => {
            print_human(&report, args.json);
            if args.json {
                match serde_json::to_string(&report) {
                    Ok(j) => println!("{j}"),
                    Err(e) => {
                        eprintln!("hf-clap-host: cannot serialise the report: {e}");
                        std::process::exit(1);
                    }
                }
            }
        }
        Err(e) => {
            eprintln!("hf-clap-host: error: {e:#}");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn midi_file_has_notes_at_input_time() {
        let dir = hummingface_tests::scratch_dir("clap-host-midi");
        let path = dir.join("n.mid");
        let sr = 48_000.0;
        let latency = 768u32;
        let note = |t: u64, key: u8, velocity: f64, on: bool| NoteReport {
            time_samples: t,
            key,
            velocity,
            on,
            channel: 0,
        };
        // Emitted (host output time): A3 on at 0.5 s + latency, off at 1 s + latency; C4 struck
        // at the same sample A3 is released.
        let notes = [
            note(24_000 + 768, 57, 1.0, true),
            note(48_000 + 768, 57, 0.0, false),
            note(48_000 + 768, 60, 0.5, true),
            note(72_000 + 768, 60, 0.0, false),
        ];
        write_midi(&path, &notes, latency, sr).unwrap();
        let back = hummingface_tests::read_midi_notes(&path).unwrap();
        assert_eq!(back.len(), 2, "{back:?}");
        assert_eq!((back[0].key, back[0].velocity), (57, 127));
        assert!(
            (back[0].start_s - 0.5).abs() < 1e-3 && (back[0].end_s - 1.0).abs() < 1e-3,
            "{back:?}"
        );
        assert_eq!((back[1].key, back[1].velocity), (60, 64));
        assert!(
            (back[1].start_s - 1.0).abs() < 1e-3 && (back[1].end_s - 1.5).abs() < 1e-3,
            "{back:?}"
        );
    }

    #[test]
    fn channel_mapping() {
        let st = vec![vec![1.0, 3.0], vec![3.0, 5.0]];
        assert_eq!(map_channels(&st, 1), vec![vec![2.0, 4.0]]);
        assert_eq!(
            map_channels(&st[..1], 2),
            vec![vec![1.0, 3.0], vec![1.0, 3.0]]
        );
        assert_eq!(map_channels(&st, 2), st);
    }
}
