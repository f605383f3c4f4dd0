//! The editor (nice-plug-egui): a scrolling piano roll of the last eight seconds with the sung
//! pitch over the detected notes, a keyboard with the sounding key lit, every parameter grouped
//! as Input, Notes, Piano and Output, a key suggestion from the recent notes, the engine's
//! latency, device, inference load and late frames, input and output meters, and presets.
//!
//! Data comes from [`Monitor`] (atomics and the lock-free pitch feed); the editor turns the feed
//! and the meters on when it opens and off when it closes. The window is resizable; its size is
//! saved with the plugin state (`editor-size`).

pub mod roll;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use egui::{
    Align, Color32, ComboBox, Grid, Layout, Pos2, Rect, RichText, ScrollArea, Stroke, Ui,
    UiBuilder, Vec2,
};
use nice_plug::context::gui::GuiContext;
use nice_plug::editor::dpi::LogicalSize;
use nice_plug::prelude::*;
use nice_plug_egui::baseview::WindowSize;
use nice_plug_egui::resizable_window::ResizableWindow;
use nice_plug_egui::widgets::ParamSlider;
use nice_plug_egui::{
    create_egui_editor, EguiEditor, EguiEditorState, EguiNiceSettings, Frame, NiceEguiApp,
    RepaintNotifier,
};

use hummingface_runtime::{estimate_key, KeyEstimate, Scale};

use crate::monitor::Monitor;
use crate::params::{EditorSize, HummingFaceParams, KeyParam, ScaleParam};
use crate::presets::{self, Preset};

/// Environment variable: when set to a path, the editor writes the screen rectangles of its main
/// widgets there as JSON (physical pixels, relative to the window) whenever they move. Lets a
/// test drive the editor with real pointer events without guessing where things are.
pub const LAYOUT_ENV: &str = "HUMMINGFACE_EDITOR_LAYOUT";

/// Whether the editor closes its window on SIGINT/SIGTERM/SIGHUP (the standalone asks for it).
static CLOSE_ON_SIGNALS: AtomicBool = AtomicBool::new(false);
/// Set by the signal handlers registered for [`CLOSE_ON_SIGNALS`].
static SIGNALLED: OnceLock<Option<Arc<AtomicBool>>> = OnceLock::new();

/// For the standalone: close the editor window on SIGINT, SIGTERM or SIGHUP, so the standalone
/// stops the audio thread, deactivates the plugin and exits 0.
///
/// nice-plug's standalone traps those signals itself (ctrlc), but only stops when no editor is
/// open; with an editor it waits for the window to close. The editor therefore registers its own
/// flag when it opens (signal-hook chains to ctrlc's handler, which was installed first) and
/// closes the window when the flag is set. Never called inside a plugin host: a plugin must not
/// take a host's signals.
pub fn close_on_signals() {
    CLOSE_ON_SIGNALS.store(true, Ordering::Release);
}

/// The flag the signals set, registered on first use; `None` unless [`close_on_signals`] was
/// called (or registration failed).
fn signal_flag() -> Option<Arc<AtomicBool>> {
    if !CLOSE_ON_SIGNALS.load(Ordering::Acquire) {
        return None;
    }
    SIGNALLED
        .get_or_init(|| {
            let flag = Arc::new(AtomicBool::new(false));
            for sig in [
                signal_hook::consts::SIGINT,
                signal_hook::consts::SIGTERM,
                signal_hook::consts::SIGHUP,
            ] {
                if let Err(e) = signal_hook::flag::register(sig, flag.clone()) {
                    nice_error!("HummingFace: cannot watch signal {sig}: {e}");
                    return None;
                }
            }
            Some(flag)
        })
        .clone()
}

/// Whether one of the signals in [`close_on_signals`] has arrived since the editor opened (always
/// false when the standalone did not ask for them, or before the editor window first opened).
pub fn close_signal_received() -> bool {
    SIGNALLED
        .get()
        .and_then(Option::as_ref)
        .is_some_and(|f| f.load(Ordering::Relaxed))
}

/// Set when the window of an editor opened with [`close_on_signals`] on has closed.
static WINDOW_CLOSED: AtomicBool = AtomicBool::new(false);

/// Kept in the egui context of the standalone's editor window; the context, and with it this,
/// is dropped when the window closes (by hand or on a signal). nice-plug-egui does not tell the
/// editor that its window closed (`NiceEguiApp::editor_closed` is never called) and its
/// window-open flag stays up in the standalone (the wrapper keeps the editor handle to the end),
/// so this is how the standalone learns it.
struct WindowGuard;

impl Drop for WindowGuard {
    fn drop(&mut self) {
        WINDOW_CLOSED.store(true, Ordering::Release);
    }
}

/// Whether the editor window of the standalone (an editor opened after [`close_on_signals`]) has
/// closed: the standalone is stopping. Always false inside a plugin host.
pub fn window_closed() -> bool {
    WINDOW_CLOSED.load(Ordering::Acquire)
}

/// nice-plug-egui's state for a new plugin instance: the default size (a saved size is applied
/// when the window opens, since the state loads after the editor is made).
pub fn default_state() -> Arc<EguiEditorState> {
    let EditorSize { width, height } = EditorSize::DEFAULT;
    EguiEditorState::from_size(LogicalSize::new(f64::from(width), f64::from(height)), 1.0)
}

/// The editor for `Plugin::editor()`.
pub fn create(
    params: Arc<HummingFaceParams>,
    monitor: Arc<Monitor>,
    state: Arc<EguiEditorState>,
) -> Option<EguiEditor<EditorApp>> {
    let repaint = RepaintNotifier::new();
    let size = |s: EditorSize| LogicalSize::new(s.width as f32, s.height as f32);
    let settings = EguiNiceSettings::new()
        .with_tile("HummingFace")
        .with_resize_hint(
            ResizeHint::RESIZABLE
                .with_min_max_logical_size(Some(size(EditorSize::MIN)), Some(size(EditorSize::MAX))),
        );
    let app = EditorApp::new(params, monitor, repaint.clone());
    create_egui_editor(state, repaint, settings, app)
}

/// Peak meter ballistics.
#[derive(Debug, Clone, Copy)]
struct Meter {
    /// Level shown, dBFS.
    db: f32,
}

/// Lowest level a meter shows, dBFS.
const METER_FLOOR_DB: f32 = -60.0;
/// Highest level a meter shows, dBFS.
const METER_TOP_DB: f32 = 6.0;
/// How fast a meter falls, dB per second.
const METER_FALL_DB_PER_S: f32 = 24.0;

impl Meter {
    fn new() -> Meter {
        Meter { db: METER_FLOOR_DB }
    }

    /// Rise at once to `peak` (linear), fall slowly.
    fn update(&mut self, peak: f32, dt: f32) {
        let db = if peak > 0.0 { 20.0 * peak.log10() } else { METER_FLOOR_DB };
        self.db = db.max(self.db - METER_FALL_DB_PER_S * dt).max(METER_FLOOR_DB);
    }
}

/// Inference load from the engine's counters, measured over about half a second.
#[derive(Debug, Default)]
struct Load {
    /// Counters at the start of the current measurement: (time s, frames done, total ns).
    since: Option<(f64, u64, u64)>,
    /// Last measured load, percent of the hop's duration.
    percent: Option<f32>,
    /// Late frames at the last look, and when their count last went up (time s).
    late: (u64, f64),
}

/// The editor's state (lives as long as the plugin instance; the window comes and goes).
pub struct EditorApp {
    params: Arc<HummingFaceParams>,
    monitor: Arc<Monitor>,
    /// Asked for a repaint every frame while open: the roll moves continuously.
    repaint: RepaintNotifier,
    /// Set while the window is open.
    gui: Option<GuiContext>,
    /// Frames read from the pitch feed.
    history: roll::History,
    /// Input and output meters.
    meters: [Meter; 2],
    /// Time of the previous frame, seconds (egui's clock).
    last_time: Option<f64>,
    load: Load,
    presets: PresetUi,
    /// The saved window size still to be applied (the state loads after the window is made).
    size_to_restore: Option<EditorSize>,
    /// Whether size changes are saved (not before the saved size was applied).
    save_size: bool,
    /// Where to write the layout ([`LAYOUT_ENV`]) and what was written last.
    layout: Option<(PathBuf, String)>,
    /// Rectangles of the widgets named in the layout, this frame (logical points).
    rects: Vec<(&'static str, Rect)>,
    /// Set by a signal when the standalone should close (see [`close_on_signals`]).
    close_flag: Option<Arc<AtomicBool>>,
    /// The model file path being typed (starts as the saved `model-path`).
    model_edit: Option<String>,
}

/// Preset menu and save box.
#[derive(Debug, Default)]
struct PresetUi {
    /// Factory presets, then user presets (path, preset).
    list: Vec<(Option<PathBuf>, Preset)>,
    /// Name typed for saving.
    save_name: String,
    /// Last message: (text, is an error).
    message: Option<(String, bool)>,
}

impl PresetUi {
    /// Re-read the factory and user presets.
    fn refresh(&mut self) {
        self.list = presets::factory_presets().into_iter().map(|p| (None, p)).collect();
        let (user, bad) = presets::user_presets(&presets::user_preset_dir());
        self.list.extend(user.into_iter().map(|(path, p)| (Some(path), p)));
        if let Some(err) = bad.first() {
            self.message = Some((format!("skipped a user preset: {err}"), true));
        }
    }
}

impl EditorApp {
    fn new(params: Arc<HummingFaceParams>, monitor: Arc<Monitor>, repaint: RepaintNotifier) -> Self {
        EditorApp {
            params,
            monitor,
            repaint,
            gui: None,
            history: roll::History::new(),
            meters: [Meter::new(), Meter::new()],
            last_time: None,
            load: Load::default(),
            presets: PresetUi { save_name: "My sound".into(), ..PresetUi::default() },
            size_to_restore: None,
            save_size: false,
            layout: None,
            rects: Vec::new(),
            close_flag: None,
            model_edit: None,
        }
    }

    /// The saved window size.
    fn saved_size(&self) -> EditorSize {
        self.params.editor_size.lock().map(|s| *s).unwrap_or(EditorSize::DEFAULT).clamped()
    }

    /// Remember a widget's rectangle for the layout file.
    fn mark(&mut self, name: &'static str, rect: Rect) {
        if self.layout.is_some() {
            self.rects.push((name, rect));
        }
    }

    /// Write the layout file when it changed.
    fn write_layout(&mut self, ctx: &egui::Context) {
        let Some((path, last)) = &mut self.layout else { return };
        let ppp = ctx.pixels_per_point();
        let mut map = serde_json::Map::new();
        for (name, r) in self.rects.drain(..) {
            let px = |v: f32| (v * ppp).round();
            map.insert(name.into(), serde_json::json!([px(r.left()), px(r.top()), px(r.right()), px(r.bottom())]));
        }
        // The notes the roll shows, bottom row first.
        map.insert("roll-notes".into(), serde_json::json!([self.history.low(), self.history.low() + roll::SPAN]));
        let text = serde_json::Value::Object(map).to_string();
        if text != *last {
            let written = crate::atomic_file::PendingFile::write(path, |f| {
                use std::io::Write;
                f.write_all(text.as_bytes()).map_err(|e| e.to_string())
            })
            .and_then(|p| p.commit());
            if let Err(e) = written {
                nice_error!("HummingFace: cannot write the editor layout to {}: {e}", path.display());
            }
            *last = text;
        }
    }

    fn top_bar(&mut self, ui: &mut Ui, setter: &ParamSetter) {
        ui.label(RichText::new("HummingFace").strong().size(18.0).color(roll::colors::NOTE));
        ui.add_space(12.0);
        ui.label("Preset");
        let current = self.params.preset_name.lock().map(|n| n.clone()).unwrap_or_default();
        let mut chosen = None;
        ComboBox::from_id_salt("preset")
            .width(190.0)
            .selected_text(if current.is_empty() { "—".to_string() } else { current.clone() })
            .show_ui(ui, |ui| {
                let mut user_started = false;
                for (i, (path, preset)) in self.presets.list.iter().enumerate() {
                    if path.is_some() && !user_started {
                        user_started = true;
                        ui.separator();
                    }
                    let label = ui.selectable_label(preset.name == current, &preset.name);
                    let label = if preset.description.is_empty() { label } else { label.on_hover_text(&preset.description) };
                    if label.clicked() {
                        chosen = Some(i);
                    }
                }
            });
        if let Some(i) = chosen {
            let (_, preset) = &self.presets.list[i];
            match preset.sound(&preset.name) {
                Ok(sound) => {
                    presets::apply_sound(&self.params, setter, &sound);
                    if let Ok(mut n) = self.params.preset_name.lock() {
                        *n = preset.name.clone();
                    }
                    self.presets.save_name = preset.name.clone();
                    self.presets.message = Some((format!("loaded {}", preset.name), false));
                }
                Err(e) => self.presets.message = Some((e.to_string(), true)),
            }
        }
        ui.add_space(12.0);
        let name_box = ui.add(egui::TextEdit::singleline(&mut self.presets.save_name).desired_width(130.0));
        self.mark("preset-name", name_box.rect);
        let save = ui.button("Save preset").on_hover_text(format!(
            "save the current sound as a user preset in {}",
            presets::user_preset_dir().display()
        ));
        self.mark("save", save.rect);
        if save.clicked() {
            let sound = presets::sound_from_params(&self.params);
            let preset = Preset::from_sound(&self.presets.save_name, "", &sound);
            match presets::save_user_preset(&presets::user_preset_dir(), &preset) {
                Ok(path) => {
                    if let Ok(mut n) = self.params.preset_name.lock() {
                        *n = preset.name.clone();
                    }
                    self.presets.refresh();
                    self.presets.message = Some((format!("saved {}", path.display()), false));
                }
                Err(e) => self.presets.message = Some((e.to_string(), true)),
            }
        }
        if let Some((text, error)) = &self.presets.message {
            let color = if *error { Color32::from_rgb(0xff, 0x6b, 0x6b) } else { roll::colors::LABEL };
            ui.label(RichText::new(text).color(color).small());
        }
    }

    /// The controls column: every parameter, grouped.
    fn controls(&mut self, ui: &mut Ui, setter: &ParamSetter) {
        let params = self.params.clone();
        // Room for the labels and the value boxes beside the sliders.
        let width = (ui.available_width() - 200.0).clamp(70.0, 180.0);
        let slider = |ui: &mut Ui, p: &FloatParam| ui.add(ParamSlider::for_param(p, setter).with_width(width));
        // The device is read at activation: a change asks the host for one.
        let mut restart = false;

        group(ui, "Input", |ui| {
            Grid::new("input").num_columns(2).show(ui, |ui| {
                ui.label("Sensitivity");
                slider(ui, &params.input.sensitivity);
                ui.end_row();
                ui.label("Listener");
                enum_combo(ui, "listener", &params.listener, setter).on_hover_text(
                    "Network: the trained listener, about twice the note accuracy of Classic on noisy \
                     and reverberant singing, notes about 11 ms later. Classic: harmonic summation, \
                     notes on time on clean attacks. Switching restarts the engine",
                );
                ui.end_row();
            });
        });

        group(ui, "Notes", |ui| {
            Grid::new("notes").num_columns(2).show(ui, |ui| {
                ui.label("Timing");
                enum_combo(ui, "timing", &params.timing, setter).on_hover_text(
                    "Live: each note as soon as the listener is sure of it, for singing through the \
                     plugin (about 24 ms latency). Lookahead: each note where it began, heard 181 ms \
                     further on, for recorded vocals and bounces (the host compensates the larger \
                     latency). Switching restarts the engine",
                );
                ui.end_row();
                ui.label("Key");
                enum_combo(ui, "key", &params.notes.key, setter);
                ui.end_row();
                ui.label("Scale");
                enum_combo(ui, "scale", &params.notes.scale, setter);
                ui.end_row();
                ui.label("Transpose");
                ui.add(ParamSlider::for_param(&params.notes.transpose, setter).with_width(width));
                ui.end_row();
                ui.label("Minimum note");
                slider(ui, &params.notes.min_note).on_hover_text(
                    "a note sounds at least this long through a break in the voice. With Lookahead \
                     timing, a note held this long (up to 50 ms) is never taken for a quick \
                     correction: lower it below 50 ms for very fast runs",
                );
                ui.end_row();
            });
            self.key_suggestion(ui, setter);
        });

        group(ui, "Piano", |ui| {
            Grid::new("piano").num_columns(2).show(ui, |ui| {
                ui.label("Velocity response");
                slider(ui, &params.piano.velocity_response);
                ui.end_row();
                ui.label("Tone");
                slider(ui, &params.piano.tone);
                ui.end_row();
                ui.label("Release");
                slider(ui, &params.piano.release);
                ui.end_row();
            });
        });

        group(ui, "Output", |ui| {
            Grid::new("output").num_columns(2).show(ui, |ui| {
                ui.label("Mix");
                let mix = slider(ui, &params.output.mix);
                self.mark("mix", mix.rect);
                ui.end_row();
                ui.label("Gain");
                slider(ui, &params.output.gain);
                ui.end_row();
                ui.label("Bypass");
                let bypass = switch(ui, &params.bypass, setter);
                self.mark("bypass", bypass.rect);
                bypass.on_hover_text(
                    "the vocal as it came in, delayed by the latency (so it stays in time), \
                     crossfaded in 10 ms; the notes on the MIDI output end and none start. \
                     The listener keeps listening",
                );
                ui.end_row();
                ui.label("Device");
                let before = params.device.value();
                enum_combo(ui, "device", &params.device, setter)
                    .on_hover_text("where the generator runs; a change asks the host to restart the plugin");
                if params.device.value() != before {
                    restart = true;
                }
                ui.end_row();
            });
        });
        if restart {
            if let Some(gui) = &self.gui {
                gui.request_restart();
            }
        }
    }

    /// "Suggested: A minor [Use]" from the recent notes.
    fn key_suggestion(&mut self, ui: &mut Ui, setter: &ParamSetter) {
        let durations = self.history.note_durations();
        let sung: f32 = durations.iter().map(|d| d.1).sum();
        let estimate = if sung >= 2.0 { estimate_key(durations) } else { None };
        ui.horizontal(|ui| match estimate {
            Some(KeyEstimate { key, scale, correlation, .. }) => {
                let name = format!("{} {}", presets::key_name(key), if scale == Scale::Major { "major" } else { "minor" });
                ui.label(format!("Suggested: {name}")).on_hover_text(format!(
                    "from the notes of the last {} s (Krumhansl–Kessler key profiles, r = {correlation:.2})",
                    roll::KEPT_SECONDS
                ));
                let current = (self.params.notes.key.value().pitch_class(), self.params.notes.scale.value().scale());
                if current == (key, scale) {
                    ui.label(RichText::new("in use").small().color(roll::colors::LABEL));
                } else if ui.button("Use").on_hover_text(format!("set the key snap to {name}")).clicked() {
                    let notes = &self.params.notes;
                    setter.begin_set_parameter(&notes.key);
                    setter.set_parameter(&notes.key, KeyParam::from_index(usize::from(key)));
                    setter.end_set_parameter(&notes.key);
                    let index = Scale::ALL.iter().position(|s| *s == scale).unwrap_or(0);
                    setter.begin_set_parameter(&notes.scale);
                    setter.set_parameter(&notes.scale, ScaleParam::from_index(index));
                    setter.end_set_parameter(&notes.scale);
                }
            }
            None => {
                ui.label(RichText::new("Sing a few notes for a key suggestion").small().color(roll::colors::LABEL));
            }
        });
    }

    /// Latency, device, load, late frames and the two meters.
    fn status(&mut self, ui: &mut Ui, now: f64) {
        let info = self.monitor.engine();
        ui.horizontal(|ui| {
            match &info {
                Some(info) => {
                    let latency = info.stats.latency_samples.load(std::sync::atomic::Ordering::Relaxed);
                    let ms = latency as f32 * 1000.0 / info.sample_rate.max(1.0);
                    ui.label(format!("Latency {ms:.1} ms ({latency} samples)"));
                    ui.separator();
                    let device = ui.label(format!("Device {}", info.device));
                    if let Some(note) = &info.device_note {
                        device.on_hover_text(note);
                    }
                    ui.separator();
                    let stats = &info.stats;
                    let done = stats.frames_done.load(Ordering::Relaxed);
                    let total_ns = stats.inference_ns_total.load(Ordering::Relaxed);
                    match self.load.since {
                        Some((t0, f0, n0)) if now - t0 >= 0.5 => {
                            if done > f0 {
                                let hop_ns = info.hop as f64 / f64::from(info.sample_rate.max(1.0)) * 1e9;
                                let per_frame = total_ns.saturating_sub(n0) as f64 / (done - f0) as f64;
                                self.load.percent = Some((per_frame / hop_ns * 100.0) as f32);
                            }
                            self.load.since = Some((now, done, total_ns));
                        }
                        None => self.load.since = Some((now, done, total_ns)),
                        _ => {}
                    }
                    ui.label(match self.load.percent {
                        Some(p) => format!("Load {p:.1} %"),
                        None => "Load —".into(),
                    })
                    .on_hover_text("inference time per frame, as a share of the frame's duration");
                    ui.separator();
                    let late = stats.late_frames.load(Ordering::Relaxed);
                    if late > self.load.late.0 {
                        self.load.late = (late, now);
                    }
                    let recent = now - self.load.late.1 < 2.0 && late > 0;
                    let color = if recent { Color32::from_rgb(0xff, 0x6b, 0x6b) } else { roll::colors::LABEL };
                    ui.label(RichText::new(format!("Late frames {late}")).color(color)).on_hover_text(
                        "frames whose piano was not ready in time (faded instead); red while it happens",
                    );
                    if info.offline {
                        ui.label(RichText::new("offline").small());
                    }
                }
                None => {
                    ui.label(RichText::new("Engine not running").color(roll::colors::LABEL));
                }
            }
        });
        self.model_line(ui, info.as_ref());
        ui.horizontal(|ui| {
            for (name, meter) in ["In", "Out"].iter().zip(self.meters) {
                ui.label(*name);
                let (rect, _) = ui.allocate_exact_size(Vec2::new(180.0, 12.0), egui::Sense::hover());
                paint_meter(ui.painter(), rect, meter.db);
                ui.label(RichText::new(if meter.db > METER_FLOOR_DB { format!("{:5.1} dB", meter.db) } else { "  −∞ dB".into() }).monospace().small());
                ui.add_space(10.0);
            }
            if self.params.bypass.value() {
                let label = ui
                    .label(RichText::new("Bypassed").strong().color(BYPASSED))
                    .on_hover_text("the host's bypass (or Output › Bypass) is on: the vocal passes, delayed by the latency; no notes");
                self.mark("bypassed", label.rect);
            }
        });
    }
}

impl EditorApp {
    /// The model running and the model file: a path field ("" = built in, or
    /// `$HUMMINGFACE_MODEL`), "Use" (saves the path in the state and asks the host to restart the
    /// plugin, which loads it), and, in red, why a file asked for is not used.
    fn model_line(&mut self, ui: &mut Ui, info: Option<&crate::EngineInfo>) {
        let saved = self.params.model_path.lock().map(|p| p.clone()).unwrap_or_default();
        let mut edit = self.model_edit.take().unwrap_or_else(|| saved.clone());
        let mut apply = false;
        let mut field_rect = Rect::NOTHING;
        ui.horizontal(|ui| {
            ui.label("Model");
            match info {
                Some(info) => {
                    let trained = info.stats.trained_listener.load(std::sync::atomic::Ordering::Relaxed);
                    let listener = if trained { "network listener" } else { "classic listener" };
                    ui.label(RichText::new(format!("{}, {listener}", info.model)).monospace().small())
                }
                None => ui.label(RichText::new("—").color(roll::colors::LABEL)),
            };
            ui.separator();
            let field = ui.add(
                egui::TextEdit::singleline(&mut edit)
                    .hint_text(format!("model file (.safetensors); empty: ${}", crate::MODEL_ENV))
                    .desired_width(220.0),
            );
            field_rect = field.rect;
            apply = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            apply |= ui.add_enabled(edit.trim() != saved.trim(), egui::Button::new("Use")).clicked();
        });
        self.mark("model-path", field_rect);
        if let Some(note) = info.and_then(|i| i.model_note.as_deref()) {
            let shown = ui.label(RichText::new(note).color(Color32::from_rgb(0xff, 0x6b, 0x6b)).small());
            self.mark("model-note", shown.rect);
        }
        if apply {
            let path = edit.trim().to_string();
            if let Ok(mut p) = self.params.model_path.lock() {
                *p = path;
            }
            // The model is loaded at activation: the host deactivates and activates the plugin.
            if let Some(gui) = &self.gui {
                gui.request_restart();
            }
        }
        self.model_edit = Some(edit);
    }
}

/// A titled group box.
fn group(ui: &mut Ui, title: &str, add: impl FnOnce(&mut Ui)) {
    ui.group(|ui| {
        ui.set_width(ui.available_width());
        ui.label(RichText::new(title).strong());
        add(ui);
    });
    ui.add_space(4.0);
}

/// A menu of an enum parameter's values; a choice is one gesture.
fn enum_combo<T: Enum + PartialEq + 'static>(
    ui: &mut Ui,
    id: &str,
    param: &EnumParam<T>,
    setter: &ParamSetter,
) -> egui::Response {
    let current = param.value().to_index();
    let names = T::variants();
    let mut selected = current;
    let response = ComboBox::from_id_salt(id)
        .width(120.0)
        .selected_text(names.get(current).copied().unwrap_or("?"))
        .show_ui(ui, |ui| {
            for (i, name) in names.iter().enumerate() {
                ui.selectable_value(&mut selected, i, *name);
            }
        })
        .response;
    if selected != current {
        setter.begin_set_parameter(param);
        setter.set_parameter(param, T::from_index(selected));
        setter.end_set_parameter(param);
    }
    response
}

/// The colour of the status row's "Bypassed".
pub const BYPASSED: Color32 = Color32::from_rgb(0xff, 0xb3, 0x47);

/// A checkbox for a switch parameter; a click is one gesture.
fn switch(ui: &mut Ui, param: &BoolParam, setter: &ParamSetter) -> egui::Response {
    let mut on = param.value();
    let response = ui.checkbox(&mut on, "");
    if on != param.value() {
        setter.begin_set_parameter(param);
        setter.set_parameter(param, on);
        setter.end_set_parameter(param);
    }
    response
}

/// A horizontal peak meter: green, yellow above −12 dBFS, red above 0.
fn paint_meter(painter: &egui::Painter, rect: Rect, db: f32) {
    painter.rect_filled(rect, 2.0, Color32::from_rgb(0x14, 0x15, 0x19));
    painter.rect_stroke(rect, 2.0, Stroke::new(1.0, roll::colors::GRID), egui::StrokeKind::Outside);
    let x_of = |db: f32| rect.left() + (db - METER_FLOOR_DB) / (METER_TOP_DB - METER_FLOOR_DB) * rect.width();
    let level = x_of(db.clamp(METER_FLOOR_DB, METER_TOP_DB));
    for (from, to, color) in [
        (METER_FLOOR_DB, -12.0, Color32::from_rgb(0x4c, 0xc9, 0x6e)),
        (-12.0, 0.0, Color32::from_rgb(0xe8, 0xd0, 0x4a)),
        (0.0, METER_TOP_DB, Color32::from_rgb(0xf0, 0x4a, 0x4a)),
    ] {
        let (a, b) = (x_of(from), x_of(to).min(level));
        if b > a {
            painter.rect_filled(Rect::from_min_max(Pos2::new(a, rect.top()), Pos2::new(b, rect.bottom())), 0.0, color);
        }
    }
    painter.vline(x_of(0.0), rect.y_range(), Stroke::new(1.0, roll::colors::OCTAVE));
}

impl NiceEguiApp for EditorApp {
    fn build(
        &mut self,
        egui_ctx: egui::Context,
        nice_gui_ctx: GuiContext,
        _frame: &mut Frame,
    ) -> Result<(), nice_plug_egui::baseview::HandlerError> {
        egui_ctx.set_visuals(egui::Visuals::dark());
        self.gui = Some(nice_gui_ctx);
        self.monitor.set_watching(true);
        self.presets.refresh();
        self.size_to_restore = Some(self.saved_size());
        self.save_size = false;
        self.close_flag = signal_flag();
        if self.close_flag.is_some() {
            egui_ctx.data_mut(|d| d.insert_temp(egui::Id::unique("hummingface-window-guard"), Arc::new(WindowGuard)));
        }
        self.layout = std::env::var_os(LAYOUT_ENV)
            .filter(|p| !p.is_empty())
            .map(|p| (PathBuf::from(p), String::new()));
        Ok(())
    }

    fn ui(&mut self, ui: &mut Ui, _frame: &mut Frame) {
        // The roll moves: draw again at the next poll (about 60 times a second) while open.
        self.repaint.request_repaint();
        let ctx = ui.ctx().clone();
        // The audio thread turns the meters and the pitch feed off while no window is open, which
        // it may also see between `build` and nice-plug-egui marking the window open: on again
        // whenever the editor draws.
        if !self.monitor.metering() {
            self.monitor.set_watching(true);
        }
        if self.close_flag.as_ref().is_some_and(|f| f.load(Ordering::Relaxed)) {
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        }
        // The saved size: applied once, on the first frame.
        if let Some(want) = self.size_to_restore.take() {
            let have = ctx.content_rect().size();
            if (have.x - want.width as f32).abs() > 1.0 || (have.y - want.height as f32).abs() > 1.0 {
                ctx.send_viewport_cmd(egui::ViewportCommand::InnerSize(Vec2::new(want.width as f32, want.height as f32)));
            }
        } else {
            self.save_size = true;
        }

        let now = ui.input(|i| i.time);
        let dt = self.last_time.map_or(0.0, |t| (now - t) as f32).clamp(0.0, 1.0);
        self.last_time = Some(now);
        let (input, output) = self.monitor.take_peaks();
        self.meters[0].update(input, dt);
        self.meters[1].update(output, dt);
        self.history.update(&self.monitor.feed);

        let Some(gui) = self.gui.clone() else { return };
        let setter = gui.param_setter();
        let min = EditorSize::MIN;
        ResizableWindow::new("hummingface-editor")
            .min_size(Vec2::new(min.width as f32, min.height as f32))
            .show(ui, |ui| {
                self.mark("window", ui.max_rect());
                let full = ui.max_rect().shrink(8.0);
                let top = Rect::from_min_max(full.min, Pos2::new(full.right(), full.top() + 34.0));
                ui.scope_builder(UiBuilder::new().max_rect(top).layout(Layout::left_to_right(Align::Center)), |ui| {
                    self.top_bar(ui, &setter);
                });

                let column_w = 360.0f32.min(full.width() * 0.45);
                let right = Rect::from_min_max(Pos2::new(full.right() - column_w, top.bottom() + 6.0), full.max);
                ui.scope_builder(UiBuilder::new().max_rect(right).layout(Layout::top_down(Align::Min)), |ui| {
                    ScrollArea::vertical().auto_shrink([false, false]).show(ui, |ui| self.controls(ui, &setter));
                });

                let main = Rect::from_min_max(Pos2::new(full.left(), top.bottom() + 6.0), Pos2::new(right.left() - 10.0, full.bottom()));
                let status_h = 98.0;
                let status = Rect::from_min_max(Pos2::new(main.left(), main.bottom() - status_h), main.max);
                ui.scope_builder(UiBuilder::new().max_rect(status).layout(Layout::top_down(Align::Min)), |ui| {
                    self.status(ui, now);
                });

                let keys_w = 56.0;
                let area = Rect::from_min_max(main.min, Pos2::new(main.right(), status.top() - 6.0));
                let keyboard = Rect::from_min_max(area.min, Pos2::new(area.left() + keys_w, area.bottom()));
                let roll_rect = Rect::from_min_max(Pos2::new(keyboard.right() + 2.0, area.top()), area.max);
                let key = self.params.notes.key.value().pitch_class();
                let scale = self.params.notes.scale.value().scale();
                let painter = ui.painter().clone();
                self.history.paint_roll(&painter, roll_rect, key, scale);
                self.history.paint_keyboard(&painter, keyboard, self.history.sounding());
                let pitch = self.history.pitch();
                if pitch.is_finite() {
                    let cents = ((pitch - pitch.round()) * 100.0).round();
                    painter.text(
                        roll_rect.right_top() + Vec2::new(-8.0, 6.0),
                        egui::Align2::RIGHT_TOP,
                        format!("{} {:+.0} ¢", note_name(pitch.round() as i32), cents),
                        egui::FontId::proportional(14.0),
                        roll::colors::PITCH,
                    );
                }
                self.mark("roll", roll_rect);
                self.mark("keyboard", keyboard);
            });
        self.write_layout(&ctx);
    }

    fn resized(&mut self, new_size: WindowSize) {
        if !self.save_size {
            return;
        }
        let size = EditorSize {
            width: new_size.logical.width.round().max(0.0) as u32,
            height: new_size.logical.height.round().max(0.0) as u32,
        }
        .clamped();
        if let Ok(mut saved) = self.params.editor_size.lock() {
            *saved = size;
        }
    }

    fn editor_closed(&mut self) {
        self.monitor.set_watching(false);
        self.gui = None;
        self.last_time = None;
        self.load = Load::default();
    }
}

/// `C4`, `F#3`, … for a MIDI note.
fn note_name(n: i32) -> String {
    format!("{}{}", presets::key_name(n.rem_euclid(12) as u8), n.div_euclid(12) - 1)
}
