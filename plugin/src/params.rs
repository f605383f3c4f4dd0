//! The plugin's parameters, their ranges, and the conversion to the engine's [`Controls`].
//!
//! Parameter IDs (`#[id = "..."]`) and enum variant IDs are part of every saved project and
//! preset: they never change once shipped. Display names may change freely.

use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use hummingface_runtime::generator::ListenerKind;
use hummingface_runtime::{Controls, DeviceChoice, NotePlacement, Scale};
use nice_plug::params::InternalParamMut;
use nice_plug::plugin::ParamValue;
use nice_plug::prelude::*;
use serde::{Deserialize, Serialize};

/// Version of the saved state layout (and of preset files). Bump it when a parameter's meaning
/// or range changes, or the state gains something older states must be migrated for, and
/// migrate older states in [`migrate_state`] by reading the `state-version` field.
///
/// - 1: HummingFace 0.1.0, the parameters.
/// - 2: the same parameters, plus the editor's window size (`editor-size`) and the name of the
///   last preset loaded (`preset`). A version 1 state loads with the default size and no name.
///   Later 0.1 builds add the optional `model-path` field (absent = built-in model) and the
///   `listener` parameter (absent = classic, what those states played with; new instances
///   start with network), the `timing` parameter (absent = live) and the `bypass` parameter
///   (absent = not bypassed), which older builds ignore (an unknown parameter is left out with a
///   warning), so the version stays 2.
pub const STATE_VERSION: u32 = 2;

/// Parameters added by later builds of state version 2, which states saved before them lack, with
/// the value those builds played with: absent, they take it without a warning (a project saved
/// before the listener parameter existed keeps the classic listener it was made with, though new
/// instances start with the network).
const ADDED_IN_VERSION_2: &[(&str, Before)] = &[
    ("listener", Before::Variant("classic")),
    ("timing", Before::Variant("live")),
    ("bypass", Before::Bool(false)),
];

/// What a state saved before a parameter existed played with.
enum Before {
    /// An enum parameter's variant ID.
    Variant(&'static str),
    /// A switch.
    Bool(bool),
}

impl Before {
    fn value(&self) -> ParamValue {
        match self {
            Before::Variant(id) => ParamValue::String((*id).to_string()),
            Before::Bool(b) => ParamValue::Bool(*b),
        }
    }
}

/// Persisted field holding [`STATE_VERSION`].
pub const STATE_VERSION_FIELD: &str = "state-version";

/// Bring a saved state to this build's layout before the host loads it (called from
/// `Plugin::filter_state`, which logs the returned warnings). A state from a newer build keeps
/// its version: the parameters this build knows still load, the rest is ignored.
///
/// Whatever cannot be read loads as the default, never as garbage and never as a panic: a
/// parameter that is missing, of the wrong type, not finite, or an unknown enum value becomes its
/// default; a number outside the parameter's range is clamped into it; an unknown parameter is
/// dropped; a persisted field that does not parse becomes its default. Every such repair is one
/// warning in the returned list, naming the parameter or field.
pub fn migrate_state(state: &mut PluginState) -> Vec<String> {
    let mut warnings = Vec::new();
    // Every build wrote the field; a state without it predates versioning (treated as 1).
    let saved = match state.fields.get(STATE_VERSION_FIELD) {
        None => 1,
        Some(v) => match v.trim().parse::<u32>() {
            Ok(v) => v,
            Err(_) => {
                warnings.push(format!(
                    "the state's {STATE_VERSION_FIELD} {v:?} is not a number; read as version 1"
                ));
                1
            }
        },
    };
    if saved > STATE_VERSION {
        warnings.push(format!(
            "this state was saved by a newer version (state {saved}, this build reads up to \
             {STATE_VERSION}); loading the parameters it knows"
        ));
    } else {
        // 1 → 2: the parameters are unchanged; `editor-size` and `preset` default when absent.
        state
            .fields
            .insert(STATE_VERSION_FIELD.to_string(), STATE_VERSION.to_string());
    }
    sanitize_params(state, &mut warnings);
    sanitize_fields(state, &mut warnings);
    warnings
}

/// The parameter half of [`migrate_state`].
fn sanitize_params(state: &mut PluginState, warnings: &mut Vec<String>) {
    // A scratch parameter object: its ranges, defaults and enum IDs are the authority.
    let scratch = HummingFaceParams::default();
    let map = scratch.param_map();
    state.params.retain(|id, _| {
        let known = map.iter().any(|(k, _, _)| k == id);
        if !known {
            warnings.push(format!("unknown parameter {id:?} in the state ignored"));
        }
        known
    });
    for (id, ptr, _) in &map {
        // SAFETY: `ptr` points into `scratch`, alive for this whole function.
        let (lo, hi, default) = unsafe {
            (ptr.preview_plain(0.0), ptr.preview_plain(1.0), ptr.default_plain_value())
        };
        let default_value = || match ptr {
            ParamPtr::FloatParam(_) => ParamValue::F32(default),
            ParamPtr::IntParam(_) => ParamValue::I32(default.round() as i32),
            ParamPtr::BoolParam(_) => ParamValue::Bool(default >= 0.5),
            // SAFETY: as above.
            ParamPtr::EnumParam(p) => match unsafe { (**p).unmodulated_plain_id() } {
                Some(variant) => ParamValue::String(variant.to_string()),
                None => ParamValue::I32(default.round() as i32),
            },
        };
        let Some(value) = state.params.get_mut(id) else {
            // A parameter added after the state's version was written is expected to be absent.
            match ADDED_IN_VERSION_2.iter().find(|(added, _)| added == id) {
                Some((_, before)) => {
                    state.params.insert(id.clone(), before.value());
                }
                None => {
                    warnings.push(format!("parameter {id:?} missing from the state: default {default}"));
                    state.params.insert(id.clone(), default_value());
                }
            }
            continue;
        };
        let repaired = match (ptr, &*value) {
            (ParamPtr::FloatParam(_), ParamValue::F32(v)) if !v.is_finite() => {
                Some((default_value(), format!("{v} is not a number the parameter can take")))
            }
            (ParamPtr::FloatParam(_), ParamValue::F32(v)) if *v < lo || *v > hi => Some((
                ParamValue::F32(v.clamp(lo, hi)),
                format!("{v} is outside {lo}..{hi}"),
            )),
            (ParamPtr::FloatParam(_), ParamValue::F32(_)) => None,
            (ParamPtr::IntParam(_), ParamValue::I32(v))
                if (*v as f32) < lo || (*v as f32) > hi =>
            {
                Some((
                    ParamValue::I32((*v).clamp(lo as i32, hi as i32)),
                    format!("{v} is outside {lo}..{hi}"),
                ))
            }
            (ParamPtr::IntParam(_), ParamValue::I32(_)) => None,
            (ParamPtr::BoolParam(_), ParamValue::Bool(_)) => None,
            (ParamPtr::EnumParam(_), ParamValue::I32(v)) if (*v as f32) < lo || (*v as f32) > hi => {
                Some((default_value(), format!("variant {v} does not exist")))
            }
            (ParamPtr::EnumParam(_), ParamValue::I32(_)) => None,
            // SAFETY: `p` points into `scratch`; setting its value only touches `scratch`.
            (ParamPtr::EnumParam(p), ParamValue::String(variant)) => {
                if unsafe { (**p).set_from_id(variant) } {
                    None
                } else {
                    Some((default_value(), format!("{variant:?} is not one of its values")))
                }
            }
            (_, other) => Some((default_value(), format!("{other:?} has the wrong type"))),
        };
        if let Some((new, why)) = repaired {
            warnings.push(format!("parameter {id:?} in the state: {why}; loaded as {new:?}"));
            *value = new;
        }
    }
}

/// The persisted-field half of [`migrate_state`]: each known field must hold JSON of its type.
fn sanitize_fields(state: &mut PluginState, warnings: &mut Vec<String>) {
    let defaults = HummingFaceParams::default().serialize_fields();
    let mut check = |field: &str, ok: &dyn Fn(&str) -> bool| {
        if let Some(text) = state.fields.get(field) {
            if !ok(text) {
                let default = defaults.get(field).cloned().unwrap_or_default();
                let shown: String = text.chars().take(80).collect();
                warnings.push(format!(
                    "field {field:?} in the state cannot be read ({shown:?}); default {default}"
                ));
                state.fields.insert(field.to_string(), default);
            }
        }
    };
    check("editor-size", &|t| serde_json::from_str::<EditorSize>(t).is_ok());
    check("preset", &|t| serde_json::from_str::<String>(t).is_ok());
    check(MODEL_PATH_FIELD, &|t| serde_json::from_str::<String>(t).is_ok());
    // A readable size outside the editor's limits is clamped into them.
    if let Some(size) = state.fields.get("editor-size").and_then(|t| serde_json::from_str::<EditorSize>(t).ok()) {
        if size.clamped() != size {
            let clamped = size.clamped();
            warnings.push(format!(
                "field \"editor-size\" in the state: {}×{} is outside the editor's limits; {}×{}",
                size.width, size.height, clamped.width, clamped.height
            ));
            if let Ok(text) = serde_json::to_string(&clamped) {
                state.fields.insert("editor-size".to_string(), text);
            }
        }
    }
}

/// Load a saved state (the JSON bytes nice-plug's wrappers store) into `params` the way the
/// CLAP and VST3 wrappers do (`nice_plug`'s `state::deserialize_json` then `deserialize_object`,
/// which are private to nice-plug): parse, [`migrate_state`] (as `Plugin::filter_state`), set
/// each parameter's plain value, then the persisted fields. Returns the warnings (the plugin logs
/// them), or an error for bytes that are not a state at all, in which case `params` is untouched
/// (as in the wrappers, which then report a failed load). Used by the in-process tests and the
/// state fuzz target; never panics.
pub fn load_state(params: &HummingFaceParams, bytes: &[u8]) -> Result<Vec<String>, String> {
    let mut state: PluginState =
        serde_json::from_slice(bytes).map_err(|e| format!("not a HummingFace state: {e}"))?;
    let warnings = migrate_state(&mut state);
    for (id, ptr, _) in params.param_map() {
        let Some(value) = state.params.get(&id) else { continue };
        // SAFETY: `ptr` points into `params`, which the caller keeps alive.
        unsafe {
            match (ptr, value) {
                (ParamPtr::FloatParam(p), ParamValue::F32(v)) => {
                    (*p)._internal_set_plain_value(*v);
                }
                (ParamPtr::IntParam(p), ParamValue::I32(v)) => {
                    (*p)._internal_set_plain_value(*v);
                }
                (ParamPtr::BoolParam(p), ParamValue::Bool(v)) => {
                    (*p)._internal_set_plain_value(*v);
                }
                (ParamPtr::EnumParam(p), ParamValue::I32(v)) => {
                    (*p)._internal_set_plain_value(*v);
                }
                (ParamPtr::EnumParam(p), ParamValue::String(variant)) => {
                    (*p).set_from_id(variant);
                }
                _ => {}
            }
        }
    }
    params.deserialize_fields(&state.fields);
    Ok(warnings)
}

/// Persisted field holding the user model path ([`HummingFaceParams::model_path`]).
pub const MODEL_PATH_FIELD: &str = "model-path";

/// The editor window's size in logical pixels, saved with the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditorSize {
    pub width: u32,
    pub height: u32,
}

impl EditorSize {
    /// Size of a new editor.
    pub const DEFAULT: EditorSize = EditorSize { width: 980, height: 640 };
    /// Smallest size the editor can be resized to.
    pub const MIN: EditorSize = EditorSize { width: 720, height: 480 };
    /// Largest size (a sanity bound on a saved size).
    pub const MAX: EditorSize = EditorSize { width: 4096, height: 3072 };

    /// This size inside [`EditorSize::MIN`] ..= [`EditorSize::MAX`].
    pub fn clamped(self) -> EditorSize {
        EditorSize {
            width: self.width.clamp(Self::MIN.width, Self::MAX.width),
            height: self.height.clamp(Self::MIN.height, Self::MAX.height),
        }
    }
}

/// Parameter ranges shared by the plugin parameters and the command-line renderer, so both
/// accept exactly the same values.
pub mod limits {
    use super::RangeInclusive;

    /// Dry/wet mix, 0 = dry vocal only, 1 = piano only.
    pub const MIX: RangeInclusive<f32> = 0.0..=1.0;
    /// Output gain in dB.
    pub const GAIN_DB: RangeInclusive<f32> = -24.0..=12.0;
    /// Transposition in semitones, applied after the key snap.
    pub const TRANSPOSE: RangeInclusive<i32> = -24..=24;
    /// How readily quiet or breathy singing becomes a note, 0..1.
    pub const SENSITIVITY: RangeInclusive<f32> = 0.0..=1.0;
    /// Minimum note length in milliseconds.
    pub const MIN_NOTE_MS: RangeInclusive<f32> = 0.0..=500.0;
    /// Velocity curve exponent (1 = linear).
    pub const VELOCITY_RESPONSE: RangeInclusive<f32> = 0.25..=4.0;
    /// Piano tone, −1 = dark … 1 = bright.
    pub const TONE: RangeInclusive<f32> = -1.0..=1.0;
    /// Damper release time in milliseconds.
    pub const RELEASE_MS: RangeInclusive<f32> = 10.0..=3000.0;
}

/// Tonic of the key snap. Variant order and IDs match [`hummingface_runtime::KEY_NAMES`].
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyParam {
    #[id = "c"]
    #[name = "C"]
    C,
    #[id = "c#"]
    #[name = "C#"]
    CSharp,
    #[id = "d"]
    #[name = "D"]
    D,
    #[id = "d#"]
    #[name = "D#"]
    DSharp,
    #[id = "e"]
    #[name = "E"]
    E,
    #[id = "f"]
    #[name = "F"]
    F,
    #[id = "f#"]
    #[name = "F#"]
    FSharp,
    #[id = "g"]
    #[name = "G"]
    G,
    #[id = "g#"]
    #[name = "G#"]
    GSharp,
    #[id = "a"]
    #[name = "A"]
    A,
    #[id = "a#"]
    #[name = "A#"]
    ASharp,
    #[id = "b"]
    #[name = "B"]
    B,
}

impl KeyParam {
    /// Pitch class of the tonic, 0 = C … 11 = B.
    pub fn pitch_class(self) -> u8 {
        // `to_index` follows declaration order, which is C..B (checked by a test).
        self.to_index() as u8
    }
}

/// Scale of the key snap. Variant order matches [`Scale::ALL`], IDs match [`Scale::name`]
/// (both checked by a test), so the mapping is by index.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleParam {
    #[id = "chromatic"]
    #[name = "Chromatic"]
    Chromatic,
    #[id = "major"]
    #[name = "Major"]
    Major,
    #[id = "minor"]
    #[name = "Natural minor"]
    NaturalMinor,
    #[id = "harmonic-minor"]
    #[name = "Harmonic minor"]
    HarmonicMinor,
    #[id = "major-pentatonic"]
    #[name = "Major pentatonic"]
    MajorPentatonic,
    #[id = "minor-pentatonic"]
    #[name = "Minor pentatonic"]
    MinorPentatonic,
    #[id = "blues"]
    #[name = "Blues"]
    Blues,
    #[id = "dorian"]
    #[name = "Dorian"]
    Dorian,
    #[id = "mixolydian"]
    #[name = "Mixolydian"]
    Mixolydian,
}

impl ScaleParam {
    /// The runtime's scale for this parameter value.
    pub fn scale(self) -> Scale {
        // In range by construction: the variant count equals `Scale::ALL.len()` (a test checks
        // it); `get` keeps this panic-free on the audio thread regardless.
        Scale::ALL.get(self.to_index()).copied().unwrap_or_default()
    }
}

/// Where the generator runs. Read only in `activate()`: a change takes effect the next time the
/// host activates the plugin.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceParam {
    #[id = "auto"]
    #[name = "Auto"]
    Auto,
    #[id = "cpu"]
    #[name = "CPU"]
    Cpu,
    #[id = "cuda"]
    #[name = "CUDA"]
    Cuda,
}

impl DeviceParam {
    /// The runtime's device choice for this parameter value.
    pub fn choice(self) -> DeviceChoice {
        match self {
            DeviceParam::Auto => DeviceChoice::Auto,
            DeviceParam::Cpu => DeviceChoice::Cpu,
            DeviceParam::Cuda => DeviceChoice::Cuda,
        }
    }
}

/// Which listener hears the vocal (Network by default). A change restarts the engine at the
/// next block (both listeners are built at activation; the latency stays). The built-in model
/// carries both; a model file without the trained listener runs the classic one whatever this
/// says.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerParam {
    /// The v0 listener (harmonic summation, hand-set weights): notes start at the reported
    /// latency on clean attacks; note F1 0.23 on held-out noisy clips (BENCHMARKS.md).
    #[id = "classic"]
    #[name = "Classic"]
    Classic,
    /// The trained listener (issue 3) and its note decoder, the default: note F1 0.47 live on
    /// held-out noisy clips (0.76 with the `Lookahead` note timing; BENCHMARKS.md); live, its
    /// notes start about two hops (10.7 ms) after the reported latency, when the pitch has
    /// settled.
    #[id = "network"]
    #[name = "Network"]
    Network,
}

impl ListenerParam {
    /// The runtime's listener for this parameter value.
    pub fn kind(self) -> ListenerKind {
        match self {
            ListenerParam::Classic => ListenerKind::V0,
            ListenerParam::Network => ListenerKind::Trained,
        }
    }
}

/// When the piano plays the notes heard. A change restarts the engine at the next block and
/// the latency the plugin reports follows it (the host is told).
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteTimingParam {
    /// Each note from the moment the decoder is sure of it: for singing live (latency 23.7 ms
    /// at 48 kHz with 64-sample blocks).
    #[id = "live"]
    #[name = "Live"]
    Live,
    /// Each note where it began, found by listening 181 ms further (notes placed with
    /// lookahead, as `hummingface render` places them): for recorded vocals and bounces, where
    /// the host compensates the latency (about 205 ms). Note F1 0.47 → 0.76 with the trained
    /// listener on held-out noisy clips (BENCHMARKS.md).
    #[id = "lookahead"]
    #[name = "Lookahead"]
    Lookahead,
}

impl NoteTimingParam {
    /// The runtime's placement for this parameter value.
    pub fn placement(self) -> NotePlacement {
        match self {
            NoteTimingParam::Live => NotePlacement::Live,
            NoteTimingParam::Lookahead => NotePlacement::Lookahead,
        }
    }
}

/// All parameters of the plugin, plus the persisted state version.
#[derive(Params)]
pub struct HummingFaceParams {
    /// Layout version of the saved state ([`STATE_VERSION`] when saved by this build). A state
    /// saved by a future or past version can be recognised and migrated in `filter_state`.
    #[persist = "state-version"]
    pub state_version: AtomicU32,
    /// The editor's window size (logical pixels); the editor updates it when resized.
    #[persist = "editor-size"]
    pub editor_size: Arc<Mutex<EditorSize>>,
    /// Name of the last preset loaded or saved in the editor ("" for none).
    #[persist = "preset"]
    pub preset_name: Arc<Mutex<String>>,
    /// A model file (safetensors) the plugin uses instead of the built-in model; "" for the
    /// built-in one (or `$HUMMINGFACE_MODEL` when that is set). Read at activation; a file that
    /// does not load falls back to the built-in model (see [`crate::model_choice`]).
    #[persist = "model-path"]
    pub model_path: Arc<Mutex<String>>,

    /// How the vocal is heard.
    #[nested(group = "Input")]
    pub input: InputParams,
    /// How heard pitch becomes notes.
    #[nested(group = "Notes")]
    pub notes: NoteParams,
    /// How the piano plays the notes.
    #[nested(group = "Piano")]
    pub piano: PianoParams,
    /// Dry/wet and level.
    #[nested(group = "Output")]
    pub output: OutputParams,

    /// Compute device of the generator; applied at the next activation.
    #[id = "device"]
    pub device: EnumParam<DeviceParam>,
    /// Listener (classic or the trained network); applied at the next block.
    #[id = "listener"]
    pub listener: EnumParam<ListenerParam>,
    /// Note timing (live or placed with lookahead); applied at the next block, with the
    /// latency.
    #[id = "timing"]
    pub timing: EnumParam<NoteTimingParam>,
    /// The host's bypass: the input delayed by the latency, crossfaded in 10 ms; no notes leave
    /// while it is on. Not part of presets.
    #[id = "bypass"]
    pub bypass: BoolParam,
}

/// The "Input" group.
#[derive(Params)]
pub struct InputParams {
    /// 0..1: higher hears quieter and breathier singing as notes.
    #[id = "sensitivity"]
    pub sensitivity: FloatParam,
}

/// The "Notes" group.
#[derive(Params)]
pub struct NoteParams {
    /// Milliseconds a note is held at least before it may change or stop.
    #[id = "min_note"]
    pub min_note: FloatParam,
    /// Tonic of the key snap.
    #[id = "key"]
    pub key: EnumParam<KeyParam>,
    /// Scale of the key snap (chromatic = nearest semitone).
    #[id = "scale"]
    pub scale: EnumParam<ScaleParam>,
    /// Semitones added after snapping.
    #[id = "transpose"]
    pub transpose: IntParam,
}

/// The "Piano" group.
#[derive(Params)]
pub struct PianoParams {
    /// Velocity curve exponent: below 1 lifts soft singing, above 1 needs more voice.
    #[id = "vel_resp"]
    pub velocity_response: FloatParam,
    /// −1..1: darker to brighter piano.
    #[id = "tone"]
    pub tone: FloatParam,
    /// Milliseconds of damper release after a note ends.
    #[id = "release"]
    pub release: FloatParam,
}

/// The "Output" group.
#[derive(Params)]
pub struct OutputParams {
    /// 0..1 dry/wet; the mixer smooths it.
    #[id = "mix"]
    pub mix: FloatParam,
    /// Output gain in dB; the mixer smooths it.
    #[id = "gain"]
    pub gain: FloatParam,
}

/// Linear float range over a shared limit.
fn linear(range: &RangeInclusive<f32>) -> FloatRange {
    FloatRange::Linear {
        min: *range.start(),
        max: *range.end(),
    }
}

/// Skewed float range over a shared limit whose normalized midpoint (0.5) lands on `center`.
fn skewed_around(range: &RangeInclusive<f32>, center: f32) -> FloatRange {
    let (min, max) = (*range.start(), *range.end());
    // nice-plug's Skewed range maps plain → ((plain − min) / (max − min))^factor.
    let factor = 0.5f32.ln() / ((center - min) / (max - min)).ln();
    FloatRange::Skewed { min, max, factor }
}

impl Default for HummingFaceParams {
    fn default() -> Self {
        let d = Controls::default();
        Self {
            state_version: AtomicU32::new(STATE_VERSION),
            editor_size: Arc::new(Mutex::new(EditorSize::DEFAULT)),
            preset_name: Arc::new(Mutex::new(String::new())),
            model_path: Arc::new(Mutex::new(String::new())),
            input: InputParams {
                sensitivity: FloatParam::new(
                    "Sensitivity",
                    d.sensitivity,
                    linear(&limits::SENSITIVITY),
                )
                .with_value_to_string(formatters::v2s_f32_percentage(0))
                .with_string_to_value(formatters::s2v_f32_percentage())
                .with_unit("%"),
            },
            notes: NoteParams {
                min_note: FloatParam::new(
                    "Minimum note",
                    d.min_note_ms,
                    linear(&limits::MIN_NOTE_MS),
                )
                .with_step_size(1.0)
                .with_unit(" ms"),
                key: EnumParam::new("Key", KeyParam::C),
                scale: EnumParam::new("Scale", ScaleParam::Chromatic),
                transpose: IntParam::new(
                    "Transpose",
                    d.transpose,
                    IntRange::Linear {
                        min: *limits::TRANSPOSE.start(),
                        max: *limits::TRANSPOSE.end(),
                    },
                )
                .with_unit(" st"),
            },
            piano: PianoParams {
                velocity_response: FloatParam::new(
                    "Velocity response",
                    d.velocity_response,
                    skewed_around(&limits::VELOCITY_RESPONSE, 1.0),
                )
                .with_value_to_string(formatters::v2s_f32_rounded(2)),
                tone: FloatParam::new("Tone", d.tone, linear(&limits::TONE))
                    .with_value_to_string(formatters::v2s_f32_rounded(2)),
                release: FloatParam::new(
                    "Release",
                    d.release_ms,
                    FloatRange::Skewed {
                        min: *limits::RELEASE_MS.start(),
                        max: *limits::RELEASE_MS.end(),
                        factor: FloatRange::skew_factor(-2.0),
                    },
                )
                .with_step_size(1.0)
                .with_unit(" ms"),
            },
            output: OutputParams {
                mix: FloatParam::new("Mix", 1.0, linear(&limits::MIX))
                    .with_value_to_string(formatters::v2s_f32_percentage(0))
                    .with_string_to_value(formatters::s2v_f32_percentage())
                    .with_unit("%"),
                gain: FloatParam::new("Gain", 0.0, linear(&limits::GAIN_DB))
                    .with_step_size(0.1)
                    .with_unit(" dB"),
            },
            device: EnumParam::new("Device", DeviceParam::Auto).non_automatable(),
            listener: EnumParam::new("Listener", ListenerParam::Network).non_automatable(),
            timing: EnumParam::new("Note timing", NoteTimingParam::Live).non_automatable(),
            bypass: BoolParam::new("Bypass", false).make_bypass(),
        }
    }
}

impl HummingFaceParams {
    /// The state layout version this parameter object was saved with (or [`STATE_VERSION`]).
    pub fn state_version(&self) -> u32 {
        self.state_version.load(Ordering::Relaxed)
    }
}

/// The engine's controls from the current (unsmoothed) parameter values. Allocation-free and
/// lock-free: called from `process()` once per host block.
pub fn controls_from_params(params: &HummingFaceParams) -> Controls {
    Controls {
        sensitivity: params.input.sensitivity.value(),
        min_note_ms: params.notes.min_note.value(),
        key: params.notes.key.value().pitch_class(),
        scale: params.notes.scale.value().scale(),
        transpose: params.notes.transpose.value(),
        velocity_response: params.piano.velocity_response.value(),
        tone: params.piano.tone.value(),
        release_ms: params.piano.release.value(),
    }
    .sanitized()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hummingface_runtime::KEY_NAMES;

    #[test]
    fn key_variants_match_runtime_key_names() {
        assert_eq!(KeyParam::variants(), &KEY_NAMES[..]);
        for i in 0..12 {
            assert_eq!(KeyParam::from_index(i).pitch_class() as usize, i);
        }
    }

    #[test]
    fn scale_variants_match_runtime_scales() {
        let ids = ScaleParam::ids().expect("scale variants carry stable ids");
        assert_eq!(ids.len(), Scale::ALL.len());
        for (i, scale) in Scale::ALL.into_iter().enumerate() {
            assert_eq!(ids[i], scale.name());
            assert_eq!(ScaleParam::from_index(i).scale(), scale);
        }
    }

    #[test]
    fn defaults_give_default_controls() {
        let params = HummingFaceParams::default();
        assert_eq!(controls_from_params(&params), Controls::default());
        assert_eq!(params.output.mix.value(), 1.0);
        assert_eq!(params.output.gain.value(), 0.0);
        assert_eq!(params.state_version(), STATE_VERSION);
        // The version travels with the saved state.
        let fields = params.serialize_fields();
        assert_eq!(fields.get("state-version").map(String::as_str), Some("2"));
        assert_eq!(
            fields.get("editor-size").map(String::as_str),
            Some(r#"{"width":980,"height":640}"#)
        );
    }

    /// A state saved by HummingFace 0.1.0 (state version 1), as the VST3 handed it to a host.
    /// Made with the 0.1.0 bundle in pedalboard: load_plugin, set key D, scale natural minor,
    /// transpose 3, release 800 ms, mix 75 %, gain −2.5 dB, sensitivity 62 %, process 0.1 s,
    /// read `raw_state`, and decode the IComponent chunk (JUCE base64) to this JSON.
    /// `tests/data/hummingface-0.1.0.vst3state` is the raw blob; `tests/tests/presets.rs`
    /// loads it into the current VST3 in pedalboard.
    const STATE_0_1_0: &str = include_str!("../../tests/data/hummingface-0.1.0-state.json");

    #[test]
    fn a_version_1_state_migrates_to_the_current_layout() {
        let mut state: PluginState = serde_json::from_str(STATE_0_1_0).unwrap();
        assert_eq!(state.fields.get("state-version").map(String::as_str), Some("1"));
        let before = serde_json::to_string(&state.params).unwrap();
        migrate_state(&mut state);
        assert_eq!(
            state.fields.get("state-version").map(String::as_str),
            Some(STATE_VERSION.to_string().as_str())
        );
        // The parameters are unchanged (same IDs, same meaning); the `listener`, `timing` and
        // `bypass` parameters, added later, take what those builds played with (no warning), and
        // the new fields their defaults.
        let listener = state.params.remove("listener");
        assert_eq!(listener.map(|v| serde_json::to_string(&v).unwrap()).as_deref(), Some(r#"{"string":"classic"}"#));
        let timing = state.params.remove("timing");
        assert_eq!(timing.map(|v| serde_json::to_string(&v).unwrap()).as_deref(), Some(r#"{"string":"live"}"#));
        let bypass = state.params.remove("bypass");
        assert_eq!(bypass.map(|v| serde_json::to_string(&v).unwrap()).as_deref(), Some(r#"{"bool":false}"#));
        assert_eq!(serde_json::to_string(&state.params).unwrap(), before);
        assert!(!state.fields.contains_key("editor-size"));

        let params = HummingFaceParams::default();
        params.deserialize_fields(&state.fields);
        assert_eq!(params.state_version(), STATE_VERSION);
        assert_eq!(*params.editor_size.lock().unwrap(), EditorSize::DEFAULT);
    }

    #[test]
    fn states_from_newer_builds_and_bad_fields_do_not_panic() {
        let mut state: PluginState = serde_json::from_str(STATE_0_1_0).unwrap();
        state.fields.insert("state-version".into(), "99".into());
        migrate_state(&mut state);
        assert_eq!(state.fields.get("state-version").map(String::as_str), Some("99"));
        state.fields.insert("state-version".into(), "not a number".into());
        state.fields.insert("editor-size".into(), "{\"width\": -3}".into());
        migrate_state(&mut state);
        let params = HummingFaceParams::default();
        params.deserialize_fields(&state.fields);
        assert_eq!(params.state_version(), STATE_VERSION);
        assert_eq!(*params.editor_size.lock().unwrap(), EditorSize::DEFAULT);
    }

    #[test]
    fn velocity_response_is_centered_on_one() {
        let range = skewed_around(&limits::VELOCITY_RESPONSE, 1.0);
        assert!((range.normalize(1.0) - 0.5).abs() < 1e-5);
        assert!((range.unnormalize(0.5) - 1.0).abs() < 1e-4);
    }

    #[test]
    fn parameter_ids_are_stable() {
        let params = HummingFaceParams::default();
        let mut ids: Vec<String> = params
            .param_map()
            .into_iter()
            .map(|(id, _, _)| id)
            .collect();
        ids.sort();
        let mut want = vec![
            "bypass",
            "device",
            "gain",
            "key",
            "listener",
            "min_note",
            "mix",
            "release",
            "scale",
            "sensitivity",
            "timing",
            "tone",
            "transpose",
            "vel_resp",
        ];
        want.sort();
        assert_eq!(ids, want);
    }
}
