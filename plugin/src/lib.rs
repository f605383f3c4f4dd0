//! HummingFace: sing, and a piano plays what you sang.
//!
//! The nice-plug [`Plugin`] (VST3 + CLAP) around `hummingface_runtime`'s engine. The plugin only
//! coordinates: parameters live in [`params`], the audio-thread work in [`processor::Processor`],
//! the editor in [`editor`] (fed through [`monitor`]), presets in [`presets`], and the file
//! formats the command-line renderer uses in [`audio_file`], [`midi_file`] and [`picture`].

use std::num::NonZeroU32;
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
#[derive(Debug, Clone, Copy, PartialEq)]
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
}

/// The plugin instance.
pub struct HummingFace {
    /// Parameters, shared with the host wrapper and the editor.
    params: Arc<HummingFaceParams>,
    /// Pitch feed, meters and engine description for the editor.
    monitor: Arc<Monitor>,
    /// The editor window's size and whether it is open (nice-plug-egui's own state).
    editor_state: Arc<EguiEditorState>,
    /// Generator weights, loaded on first activation and kept for re-activations.
    model: Option<Arc<Model>>,
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
        params::migrate_state(state);
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
        };

        if self.setup == Some(setup) {
            if let Some(processor) = &self.processor {
                context.set_latency_samples(processor.latency_samples());
                return true;
            }
        }

        // Drop the old engine (joining its worker, freeing its device memory) before making a
        // new one.
        self.processor = None;
        self.setup = None;
        self.monitor.set_engine(None);

        let model = match &self.model {
            Some(model) => model.clone(),
            // The embedded weights are checked by the test suite, but a panic must never cross
            // into the host: a bad build fails to activate instead.
            None => match std::panic::catch_unwind(Model::embedded) {
                Ok(model) => self.model.insert(model).clone(),
                Err(_) => {
                    nice_error!("HummingFace: the built-in model does not load");
                    return false;
                }
            },
        };
        let cfg = EngineConfig {
            sample_rate: setup.sample_rate,
            max_block: setup.max_block,
            mode: setup.mode,
            device: setup.device,
        };
        match Processor::with_feed(cfg, setup.channels, model, Some(self.monitor.feed.clone())) {
            Ok(processor) => {
                let engine = processor.engine();
                self.monitor.set_engine(Some(EngineInfo {
                    stats: engine.stats(),
                    device: engine.device_name().to_string(),
                    device_note: engine.device_note().map(str::to_string),
                    latency_samples: processor.latency_samples(),
                    sample_rate: setup.sample_rate,
                    hop: engine.timing().hop,
                    offline: setup.mode == EngineMode::Offline,
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
        let controls = controls_from_params(&self.params);
        let output = &self.params.output;
        // Meters only while the editor shows them.
        let metering = self.monitor.metering();
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
        ProcessStatus::Tail(processor.tail_samples(controls.release_ms))
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
