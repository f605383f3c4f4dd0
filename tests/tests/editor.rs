//! The editor, for real: the standalone (dummy audio backend) opens its egui window on a private
//! Xvfb display; the test takes screenshots with ImageMagick's `import`, checks that the piano
//! roll and the keyboard are drawn, drags the Mix slider with `xdotool` (real X pointer events),
//! presses "Save preset", and reads the preset file: it holds the value the plugin's parameter
//! took (nice-plug applies a GUI change on the audio thread, so the saved value is what
//! `process()` sees); clicks Bypass and finds "Bypassed" drawn in amber on the status row. Then
//! SIGTERM must close the window and end the standalone with exit 0.
//!
//! The editor writes its widgets' rectangles to `$HUMMINGFACE_EDITOR_LAYOUT` (physical pixels,
//! window-relative; the window sits at the screen's origin, no window manager) so the test knows
//! where to point without guessing.
//!
//! Needs: Xvfb, xdotool, imagemagick (`cargo xtask setup` installs them).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use hummingface_tests::*;

/// An RGB screenshot.
struct Shot {
    width: usize,
    height: usize,
    /// `[y][x]` RGB, row by row.
    rgb: Vec<u8>,
}

impl Shot {
    fn at(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.width + x) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }
}

/// Screenshot of the whole display as binary PPM (P6), read back here.
fn screenshot(display: &str, save_as: &Path) -> Shot {
    let done = run_with_timeout(
        Command::new("import").args(["-display", display, "-window", "root", "-depth", "8"]).arg(save_as),
        Duration::from_secs(30),
        "import",
    )
    .and_then(|d| d.check("import -window root"))
    .unwrap_or_else(|e| panic!("{e:#}"));
    drop(done);
    let data = std::fs::read(save_as).unwrap();
    // "P6\n<w> <h>\n<max>\n" then the pixels.
    let mut fields = Vec::new();
    let mut pos = 0;
    while fields.len() < 4 {
        while data[pos].is_ascii_whitespace() {
            pos += 1;
        }
        let start = pos;
        while !data[pos].is_ascii_whitespace() {
            pos += 1;
        }
        fields.push(String::from_utf8_lossy(&data[start..pos]).into_owned());
    }
    pos += 1;
    assert_eq!(fields[0], "P6", "import wrote {}", fields[0]);
    assert_eq!(fields[3], "255");
    let (width, height) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    let rgb = data[pos..pos + width * height * 3].to_vec();
    Shot { width, height, rgb }
}

/// A widget rectangle from the layout file: (left, top, right, bottom) in pixels.
type Bounds = (usize, usize, usize, usize);

fn read_layout(path: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// Polls the layout file the editor writes every frame until `ready` holds (at most 60 s from
/// `started`); panics with the standalone's stderr if it exits first. Hands the child back.
fn wait_for_layout(mut child: Running, layout_path: &Path, started: Instant, what: &str, ready: impl Fn(&serde_json::Value) -> bool) -> (Running, serde_json::Value) {
    loop {
        if let Some(l) = read_layout(layout_path) {
            if ready(&l) {
                return (child, l);
            }
        }
        if !child.alive() {
            let done = child.wait(Duration::from_secs(1)).unwrap();
            panic!("the standalone exited ({}) before drawing:\n{}", describe_status(&done.status), tail(&done.stderr, 6000));
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no {what} within 60 s: {:?}", read_layout(layout_path));
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn bounds(layout: &serde_json::Value, name: &str) -> Bounds {
    let a = layout[name]
        .as_array()
        .unwrap_or_else(|| panic!("layout has no {name}: {layout}"));
    let v: Vec<usize> = a.iter().map(|x| x.as_f64().unwrap().max(0.0) as usize).collect();
    (v[0], v[1], v[2], v[3])
}

fn xdotool(display: &str, args: &[&str]) {
    run_with_timeout(
        Command::new("xdotool").env("DISPLAY", display).args(args),
        Duration::from_secs(20),
        "xdotool",
    )
    .and_then(|d| d.check(&format!("xdotool {args:?}")))
    .unwrap_or_else(|e| panic!("{e:#}"));
}

/// Luminance, 0..255.
fn luma(p: [u8; 3]) -> f32 {
    0.2126 * f32::from(p[0]) + 0.7152 * f32::from(p[1]) + 0.0722 * f32::from(p[2])
}

/// Runs of dark (< 80) and light (> 180) pixels down column `x` from `y0` to `y1`, as
/// (is_dark, length); pixels in between (edges, anti-aliasing) end a run.
fn column_runs(shot: &Shot, x: usize, y0: usize, y1: usize) -> Vec<(bool, usize)> {
    let mut runs: Vec<(bool, usize)> = Vec::new();
    let mut current: Option<(bool, usize)> = None;
    for y in y0..y1 {
        let l = luma(shot.at(x, y));
        let class = if l < 80.0 { Some(true) } else if l > 180.0 { Some(false) } else { None };
        match (current.as_mut(), class) {
            (Some(c), Some(k)) if c.0 == k => c.1 += 1,
            (_, k) => {
                runs.extend(current.take());
                current = k.map(|k| (k, 1));
            }
        }
    }
    runs.extend(current);
    runs
}

#[test]
fn editor_draws_roll_and_keyboard_and_a_dragged_slider_reaches_the_plugin() {
    let a = Artifacts::locate().unwrap_or_else(|e| panic!("{e:#}"));
    for tool in ["/usr/bin/xdotool", "/usr/bin/import"] {
        assert!(Path::new(tool).exists(), "{tool} is missing; run `cargo xtask setup`");
    }
    let x = Xvfb::start()
        .unwrap_or_else(|e| panic!("{e:#}"))
        .expect("Xvfb is missing; run `cargo xtask setup`");
    let dir = scratch_dir("editor");
    let layout_path = dir.join("layout.json");
    let preset_dir = dir.join("presets");

    let mut cmd = Command::new(&a.standalone);
    cmd.args(["-b", "dummy"])
        .env("DISPLAY", &x.display)
        .env_remove("WAYLAND_DISPLAY")
        .env("HUMMINGFACE_EDITOR_LAYOUT", &layout_path)
        .env("HUMMINGFACE_PRESET_DIR", &preset_dir);
    let started = Instant::now();
    let child = Running::spawn(&mut cmd, "hummingface-standalone").unwrap();

    // The first frame writes the layout.
    let (child, layout) = wait_for_layout(child, &layout_path, started, "editor frame", |l| l.get("mix").is_some() && l.get("keyboard").is_some());
    eprintln!("first frame after {:.1} s; layout {layout}", started.elapsed().as_secs_f64());
    // A few more frames, so what is on screen is what the layout describes.
    std::thread::sleep(Duration::from_millis(1500));
    let layout = read_layout(&layout_path).unwrap_or(layout);

    let shot = screenshot(&x.display, &dir.join("editor.ppm"));
    let window = bounds(&layout, "window");
    assert!(window.2 <= shot.width && window.3 <= shot.height, "window {window:?} off screen {}x{}", shot.width, shot.height);

    // The piano roll: many colours (rows, grid, octave lines, labels), not a blank window.
    let roll = bounds(&layout, "roll");
    let mut colours = std::collections::HashSet::new();
    for y in roll.1..roll.3 {
        for x in roll.0..roll.2 {
            colours.insert(shot.at(x, y));
        }
    }
    // Alternating row shades down the middle of the roll: at least 30 changes over 37 rows.
    let mid = (roll.0 + roll.2) / 2 + 3;
    let mut changes = 0;
    for y in roll.1 + 1..roll.3 {
        if shot.at(mid, y) != shot.at(mid, y - 1) {
            changes += 1;
        }
    }
    eprintln!("roll {roll:?}: {} distinct colours, {changes} colour changes down x = {mid}", colours.len());
    assert!(colours.len() >= 8, "the roll has only {} colours: blank?", colours.len());
    assert!(changes >= 30, "the roll's rows are not drawn: {changes} changes down the middle");

    // The keyboard: down a column through the black keys, dark and light runs alternate like a
    // piano (three octaves: 15 black keys); down a column right of the black keys, all white.
    let kb = bounds(&layout, "keyboard");
    let black_x = kb.0 + (kb.2 - kb.0) * 3 / 10;
    let runs = column_runs(&shot, black_x, kb.1 + 2, kb.3 - 2);
    let dark: Vec<usize> = runs.iter().filter(|r| r.0).map(|r| r.1).collect();
    let row_h = (kb.3 - kb.1) as f32 / 37.0;
    eprintln!("keyboard {kb:?}: runs down x = {black_x}: {runs:?}");
    assert!((14..=16).contains(&dark.len()), "{} black keys instead of 15: {runs:?}", dark.len());
    for d in &dark {
        assert!((*d as f32 - row_h).abs() <= row_h * 0.5 + 2.0, "a black key {d} px high, rows are {row_h:.1}");
    }
    let white_x = kb.0 + (kb.2 - kb.0) * 85 / 100;
    let light = (kb.1 + 2..kb.3 - 2).filter(|&y| luma(shot.at(white_x, y)) > 180.0).count();
    let share = light as f32 / (kb.3 - kb.1 - 4) as f32;
    assert!(share > 0.85, "right of the black keys only {:.0} % is white", share * 100.0);

    // Drag the Mix slider from its middle to beyond its left end (100 % → 0 %).
    let mix = bounds(&layout, "mix");
    let y = ((mix.1 + mix.3) / 2).to_string();
    let (from, to) = ((mix.0 + mix.2) / 2, mix.0.saturating_sub(30));
    xdotool(&x.display, &["mousemove", &from.to_string(), &y]);
    std::thread::sleep(Duration::from_millis(200));
    xdotool(&x.display, &["mousedown", "1"]);
    for step in 1..=10 {
        let xx = from - (from - to) * step / 10;
        std::thread::sleep(Duration::from_millis(50));
        xdotool(&x.display, &["mousemove", &xx.to_string(), &y]);
    }
    std::thread::sleep(Duration::from_millis(200));
    xdotool(&x.display, &["mouseup", "1"]);
    // Let the audio thread apply the change (nice-plug's standalone does it after a block).
    std::thread::sleep(Duration::from_millis(800));
    let after = screenshot(&x.display, &dir.join("editor-after-drag.ppm"));

    // Save the sound as a preset, through the editor's button.
    let save = bounds(&layout, "save");
    let (sx, sy) = ((save.0 + save.2) / 2, (save.1 + save.3) / 2);
    xdotool(&x.display, &["mousemove", &sx.to_string(), &sy.to_string()]);
    std::thread::sleep(Duration::from_millis(200));
    xdotool(&x.display, &["click", "1"]);
    let preset_file = preset_dir.join("my-sound.json");
    let t = Instant::now();
    while !preset_file.exists() && t.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let saved = std::fs::read_to_string(&preset_file)
        .unwrap_or_else(|e| panic!("no preset saved at {} ({e}) after pressing Save", preset_file.display()));
    let saved: serde_json::Value = serde_json::from_str(&saved).unwrap();
    eprintln!("saved preset: {saved}");
    let mix_value = saved["params"]["mix"].as_f64().expect("mix in the saved preset");
    assert!(mix_value < 0.02, "the dragged mix did not reach the plugin: saved mix {mix_value}");
    // Nothing else moved.
    assert_eq!(saved["params"]["gain"].as_f64(), Some(0.0));
    assert_eq!(saved["params"]["sensitivity"].as_f64(), Some(0.5));

    // The slider's filled part is gone from the screen too.
    let fill_pixels = |s: &Shot| {
        (mix.0 + 2..mix.2 - 2)
            .filter(|&x| {
                let p = s.at(x, (mix.1 + mix.3) / 2);
                i32::from(p[2]) - i32::from(p[0]) > 40
            })
            .count()
    };
    let (before_fill, after_fill) = (fill_pixels(&shot), fill_pixels(&after));
    eprintln!("mix slider blue pixels: {before_fill} before, {after_fill} after the drag");
    assert!(before_fill > (mix.2 - mix.0) / 2 && after_fill < 5, "slider fill {before_fill} → {after_fill}");

    // A click on Bypass reaches the plugin's parameter: the status row says "Bypassed", in its
    // amber.
    assert!(read_layout(&layout_path).unwrap_or_default().get("bypassed").is_none(), "bypassed before the click");
    let bypass = bounds(&layout, "bypass");
    let (bx, by) = ((bypass.0 + bypass.2) / 2, (bypass.1 + bypass.3) / 2);
    xdotool(&x.display, &["mousemove", &bx.to_string(), &by.to_string()]);
    std::thread::sleep(Duration::from_millis(200));
    xdotool(&x.display, &["click", "1"]);
    let t = Instant::now();
    let mut layout = read_layout(&layout_path).unwrap_or_default();
    while layout.get("bypassed").is_none() && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
        layout = read_layout(&layout_path).unwrap_or(layout);
    }
    std::thread::sleep(Duration::from_millis(300));
    let shot = screenshot(&x.display, &dir.join("editor-bypassed.ppm"));
    let label = bounds(&layout, "bypassed");
    let amber = (label.1..label.3)
        .flat_map(|y| (label.0..label.2).map(move |x| (x, y)))
        .filter(|&(x, y)| {
            let p = shot.at(x, y);
            p[0] > 200 && p[1] > 130 && p[1] < 210 && p[2] < 120
        })
        .count();
    eprintln!("bypassed label {label:?}: {amber} amber pixels");
    assert!(amber > 20, "no amber \"Bypassed\" after clicking Bypass ({amber} pixels)");

    // SIGTERM closes the window; the standalone deactivates the plugin and exits 0.
    child.signal(libc::SIGTERM).unwrap();
    let done = child.wait(Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e:#}"));
    assert!(done.status.success(), "the standalone ended with {} on SIGTERM\n{}", describe_status(&done.status), tail(&done.stderr, 6000));
    assert!(done.elapsed < Duration::from_secs(120));

    // Keep the first screenshot as PNG beside the others, for a look.
    let png = dir.join("editor.png");
    let _ = Command::new("convert").arg(dir.join("editor.ppm")).arg(&png).status();
    eprintln!("screenshots in {}", dir.display());
    let _: PathBuf = png;
}

/// The sung melody of the live test: (MIDI note, start s, duration s).
const MELODY: [(f32, f32, f32); 4] = [(57.0, 0.3, 0.8), (60.0, 1.4, 0.7), (64.0, 2.4, 0.8), (62.0, 3.5, 1.0)];

#[test]
fn editor_roll_shows_singing_fed_through_jack() {
    // The standalone on a private dummy JACK server; `hf-jack-play` sings into its inputs like
    // a microphone would. The roll must then show the sung notes in their rows, the pitch curve,
    // and moving input and output meters.
    let a = Artifacts::locate().unwrap_or_else(|e| panic!("{e:#}"));
    let x = Xvfb::start()
        .unwrap_or_else(|e| panic!("{e:#}"))
        .expect("Xvfb is missing; run `cargo xtask setup`");
    let jack = JackServer::start();
    let dir = scratch_dir("editor-live");
    let layout_path = dir.join("layout.json");
    let wav = dir.join("melody.wav");
    write_wav(&wav, &[sung_melody(&MELODY, 5.0, 48_000)], 48_000).unwrap();

    let mut cmd = Command::new(&a.standalone);
    cmd.args(["-b", "jack", "-p", "512"])
        .env("DISPLAY", &x.display)
        .env_remove("WAYLAND_DISPLAY")
        .env("HUMMINGFACE_EDITOR_LAYOUT", &layout_path)
        .env("HUMMINGFACE_PRESET_DIR", dir.join("presets"))
        .envs(jack.env());
    let mut child = Running::spawn(&mut cmd, "hummingface-standalone -b jack").unwrap();
    let t = Instant::now();
    while !(read_layout(&layout_path).is_some() && jack.ports().contains("hummingface:input_1")) {
        assert!(child.alive(), "the standalone exited before drawing");
        assert!(t.elapsed() < Duration::from_secs(60), "no editor or JACK ports within 60 s:\n{}", jack.ports());
        std::thread::sleep(Duration::from_millis(200));
    }

    let player = target_dir().join("release").join("hf-jack-play");
    let played = run_with_timeout(
        Command::new(&player).arg(&wav).args(["--to", "hummingface:"]).envs(jack.env()),
        Duration::from_secs(60),
        "hf-jack-play",
    )
    .and_then(|d| d.check("hf-jack-play"))
    .unwrap_or_else(|e| panic!("{e:#}"));
    drop(played);
    // The last note has left the engine and been drawn.
    std::thread::sleep(Duration::from_millis(300));
    let layout = read_layout(&layout_path).unwrap();
    let shot = screenshot(&x.display, &dir.join("live.ppm"));

    let roll = bounds(&layout, "roll");
    let range = layout["roll-notes"].as_array().expect("roll-notes in the layout");
    let low = range[0].as_u64().unwrap() as f32;
    let rows = (range[1].as_u64().unwrap() as f32 - low) + 1.0;
    let row_h = (roll.3 - roll.1) as f32 / rows;
    let near = |p: [u8; 3], c: [u8; 3]| p.iter().zip(c).all(|(a, b)| a.abs_diff(b) <= 6);
    const NOTE: [u8; 3] = [0xf5, 0xa6, 0x23];
    const PITCH: [u8; 3] = [0x4f, 0xd1, 0xff];
    let mut found = Vec::new();
    for (note, _, _) in MELODY {
        let y = (roll.3 as f32 - (note - low + 0.5) * row_h) as usize;
        let n = (roll.0..roll.2).filter(|&x| near(shot.at(x, y), NOTE)).count();
        found.push((note, n));
    }
    let pitch_px = (roll.1..roll.3)
        .flat_map(|y| (roll.0..roll.2).map(move |x| (x, y)))
        .filter(|&(x, y)| near(shot.at(x, y), PITCH))
        .count();
    eprintln!("roll rows from {low}: note pixels per sung note {found:?}; {pitch_px} pitch-curve pixels");
    for (note, n) in &found {
        assert!(*n >= 10, "no note drawn in the row of MIDI {note}: {found:?}");
    }
    assert!(pitch_px >= 200, "no pitch curve: {pitch_px} pixels");
    // A row the melody never touched (C5) stays free of notes.
    let y = (roll.3 as f32 - (72.0 - low + 0.5) * row_h) as usize;
    assert_eq!((roll.0..roll.2).filter(|&x| near(shot.at(x, y), NOTE)).count(), 0);

    child.signal(libc::SIGTERM).unwrap();
    let t = Instant::now();
    let done = child.wait(Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!("the standalone stopped {:.1} s after SIGTERM:\n{}", t.elapsed().as_secs_f64(), tail(&done.stderr, 2000));
    assert!(done.status.success(), "the standalone ended with {}\n{}", describe_status(&done.status), tail(&done.stderr, 6000));
    let _ = Command::new("convert").arg(dir.join("live.ppm")).arg(dir.join("live.png")).status();
}

/// Issue 6: a model file that does not load (here NaN weights, named by `$HUMMINGFACE_MODEL`)
/// is reported in the editor's status line, in red, and the built-in model runs.
#[test]
fn editor_shows_why_a_model_file_is_not_used() {
    let a = Artifacts::locate().unwrap_or_else(|e| panic!("{e:#}"));
    let x = Xvfb::start()
        .unwrap_or_else(|e| panic!("{e:#}"))
        .expect("Xvfb is missing; run `cargo xtask setup`");
    let dir = scratch_dir("editor-model");
    let layout_path = dir.join("layout.json");
    // The built-in weights with every value NaN after the header.
    let w = hummingface_runtime::model::EMBEDDED_WEIGHTS;
    let start = 8 + u64::from_le_bytes(w[..8].try_into().unwrap()) as usize;
    let mut bad = w.to_vec();
    for chunk in bad[start..].chunks_exact_mut(4) {
        chunk.copy_from_slice(&f32::NAN.to_le_bytes());
    }
    let model = dir.join("nan.safetensors");
    std::fs::write(&model, &bad).unwrap();

    let mut cmd = Command::new(&a.standalone);
    cmd.args(["-b", "dummy"])
        .env("DISPLAY", &x.display)
        .env_remove("WAYLAND_DISPLAY")
        .env("HUMMINGFACE_EDITOR_LAYOUT", &layout_path)
        .env("HUMMINGFACE_MODEL", &model);
    let started = Instant::now();
    let child = Running::spawn(&mut cmd, "hummingface-standalone").unwrap();
    let (child, layout) = wait_for_layout(child, &layout_path, started, "model note drawn", |l| l.get("model-note").is_some());
    std::thread::sleep(Duration::from_millis(500));
    let layout = read_layout(&layout_path).unwrap_or(layout);
    let shot = screenshot(&x.display, &dir.join("editor-model.ppm"));
    let note = bounds(&layout, "model-note");
    let roll = bounds(&layout, "roll");
    assert!(note.1 >= roll.3, "the note {note:?} is not below the roll {roll:?}");
    // Red text: pixels with much more red than green and blue.
    let red = (note.1..note.3)
        .flat_map(|y| (note.0..note.2).map(move |x| (x, y)))
        .filter(|&(x, y)| {
            let [r, g, b] = shot.at(x, y);
            r > 150 && (r as i32 - g as i32) > 60 && (r as i32 - b as i32) > 60
        })
        .count();
    eprintln!("model note at {note:?}: {red} red pixels");
    assert!(red > 50, "the model note is not drawn in red ({red} red pixels)");
    child.signal(libc::SIGTERM).unwrap();
    let done = child.wait(Duration::from_secs(20)).unwrap();
    assert!(done.stderr.contains("not used") && done.stderr.contains("non-finite"), "no warning in the log:\n{}", tail(&done.stderr, 4000));
}
