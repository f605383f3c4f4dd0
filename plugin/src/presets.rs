//! Presets: a named sound (every parameter but the compute device, the listener and the note
//! timing) as a small JSON file.
//!
//! ```json
//! { "name": "Soft ballad", "description": "…", "version": 2,
//!   "params": { "sensitivity": 0.6, "min_note": 90.0, "key": "c", "scale": "chromatic",
//!               "transpose": 0, "vel_resp": 0.6, "tone": -0.4, "release": 1200.0,
//!               "mix": 1.0, "gain": 0.0 } }
//! ```
//!
//! The keys of `params` are the parameter IDs (stable, like a saved project's); values are plain
//! values in the parameter's unit (ms, dB, semitones, 0..1), `key` and `scale` are the enum IDs.
//! `version` is the [`STATE_VERSION`] the preset was written with, so a preset and a saved state
//! migrate the same way.
//!
//! Factory presets are `assets/presets/*.json`, built into every binary. User presets live in
//! [`user_preset_dir`]. The editor loads and saves both; the CLI takes `--preset NAME`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use hummingface_runtime::{Controls, Scale, KEY_NAMES};
use nice_plug::prelude::{Enum, Param, ParamSetter};
use serde::{Deserialize, Serialize};

use crate::atomic_file::PendingFile;
use crate::params::{limits, HummingFaceParams, KeyParam, ScaleParam, STATE_VERSION};

/// Factory presets: (file stem, JSON), in the order menus list them.
pub const FACTORY: [(&str, &str); 6] = [
    ("natural-grand", include_str!("../../assets/presets/natural-grand.json")),
    ("soft-ballad", include_str!("../../assets/presets/soft-ballad.json")),
    ("staccato", include_str!("../../assets/presets/staccato.json")),
    ("free-pitch", include_str!("../../assets/presets/free-pitch.json")),
    ("pentatonic-a-minor", include_str!("../../assets/presets/pentatonic-a-minor.json")),
    ("low-voice-octave-up", include_str!("../../assets/presets/low-voice-octave-up.json")),
];

/// Environment variable naming the user preset folder (instead of the default).
pub const PRESET_DIR_ENV: &str = "HUMMINGFACE_PRESET_DIR";

/// What went wrong with a preset. Every message names the preset or file.
#[derive(Debug, thiserror::Error)]
pub enum PresetError {
    #[error("{what}: not a HummingFace preset: {reason}")]
    Parse { what: String, reason: String },
    #[error("{what}: written by a newer HummingFace (preset version {version}; this build reads up to {STATE_VERSION})")]
    Newer { what: String, version: u32 },
    #[error("{what}: {param} = {value} is outside {min} … {max}")]
    OutOfRange { what: String, param: &'static str, value: f64, min: f64, max: f64 },
    #[error("{what}: unknown {param} '{value}' (expected one of {expected})")]
    UnknownChoice { what: String, param: &'static str, value: String, expected: String },
    #[error("no preset named '{name}' (factory presets: {factory}; user presets in {dir})")]
    NotFound { name: String, factory: String, dir: String },
    #[error("{path}: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error("a preset needs a name with at least one letter or digit")]
    EmptyName,
}

/// The musician's sound: every parameter except the compute device (a property of the
/// machine, not of the sound), the listener and the note timing (like the device, applied at
/// activation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sound {
    /// Listener, tracker and piano settings.
    pub controls: Controls,
    /// Dry/wet, 0 = vocal only … 1 = piano only.
    pub mix: f32,
    /// Output gain, dB.
    pub gain_db: f32,
}

impl Default for Sound {
    fn default() -> Self {
        Sound { controls: Controls::default(), mix: 1.0, gain_db: 0.0 }
    }
}

/// The `params` object of a preset file, by parameter ID.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresetParams {
    /// 0..1.
    pub sensitivity: f32,
    /// Milliseconds.
    pub min_note: f32,
    /// Key ID: `c`, `c#`, … `b`.
    pub key: String,
    /// Scale ID: `chromatic`, `major`, `minor`, …
    pub scale: String,
    /// Semitones.
    pub transpose: i32,
    /// Velocity curve exponent.
    pub vel_resp: f32,
    /// −1..1.
    pub tone: f32,
    /// Milliseconds.
    pub release: f32,
    /// 0..1.
    pub mix: f32,
    /// dB.
    pub gain: f32,
}

/// A preset file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    /// Shown in menus.
    pub name: String,
    /// One line about when to use it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// [`STATE_VERSION`] of the build that wrote it.
    pub version: u32,
    pub params: PresetParams,
}

/// Lower-case key IDs, index 0 = C (the `KeyParam` IDs).
fn key_ids() -> &'static [&'static str] {
    KeyParam::ids().unwrap_or(&[])
}

impl Preset {
    /// A preset of `sound` under `name`, at this build's version. Values are rounded to four
    /// decimals, so a value that went through a parameter's normalized range (and came back
    /// 1e-7 off) saves as it was typed.
    pub fn from_sound(name: &str, description: &str, sound: &Sound) -> Preset {
        let c = sound.controls.sanitized();
        let tidy = |v: f32| ((f64::from(v) * 1e4).round() / 1e4) as f32;
        Preset {
            name: name.trim().to_string(),
            description: description.trim().to_string(),
            version: STATE_VERSION,
            params: PresetParams {
                sensitivity: tidy(c.sensitivity),
                min_note: tidy(c.min_note_ms),
                key: key_ids().get(usize::from(c.key)).unwrap_or(&"c").to_string(),
                scale: c.scale.name().to_string(),
                transpose: c.transpose,
                vel_resp: tidy(c.velocity_response),
                tone: tidy(c.tone),
                release: tidy(c.release_ms),
                mix: tidy(sound.mix),
                gain: tidy(sound.gain_db),
            },
        }
    }

    /// Parse and check a preset file's text; `what` names it in errors.
    pub fn parse(what: &str, json: &str) -> Result<Preset, PresetError> {
        let preset: Preset = serde_json::from_str(json)
            .map_err(|e| PresetError::Parse { what: what.to_string(), reason: e.to_string() })?;
        if preset.version > STATE_VERSION {
            return Err(PresetError::Newer { what: what.to_string(), version: preset.version });
        }
        // Versions 1 and 2 share the parameter layout (see `params::migrate_state`).
        preset.sound(what)?;
        Ok(preset)
    }

    /// The sound, every value checked against the parameter's range.
    pub fn sound(&self, what: &str) -> Result<Sound, PresetError> {
        let p = &self.params;
        let range = |param: &'static str, v: f32, r: &std::ops::RangeInclusive<f32>| {
            if r.contains(&v) {
                Ok(v)
            } else {
                Err(PresetError::OutOfRange {
                    what: what.to_string(),
                    param,
                    value: f64::from(v),
                    min: f64::from(*r.start()),
                    max: f64::from(*r.end()),
                })
            }
        };
        let key = key_ids()
            .iter()
            .position(|id| id.eq_ignore_ascii_case(p.key.trim()))
            .ok_or_else(|| PresetError::UnknownChoice {
                what: what.to_string(),
                param: "key",
                value: p.key.clone(),
                expected: key_ids().join(", "),
            })? as u8;
        let scale = Scale::from_name(p.scale.trim()).ok_or_else(|| PresetError::UnknownChoice {
            what: what.to_string(),
            param: "scale",
            value: p.scale.clone(),
            expected: Scale::ALL.iter().map(|s| s.name()).collect::<Vec<_>>().join(", "),
        })?;
        if !limits::TRANSPOSE.contains(&p.transpose) {
            return Err(PresetError::OutOfRange {
                what: what.to_string(),
                param: "transpose",
                value: f64::from(p.transpose),
                min: f64::from(*limits::TRANSPOSE.start()),
                max: f64::from(*limits::TRANSPOSE.end()),
            });
        }
        Ok(Sound {
            controls: Controls {
                sensitivity: range("sensitivity", p.sensitivity, &limits::SENSITIVITY)?,
                min_note_ms: range("min_note", p.min_note, &limits::MIN_NOTE_MS)?,
                key,
                scale,
                transpose: p.transpose,
                velocity_response: range("vel_resp", p.vel_resp, &limits::VELOCITY_RESPONSE)?,
                tone: range("tone", p.tone, &limits::TONE)?,
                release_ms: range("release", p.release, &limits::RELEASE_MS)?,
            },
            mix: range("mix", p.mix, &limits::MIX)?,
            gain_db: range("gain", p.gain, &limits::GAIN_DB)?,
        })
    }

    /// The preset as a file's text: pretty JSON and a final newline.
    pub fn to_json(&self) -> String {
        // Serialising plain strings and numbers cannot fail.
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Write the preset to `path`, whole or not at all.
    pub fn save(&self, path: &Path) -> Result<(), PresetError> {
        let json = self.to_json();
        let io = |reason: String| PresetError::Io { path: path.to_path_buf(), reason };
        PendingFile::write(path, |f| f.write_all(json.as_bytes()).map_err(|e| e.to_string()))
            .map_err(io)?
            .commit()
            .map_err(io)
    }

    /// Read and check a preset file.
    pub fn load(path: &Path) -> Result<Preset, PresetError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| PresetError::Io { path: path.to_path_buf(), reason: e.to_string() })?;
        Preset::parse(&path.display().to_string(), &text)
    }
}

/// The factory presets, parsed. They are checked by the test suite, so a failure here is a
/// build defect; such a preset is left out rather than panicking in a host.
pub fn factory_presets() -> Vec<Preset> {
    FACTORY
        .iter()
        .filter_map(|(stem, json)| Preset::parse(&format!("factory preset {stem}"), json).ok())
        .collect()
}

/// Where user presets are saved: `$HUMMINGFACE_PRESET_DIR`, else
/// `$XDG_CONFIG_HOME/HummingFace/presets`, else `~/.config/HummingFace/presets`.
pub fn user_preset_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(PRESET_DIR_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    config.join("HummingFace").join("presets")
}

/// File name for a preset called `name`: lower case, letters and digits, `-` between words.
pub fn file_stem(name: &str) -> Result<String, PresetError> {
    let mut stem = String::new();
    for c in name.trim().chars() {
        if c.is_alphanumeric() {
            stem.extend(c.to_lowercase());
        } else if !stem.is_empty() && !stem.ends_with('-') {
            stem.push('-');
        }
    }
    let stem = stem.trim_end_matches('-').to_string();
    if stem.is_empty() {
        Err(PresetError::EmptyName)
    } else {
        Ok(stem)
    }
}

/// User presets in `dir` that load, by name; files that do not load are reported beside them.
pub fn user_presets(dir: &Path) -> (Vec<(PathBuf, Preset)>, Vec<PresetError>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (good, bad);
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    for path in paths {
        match Preset::load(&path) {
            Ok(p) => good.push((path, p)),
            Err(e) => bad.push(e),
        }
    }
    (good, bad)
}

/// Save `preset` as a user preset in `dir` (created if missing); returns the file written.
pub fn save_user_preset(dir: &Path, preset: &Preset) -> Result<PathBuf, PresetError> {
    let stem = file_stem(&preset.name)?;
    std::fs::create_dir_all(dir)
        .map_err(|e| PresetError::Io { path: dir.to_path_buf(), reason: e.to_string() })?;
    let path = dir.join(format!("{stem}.json"));
    preset.save(&path)?;
    Ok(path)
}

/// A preset by name (factory stem or name, then a user preset's stem or name, case-insensitive)
/// or by path to a `.json` file.
pub fn find_preset(name: &str) -> Result<Preset, PresetError> {
    let wanted = name.trim();
    let path = Path::new(wanted);
    if path.extension().is_some_and(|x| x == "json") || path.components().count() > 1 {
        return Preset::load(path);
    }
    let stem = file_stem(wanted).unwrap_or_default();
    for ((file, json), preset) in FACTORY.iter().zip(factory_presets()) {
        let _ = json;
        if *file == stem || preset.name.eq_ignore_ascii_case(wanted) {
            return Ok(preset);
        }
    }
    let dir = user_preset_dir();
    let (user, _) = user_presets(&dir);
    for (path, preset) in user {
        let file_matches = path.file_stem().is_some_and(|s| s.to_string_lossy() == stem);
        if file_matches || preset.name.eq_ignore_ascii_case(wanted) {
            return Ok(preset);
        }
    }
    Err(PresetError::NotFound {
        name: wanted.to_string(),
        factory: FACTORY.iter().map(|(s, _)| *s).collect::<Vec<_>>().join(", "),
        dir: dir.display().to_string(),
    })
}

/// The plugin's current sound (unmodulated parameter values).
pub fn sound_from_params(params: &HummingFaceParams) -> Sound {
    Sound {
        controls: crate::params::controls_from_params(params),
        mix: params.output.mix.unmodulated_plain_value(),
        gain_db: params.output.gain.unmodulated_plain_value(),
    }
}

/// Set every parameter of `sound` through `setter` (one gesture per parameter, as if the user
/// turned each knob), so the host records the change. The device is left as it is.
pub fn apply_sound(params: &HummingFaceParams, setter: &ParamSetter, sound: &Sound) {
    fn set<P: Param>(setter: &ParamSetter, param: &P, value: P::Plain) {
        setter.begin_set_parameter(param);
        setter.set_parameter(param, value);
        setter.end_set_parameter(param);
    }
    let c = sound.controls.sanitized();
    set(setter, &params.input.sensitivity, c.sensitivity);
    set(setter, &params.notes.min_note, c.min_note_ms);
    set(setter, &params.notes.key, KeyParam::from_index(usize::from(c.key)));
    let scale = Scale::ALL.iter().position(|s| *s == c.scale).unwrap_or(0);
    set(setter, &params.notes.scale, ScaleParam::from_index(scale));
    set(setter, &params.notes.transpose, c.transpose);
    set(setter, &params.piano.velocity_response, c.velocity_response);
    set(setter, &params.piano.tone, c.tone);
    set(setter, &params.piano.release, c.release_ms);
    set(setter, &params.output.mix, sound.mix);
    set(setter, &params.output.gain, sound.gain_db);
}

/// Key names as menus show them (`C`, `C#`, …), index 0 = C.
pub fn key_name(key: u8) -> &'static str {
    KEY_NAMES[usize::from(key % 12)]
}

/// Presets by file stem, for listings.
pub fn factory_by_stem() -> BTreeMap<&'static str, Preset> {
    FACTORY.iter().map(|(s, _)| *s).zip(factory_presets()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nice_plug::context::gui::GuiContext;
    use nice_plug::prelude::*;
    use std::sync::Arc;

    /// A host for [`apply_sound`]: applies every parameter change at once, as a wrapper does
    /// after its next process call.
    struct ImmediateHost;

    impl GuiContextInner for ImmediateHost {
        fn plugin_api(&self) -> PluginApi {
            PluginApi::Clap
        }
        unsafe fn raw_begin_set_parameter(&self, _param: ParamPtr) {}
        unsafe fn raw_set_parameter_normalized(&self, param: ParamPtr, normalized: f32) {
            // SAFETY: `param` points into the `HummingFaceParams` the test keeps alive.
            unsafe { param._internal_set_normalized_value(normalized) };
        }
        unsafe fn raw_end_set_parameter(&self, _param: ParamPtr) {}
        fn get_state(&self) -> PluginState {
            unimplemented!("not used by apply_sound")
        }
        fn set_state(&self, _state: PluginState) {
            unimplemented!("not used by apply_sound")
        }
        fn request_restart(&self) {}
    }

    #[test]
    fn every_factory_preset_loads_applies_and_saves_back_equal() {
        assert_eq!(factory_presets().len(), FACTORY.len(), "every factory preset parses");
        let ctx = GuiContext::new(Arc::new(ImmediateHost));
        for ((stem, json), preset) in FACTORY.iter().zip(factory_presets()) {
            assert_eq!(file_stem(&preset.name).unwrap(), *stem, "file named after the preset");
            assert_eq!(preset.version, STATE_VERSION, "{stem}");
            let sound = preset.sound(stem).unwrap();
            // Through the plugin's parameters and back.
            let params = HummingFaceParams::default();
            apply_sound(&params, &ctx.param_setter(), &sound);
            let back = sound_from_params(&params);
            let c = (back.controls, sound.controls);
            assert_eq!((c.0.key, c.0.scale, c.0.transpose), (c.1.key, c.1.scale, c.1.transpose), "{stem}");
            for (a, b) in [
                (c.0.sensitivity, c.1.sensitivity),
                (c.0.min_note_ms, c.1.min_note_ms),
                (c.0.velocity_response, c.1.velocity_response),
                (c.0.tone, c.1.tone),
                (c.0.release_ms, c.1.release_ms),
                (back.mix, sound.mix),
                (back.gain_db, sound.gain_db),
            ] {
                assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "{stem}: the parameters hold {b}, not {a}");
            }
            let saved = Preset::from_sound(&preset.name, &preset.description, &back);
            assert_eq!(saved, preset, "{stem}");
            assert_eq!(saved.to_json(), *json, "{stem}: saved back byte for byte");
        }
    }

    #[test]
    fn bad_presets_are_clear_errors() {
        let good = FACTORY[0].1;
        let cases: Vec<(String, &str)> = vec![
            ("{".into(), "not a HummingFace preset"),
            ("[]".into(), "not a HummingFace preset"),
            (good.replace("\"version\": 2", "\"version\": 99"), "newer HummingFace"),
            (good.replace("\"mix\": 1.0", "\"mix\": 7.0"), "mix = 7 is outside 0 … 1"),
            (good.replace("\"key\": \"c\"", "\"key\": \"h\""), "unknown key 'h'"),
            (good.replace("\"scale\": \"chromatic\"", "\"scale\": \"lydian\""), "unknown scale 'lydian'"),
            (good.replace("\"tone\"", "\"colour\""), "unknown field `colour`"),
            (good.replace("\"transpose\": 0", "\"transpose\": 48"), "transpose = 48 is outside"),
        ];
        for (text, want) in cases {
            let err = Preset::parse("x.json", &text).expect_err(want).to_string();
            assert!(err.starts_with("x.json: ") && err.contains(want), "{err:?} should say {want:?}");
        }
    }

    #[test]
    fn user_presets_save_list_and_find() {
        let dir = tempfile::tempdir().unwrap();
        let sound = Sound {
            controls: Controls { key: 2, scale: Scale::Dorian, transpose: -5, ..Controls::default() },
            mix: 0.5,
            gain_db: -6.0,
        };
        let preset = Preset::from_sound("  My Dorian, take 2! ", "", &sound);
        let path = save_user_preset(dir.path(), &preset).unwrap();
        assert_eq!(path.file_name().unwrap(), "my-dorian-take-2.json");
        std::fs::write(dir.path().join("broken.json"), "{ nope").unwrap();
        let (good, bad) = user_presets(dir.path());
        assert_eq!(good.len(), 1);
        assert_eq!(good[0].1.sound("x").unwrap(), sound);
        assert_eq!(bad.len(), 1);
        assert!(bad[0].to_string().contains("broken.json"));
        assert!(matches!(file_stem(" !? "), Err(PresetError::EmptyName)));
        // By path; by factory stem and by name.
        assert_eq!(find_preset(path.to_str().unwrap()).unwrap(), preset);
        assert_eq!(find_preset("soft-ballad").unwrap().name, "Soft ballad");
        assert_eq!(find_preset("SOFT BALLAD").unwrap().name, "Soft ballad");
        assert!(find_preset("no such preset").unwrap_err().to_string().contains("natural-grand"));
    }
}
