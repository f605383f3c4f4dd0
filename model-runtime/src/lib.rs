//! HummingFace runtime: everything that is not host specific.
//!
//! Data path (see `ARCHITECTURE.md`): the audio side ([`Engine::process`]) frames the vocal and
//! runs the forward FFT; the inference worker runs the [`generator::Generator`] (Candle
//! listener → note tracker → pianist) and hands back piano spectra, which the audio side
//! inverse-transforms and overlap-adds. [`render_offline`] runs the same engine over a file.

// DSP loops index several arrays by the same bin, sample or partial; an index reads better there
// than zipped iterators.
#![allow(clippy::needless_range_loop)]

pub mod bench;
pub mod controls;
pub mod decoder;
pub mod engine;
pub mod eval;
pub mod features;
pub mod feed;
pub mod generator;
pub mod keyfind;
pub mod listener;
pub mod listener_net;
pub mod lookahead;
pub mod mixer;
pub mod model;
pub mod pianist;
pub mod pianist_net;
pub mod render;
pub mod singer;
pub mod timing;
pub mod tracker;
#[cfg(feature = "training")]
pub mod train;
pub mod v0;

pub use controls::{key_from_name, Controls, Scale, KEY_NAMES};
pub use feed::{FeedFrame, PitchFeed};
pub use keyfind::{estimate_key, KeyEstimate};
pub use engine::{Engine, EngineConfig, EngineError, EngineStats, MidiInEvent, NotePlacement, NoteEvent, ProcessMode, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE};
pub use mixer::Mixer;
pub use model::{DeviceChoice, Model, ModelError, CUDA_COMPILED};
pub use render::{render_midi, render_offline, MidiRenderResult, PitchCurve, RenderOptions, RenderResult, RenderedNote, TimedMidi};
pub use singer::{Singer, SungNote, VoiceType, Vowel};
pub use timing::Timing;
