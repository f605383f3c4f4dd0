//! HummingFace: sing, and a piano plays what you sang.
//!
//! The nice-plug [`Plugin`] (VST3 + CLAP) around `hummingface_runtime`'s engine. The plugin only
//! coordinates: parameters live in [`params`], the audio-thread work in [`processor::Processor`],
//! the editor in [`editor`] (fed through [`monitor`]), presets in [`presets`], and the file
//! formats the command-line renderer uses in [`audio_file`], [`midi_file`] and [`picture`].

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hummingface_runtime::{DeviceChoice, EngineConfig, Model, ProcessMode as EngineMode};
use nice_plug::midi::{Channel, Key, VoiceID};
use nice_plug::prelude::*;
use nice_plug_egui::{EguiEditor, EguiEditorState};

pub mod atomic_file;
pub mod audio_file;
pub mod editor;
pub mod midi_file;
pub mod monitor;
pub mod params;
pub mod picture;
pub mod presets;
pub mod processor;

pub use monitor::{EngineInfo, Monitor};
pub use params::{controls_from_params, HummingFaceParams, STATE_VERSION};
pub use processor::Processor;

/// The engine settings a [`Processor`] was built for; `activate()` reuses the processor when the
/// host activates again with the same settings (hosts may do so several times in a row).
#[derive(Debug, Clone, PartialEq)]
struct ActiveSetup {
    /// Host sample rate in Hz.
    sample_rate: f32,
    /// Host's maximum block size in samples (after the zero fallback).
    max_block: usize,
    /// Whether the engine waits for every frame (offline bounce) or never waits.
    mode: EngineMode,
    /// Compute device asked for by the `device` parameter.
    device: DeviceChoice,
    /// Output channel count of the chosen layout.
    channels: usize,
    /// The model file asked for (`None`: the built-in model), see [`model_request`].
    model: Option<PathBuf>,
}

/// Environment variable naming a model file (safetensors) for every plugin instance whose saved
/// state names none (its `model-path` field is empty).
pub const MODEL_ENV: &str = "HUMMINGFACE_MODEL";

/// The model file an instance asks for: its own `model-path` (saved with the project) when set,
/// else `$HUMMINGFACE_MODEL` when set and not empty, else `None` (the built-in model).
pub fn model_request(params: &HummingFaceParams) -> Option<PathBuf> {
    let own = params
        .model_path
        .lock()
        .map(|p| p.trim().to_string())
        .unwrap_or_default();
    if !own.is_empty() {
        return Some(PathBuf::from(own));
    }
    std::env::var_os(MODEL_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The model an activation runs, and how it was chosen.
#[derive(Debug, Clone)]
pub struct ModelChoice {
    /// The weights (the built-in ones when the requested file did not load).
    pub model: Arc<Model>,
    /// The file they were read from; `None` for the built-in model.
    pub file: Option<PathBuf>,
    /// Why the requested file is not used (missing, truncated, wrong shapes, NaN weights, …),
    /// naming the file; `None` when the request was honoured.
    pub fallback: Option<String>,
}

impl ModelChoice {
    /// One line for the editor: which model runs and from where.
    pub fn describe(&self) -> String {
        match &self.file {
            Some(file) => format!("{} ({})", self.model.name(), file.display()),
            None => format!("{} (built in)", self.model.name()),
        }
    }
}

/// The built-in model, or `None` (logged) in a build whose embedded weights do not load, so that
/// no panic crosses into the host.
fn embedded_model() -> Option<Arc<Model>> {
    match std::panic::catch_unwind(Model::embedded) {
        Ok(model) => Some(model),
        Err(_) => {
            nice_error!("HummingFace: the built-in model does not load");
            None
        }
    }
}

/// Load the model `request` names (a file) or the built-in one. A file that does not load —
/// missing, unreadable, not safetensors, truncated, a tensor missing or of the wrong shape or
/// type, a NaN or infinite weight — falls back to the built-in model with the reason in
/// [`ModelChoice::fallback`] (and a warning in the log). `None` only if the built-in model itself
/// does not load.
pub fn choose_model(request: Option<&Path>) -> Option<ModelChoice> {
    let fallback = match request {
        None => None,
        Some(path) => match Model::from_file(path).and_then(Model::playable) {
            Ok(model) => {
                nice_log!("HummingFace: model {} from {}", model.name(), path.display());
                return Some(ModelChoice {
                    model: Arc::new(model),
                    file: Some(path.to_path_buf()),
                    fallback: None,
                });
            }
            Err(err) => {
                let reason = format!(
                    "model file {} not used: {err}; using the built-in model",
                    path.display()
                );
                nice_warn!("HummingFace: {reason}");
                Some(reason)
            }
        },
    };
    Some(ModelChoice { model: embedded_model()?, file: None, fallback })
}

/// The plugin instance.
pub struct HummingFace {
    /// Parameters, shared with the host wrapper and the editor.
    params: Arc<HummingFaceParams>,
    /// Pitch feed, meters and engine description for the editor.
    monitor: Arc<Monitor>,
    /// The editor window's size and whether it is open (nice-plug-egui's own state).
    editor_state: Arc<EguiEditorState>,
    /// Generator weights for the model file asked for (`None`: built in), loaded on the first
    /// activation and kept for re-activations that ask for the same file.
    model: Option<(Option<PathBuf>, ModelChoice)>,
    /// Engine + mixer + buffers; `None` until a successful `activate()` and after `deactivate()`.
    processor: Option<Processor>,
    /// What `processor` was built for.
    setup: Option<ActiveSetup>,
}

impl Default for HummingFace {
    fn default() -> Self {
        // Nothing expensive here: hosts instantiate plugins to scan them.
        HummingFace {
            params: Arc::new(HummingFaceParams::default()),
            monitor: Arc::new(Monitor::default()),
            editor_state: editor::default_state(),
            model: None,
            processor: None,
            setup: None,
        }
    }
}

impl HummingFace {
    /// The runtime's processing mode for a host processing mode: only an offline bounce waits.
    pub fn engine_mode(mode: ProcessMode) -> EngineMode {
        match mode {
            ProcessMode::Offline => EngineMode::Offline,
            ProcessMode::Realtime | ProcessMode::Buffered => EngineMode::Realtime,
        }
    }

    /// The parameters (and persisted fields such as `model_path`), typed.
    pub fn hf_params(&self) -> Arc<HummingFaceParams> {
        self.params.clone()
    }

    /// What the editor is shown: the running engine, the model, the meters.
    pub fn monitor(&self) -> Arc<Monitor> {
        self.monitor.clone()
    }
}

impl Plugin for HummingFace {
    const NAME: &'static str = "HummingFace";
    const VENDOR: &'static str = "HummingFace";
    const URL: &'static str = "https://github.com/hummingface/hummingface";
    const EMAIL: &'static str = "hello@hummingface.invalid";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    const AUDIO_IO_LAYOUTS: &'static [AudioIOLayout] = &[
        AudioIOLayout {
            main_input_channels: NonZeroU32::new(2),
            main_output_channels: NonZeroU32::new(2),
            ..AudioIOLayout::const_default()
        },
        AudioIOLayout {
            main_input_channels: NonZeroU32::new(1),
            main_output_channels: NonZeroU32::new(1),
            ..AudioIOLayout::const_default()
        },
    ];

    /// Host automation lands on its sample: nice-plug splits a block at every parameter event
    /// (CLAP `param_value`, VST3 parameter queues) and calls `process` for each part. The engine
    /// takes the controls at every analysis hop and the mixer smooths mix and gain per sample,
    /// so a part of any length is fine (blocks of 1 sample are tested), and an offline bounce
    /// with automation renders the same whatever the host's block size
    /// (`tests/tests/clap_automation.rs`).
    const SAMPLE_ACCURATE_AUTOMATION: bool = true;

    type Editor = EguiEditor<editor::EditorApp>;
    type SysExMessage = ();
    const MIDI_OUTPUT: MidiConfig = MidiConfig::Basic;
    type BackgroundTask = ();

    fn params(&self) -> Arc<dyn Params> {
        self.params.clone()
    }

    fn editor(&mut self, _async_executor: AsyncExecutor<Self>) -> Option<Self::Editor> {
        editor::create(
            self.params.clone(),
            self.monitor.clone(),
            self.editor_state.clone(),
        )
    }

    fn filter_state(state: &mut PluginState) {
        for warning in params::migrate_state(state) {
            nice_warn!("HummingFace state: {warning}");
        }
    }

    fn activate(
        &mut self,
        audio_io_layout: &AudioIOLayout,
        buffer_config: &BufferConfig,
        context: &mut impl ActivateContext<Self>,
    ) -> bool {
        let max_block = match buffer_config.max_buffer_size as usize {
            0 => processor::FALLBACK_MAX_BLOCK,
            n => n,
        };
        let setup = ActiveSetup {
            sample_rate: buffer_config.sample_rate,
            max_block,
            mode: Self::engine_mode(buffer_config.process_mode),
            device: self.params.device.value().choice(),
            channels: audio_io_layout
                .main_output_channels
                .map_or(1, NonZeroU32::get) as usize,
            model: model_request(&self.params),
        };

        let placement = self.params.timing.value().placement();
        let listener = self.params.listener.value().kind();
        if self.setup.as_ref() == Some(&setup) {
            if let Some(processor) = &mut self.processor {
                processor.set_listener(listener);
                processor.set_placement(placement);
                context.set_latency_samples(processor.latency_samples());
                return true;
            }
        }

        // Drop the old engine (joining its worker, freeing its device memory) before making a
        // new one.
        self.processor = None;
        self.setup = None;
        self.monitor.set_engine(None);

        // A model that loaded is kept for later activations asking for the same file; a file
        // that did not load is tried again (it may have been fixed in place meanwhile).
        let choice = match &self.model {
            Some((request, choice)) if *request == setup.model && choice.fallback.is_none() => {
                choice.clone()
            }
            _ => {
                self.model = None;
                match choose_model(setup.model.as_deref()) {
                    Some(choice) => {
                        self.model = Some((setup.model.clone(), choice.clone()));
                        choice
                    }
                    None => return false,
                }
            }
        };
        // A model file without the trained listener runs the classic one whatever is asked.
        let model = choice.model.listening_with(listener);
        let cfg = EngineConfig {
            sample_rate: setup.sample_rate,
            max_block: setup.max_block,
            mode: setup.mode,
            device: setup.device,
        };
        match Processor::placing(
            cfg,
            setup.channels,
            model,
            Some(self.monitor.feed.clone()),
            placement,
        ) {
            Ok(processor) => {
                let engine = processor.engine();
                self.monitor.set_engine(Some(EngineInfo {
                    stats: engine.stats(),
                    device: engine.device_name().to_string(),
                    device_note: engine.device_note().map(str::to_string),
                    sample_rate: setup.sample_rate,
                    hop: engine.timing().hop,
                    offline: setup.mode == EngineMode::Offline,
                    model: choice.describe(),
                    model_note: choice.fallback.clone(),
                }));
                context.set_latency_samples(processor.latency_samples());
                nice_log!(
                    "HummingFace active: {} Hz, blocks up to {}, {:?}, device {}, latency {} samples",
                    setup.sample_rate,
                    setup.max_block,
                    setup.mode,
                    processor.engine().device_name(),
                    processor.latency_samples()
                );
                if let Some(note) = processor.engine().device_note() {
                    nice_warn!("HummingFace device: {note}");
                }
                self.processor = Some(processor);
                self.setup = Some(setup);
                true
            }
            Err(err) => {
                nice_error!("HummingFace could not start its engine: {err}");
                false
            }
        }
    }

    fn reset(&mut self) {
        if let Some(processor) = &mut self.processor {
            processor.reset();
        }
    }

    fn process(
        &mut self,
        buffer: &mut Buffer,
        _aux: &mut AuxiliaryBuffers,
        context: &mut impl ProcessContext<Self>,
    ) -> ProcessStatus {
        let Some(processor) = &mut self.processor else {
            // Not activated: leave the input in place.
            return ProcessStatus::Normal;
        };
        // The listener and the note timing change here, between blocks: the engine restarts
        // (with the new latency for the timing, which the host is told and compensates from
        // then on).
        processor.set_listener(self.params.listener.value().kind());
        let placement = self.params.timing.value().placement();
        if processor.placement() != placement {
            processor.set_placement(placement);
            context.set_latency_samples(processor.latency_samples());
        }
        // The host's bypass lands on its sample (nice-plug splits the block there).
        processor.set_bypass(self.params.bypass.value());
        let controls = controls_from_params(&self.params);
        let output = &self.params.output;
        // Meters only while the editor shows them. nice-plug-egui never tells the editor that its
        // window closed (`NiceEguiApp::editor_closed` is not called), so the meters and the pitch
        // feed go off here once no window is open; the editor turns them on again on every frame
        // it draws (atomic loads and stores only).
        let mut metering = self.monitor.metering();
        if metering && !self.editor_state.is_open() {
            self.monitor.set_watching(false);
            metering = false;
        }
        if metering {
            self.monitor.note_input(buffer.as_slice());
        }
        // The detected notes leave as MIDI, sample-accurate and aligned with the piano audio.
        processor.process_with_notes(
            buffer.as_slice(),
            &controls,
            output.mix.value(),
            output.gain.value(),
            &mut |ev| {
                let key = Key::Number(ev.note.min(127));
                let event = if ev.on {
                    NoteEvent::NoteOn {
                        timing: ev.timing,
                        voice_id: VoiceID::ID(i32::from(ev.note)),
                        channel: Channel::Number(0),
                        key,
                        velocity: ev.velocity.clamp(0.0, 1.0),
                    }
                } else {
                    NoteEvent::NoteOff {
                        timing: ev.timing,
                        voice_id: VoiceID::ID(i32::from(ev.note)),
                        channel: Channel::Number(0),
                        key,
                        velocity: 0.0,
                    }
                };
                // A full host event queue drops the event; nothing else can be done here.
                let _ = context.try_send_event(event);
            },
        );
        if metering {
            self.monitor.note_output(buffer.as_slice());
        }
        // Bypassed, what is left to come out is the delayed input: the latency.
        let release_ms = if processor.fully_bypassed() { 0.0 } else { controls.release_ms };
        ProcessStatus::Tail(processor.tail_samples(release_ms))
    }

    fn deactivate(&mut self) {
        // Free the engine's worker thread and device memory while the plugin sleeps.
        self.processor = None;
        self.setup = None;
        self.monitor.set_engine(None);
    }
}

impl ClapPlugin for HummingFace {
    const CLAP_ID: &'static str = "com.hummingface.hummingface";
    const CLAP_DESCRIPTION: Option<&'static str> = Some("Sing, and a piano plays what you sang");
    const CLAP_MANUAL_URL: Option<&'static str> = None;
    const CLAP_SUPPORT_URL: Option<&'static str> = None;
    const CLAP_FEATURES: &'static [ClapFeature] = &[
        ClapFeature::AudioEffect,
        ClapFeature::PitchShifter,
        ClapFeature::Mono,
        ClapFeature::Stereo,
    ];
}

impl Vst3Plugin for HummingFace {
    /// Never change: hosts identify the plugin (and saved projects refer to it) by this.
    const VST3_CLASS_ID: [u8; 16] = *b"HummingFacePiano";
    const VST3_SUBCATEGORIES: &'static [Vst3SubCategory] =
        &[Vst3SubCategory::Fx, Vst3SubCategory::PitchShift];
}

nice_export_clap!(HummingFace);
nice_export_vst3!(HummingFace);
