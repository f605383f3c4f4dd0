//! The CUDA variant's toolchain (issue 7).
//!
//! No machine that builds HummingFace has a GPU or a CUDA toolkit, so the
//! toolkit is assembled from NVIDIA's pinned PyPI wheels:
//!
//! ```text
//! .cuda/                      (git-ignored)
//!   pip/                      pip install --no-deps --target (the pinned wheels)
//!     nvidia/cu13/{bin,include,lib,nvvm}
//!     .hummingface-pins       what was installed (skip when unchanged)
//!   toolkit/                  CUDA_HOME / CUDA_PATH / CUDA_ROOT
//!     bin -> ../pip/nvidia/cu13/bin        (nvcc, ptxas, ...)
//!     include -> ../pip/nvidia/cu13/include
//!     nvvm -> ../pip/nvidia/cu13/nvvm      (cicc, libdevice)
//!     lib64/                  libcudart.so -> libcudart.so.13 -> ../../pip/nvidia/cu13/lib/libcudart.so.13, ...
//!       stubs/libcuda.so      generated link-time stub of the driver API (SONAME libcuda.so.1)
//!     lib -> lib64
//! ```
//!
//! No wheel ships the driver library (`libcuda.so.1` comes with the NVIDIA
//! driver), so the link uses a stub exporting every `cu*` function that
//! cudarc's `driver/sys/mod.rs` declares. The stub is only ever on the
//! *link* path: it is named `libcuda.so` (the loader looks for
//! `libcuda.so.1`), it sits in `lib64/stubs` like in NVIDIA's own toolkit,
//! and it is never copied next to a binary or put on `LD_LIBRARY_PATH`.
//!
//! `cargo xtask build-cuda` then builds the `hummingface` CLI with
//! `--features cuda` into its own target dir (`target/cuda`, so the CPU
//! build is untouched) and leaves a stripped `target/cuda-dist/hummingface-cuda`
//! and a gzip copy of it (`hummingface-cuda.gz`, what a device call carries).
//! That binary needs `libcuda.so.1`, `libcublas.so.13`, `libcublasLt.so.13`,
//! `libcudart.so.13`, `libcurand.so.10` and `libnvrtc.so.13` at load time:
//! it only starts on a machine with the NVIDIA driver and the CUDA 13 runtime
//! libraries (the GPU machines have them in their Python's
//! `site-packages/nvidia/cu13/lib`; see `tools/gpu/device-check.sh`).

use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The exact wheels. CUDA 13.0: the CUDA 12 nvcc wheels ship no `nvcc`, newer
/// 13.x emits PTX that the GPU machines' driver (580) may refuse, and cudarc
/// 0.19 panics on 13.5.
pub const CUDA_WHEELS: &[&str] = &[
    "nvidia-cuda-nvcc==13.0.88",
    "nvidia-cuda-runtime==13.0.96",
    "nvidia-cuda-crt==13.0.88",
    "nvidia-nvvm==13.0.88",
    "nvidia-cuda-cccl==13.0.85",
    "nvidia-cuda-nvrtc==13.0.88",
    "nvidia-curand==10.4.0.35",
    "nvidia-cublas==13.0.2.14",
];

/// H100 / H200. With it set, candle's kernel build needs no GPU (no nvidia-smi).
pub const DEFAULT_COMPUTE_CAP: &str = "90";

/// The folder inside the pip target that holds the CUDA 13 wheels' files.
const CU13: &str = "nvidia/cu13";
const PINS_MARKER: &str = ".hummingface-pins";
const STUB_SOURCE: &str = "libcuda-stub.c";

/// `.cuda` under the repository root (git-ignored).
pub fn cuda_dir(root: &Path) -> PathBuf {
    root.join(".cuda")
}

/// The link-time-only folder holding the stub `libcuda.so`.
pub fn stub_dir(toolkit: &Path) -> PathBuf {
    toolkit.join("lib64").join("stubs")
}

/// `cargo xtask cuda-toolkit`: install the pinned wheels, arrange them as a
/// toolkit folder and generate the driver stub. Idempotent: every step is
/// skipped when its result is already there. Returns the toolkit folder
/// (`.cuda/toolkit`), to be used as `CUDA_HOME`.
pub fn cuda_toolkit(root: &Path) -> Result<PathBuf> {
    let cuda = cuda_dir(root);
    fs::create_dir_all(&cuda).with_context(|| format!("creating {}", cuda.display()))?;
    let pip = install_wheels(&cuda)?;
    let toolkit = arrange_toolkit(&cuda, &pip)?;
    let stub = build_stub(root, &toolkit)?;

    // Smoke test: the toolkit's nvcc runs and is the pinned 13.0.
    let nvcc = toolkit.join("bin").join("nvcc");
    let out = Command::new(&nvcc)
        .arg("--version")
        .output()
        .with_context(|| format!("running {}", nvcc.display()))?;
    let version = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !version.contains("release 13.0") {
        bail!(
            "{} --version did not report CUDA 13.0:\n{}{}",
            nvcc.display(),
            version,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let release = version.lines().find(|l| l.contains("release")).unwrap_or("").trim();
    println!("cuda-toolkit: ready at {}", toolkit.display());
    println!("  nvcc:  {release}");
    println!("  stub:  {} (link time only)", stub.display());
    println!("  env:   (what build-cuda sets)");
    for (k, v) in cuda_env(&toolkit) {
        if k == "PATH" || k == "LIBRARY_PATH" {
            let ours = if k == "PATH" { 1 } else { 2 };
            let parts: Vec<&str> = v.split(':').collect();
            let more = if parts.len() > ours { ":..." } else { "" };
            println!("    {k}={}{more}", parts[..ours.min(parts.len())].join(":"));
        } else {
            println!("    {k}={v}");
        }
    }
    Ok(toolkit)
}

/// The environment for building against the toolkit: `CUDA_HOME`,
/// `CUDA_PATH`, `CUDA_ROOT`, `PATH` (toolkit `bin` first),
/// `CUDA_COMPUTE_CAP` (90 unless already set), and `LIBRARY_PATH` with the
/// stub folder and `lib64` first (the linker driver reads it; cudarc's build
/// script also adds `lib64` and `lib64/stubs` under `CUDA_HOME`).
///
/// `RUSTFLAGS` is deliberately not touched: the search paths above are
/// enough, and a different `RUSTFLAGS` would rebuild every crate.
pub fn cuda_env(toolkit: &Path) -> Vec<(String, String)> {
    let tk = toolkit.display().to_string();
    let lib64 = toolkit.join("lib64").display().to_string();
    let stubs = stub_dir(toolkit).display().to_string();
    let prepend = |first: &[&str], var: &str| -> String {
        let mut parts: Vec<String> = first.iter().map(|s| s.to_string()).collect();
        if let Some(old) = std::env::var_os(var) {
            let old = old.to_string_lossy().to_string();
            parts.extend(old.split(':').filter(|p| !p.is_empty() && !first.contains(p)).map(String::from));
        }
        parts.join(":")
    };
    let bin = toolkit.join("bin").display().to_string();
    let cap = std::env::var("CUDA_COMPUTE_CAP")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_COMPUTE_CAP.to_string());
    vec![
        ("CUDA_HOME".into(), tk.clone()),
        ("CUDA_PATH".into(), tk.clone()),
        ("CUDA_ROOT".into(), tk),
        ("PATH".into(), prepend(&[&bin], "PATH")),
        ("CUDA_COMPUTE_CAP".into(), cap),
        ("LIBRARY_PATH".into(), prepend(&[&stubs, &lib64], "LIBRARY_PATH")),
    ]
}

/// `cargo xtask build-cuda [cargo args...]`: the CUDA variant of the CLI.
/// Builds into `target/cuda`, then copies the binary to
/// `target/cuda-dist/hummingface-cuda`, strips it, and prints its size and
/// the shared libraries it needs.
pub fn build_cuda(root: &Path, extra_args: &[String]) -> Result<()> {
    let toolkit = cuda_toolkit(root)?;
    let target_dir = root.join("target").join("cuda");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));

    let mut cmd = Command::new(&cargo);
    cmd.current_dir(root)
        .args(["build", "--release", "--features", "cuda", "-p", "hummingface", "--bin", "hummingface"])
        .args(extra_args)
        .env("CARGO_TARGET_DIR", &target_dir);
    for (k, v) in cuda_env(&toolkit) {
        cmd.env(k, v);
    }
    println!("build-cuda: cargo build --release --features cuda -p hummingface --bin hummingface {} (CARGO_TARGET_DIR={})",
        extra_args.join(" "), target_dir.display());
    let started = std::time::Instant::now();
    let status = cmd.status().context("running cargo build")?;
    if !status.success() {
        bail!("cargo build of the CUDA variant failed ({status})");
    }
    println!("build-cuda: cargo build took {:.0} s", started.elapsed().as_secs_f64());

    let built = target_dir.join("release").join("hummingface");
    if !built.is_file() {
        bail!("expected {} after the build", built.display());
    }
    let dist = root.join("target").join("cuda-dist");
    fs::create_dir_all(&dist)?;
    let out = dist.join("hummingface-cuda");
    if out.exists() {
        fs::remove_file(&out)?;
    }
    fs::copy(&built, &out).with_context(|| format!("copying to {}", out.display()))?;
    let unstripped = fs::metadata(&out)?.len();
    run(Command::new("strip").arg(&out)).context("strip")?;
    let size = fs::metadata(&out)?.len();
    println!(
        "build-cuda: {} — {:.1} MiB stripped ({:.1} MiB before)",
        out.display(),
        size as f64 / 1048576.0,
        unstripped as f64 / 1048576.0
    );

    // A device call carries at most 64 MiB in all: also leave a gzip copy
    // (about a quarter of the size; tools/gpu/device-check.sh unpacks it).
    let gz = dist.join("hummingface-cuda.gz");
    let file = fs::File::create(&gz).with_context(|| format!("creating {}", gz.display()))?;
    run(Command::new("gzip").args(["-6", "-n", "-c"]).arg(&out).stdout(file)).context("gzip")?;
    println!(
        "build-cuda: {} — {:.1} MiB (carry this one to the GPU machine)",
        gz.display(),
        fs::metadata(&gz)?.len() as f64 / 1048576.0
    );

    let needed = needed_libs(&out)?;
    println!("build-cuda: needs (readelf -d): {}", needed.join(" "));
    if !needed.iter().any(|l| l == "libcuda.so.1") {
        println!("build-cuda: WARNING: libcuda.so.1 not among the needed libraries — was the cuda feature built?");
    }
    if let Some(rp) = runpath(&out)? {
        println!("build-cuda: WARNING: binary carries an rpath/runpath: {rp}");
    }
    println!(
        "build-cuda: on a GPU machine: LD_LIBRARY_PATH=<site-packages>/nvidia/cu13/lib {} ... (see tools/gpu/device-check.sh)",
        out.display()
    );
    Ok(())
}

/// `DT_NEEDED` entries of an ELF file, via `readelf -d`.
pub fn needed_libs(elf: &Path) -> Result<Vec<String>> {
    dynamic_entries(elf, "(NEEDED)")
}

fn runpath(elf: &Path) -> Result<Option<String>> {
    let mut v = dynamic_entries(elf, "(RUNPATH)")?;
    v.extend(dynamic_entries(elf, "(RPATH)")?);
    Ok(if v.is_empty() { None } else { Some(v.join(":")) })
}

fn dynamic_entries(elf: &Path, tag: &str) -> Result<Vec<String>> {
    let out = Command::new("readelf").arg("-d").arg(elf).output().context("running readelf -d")?;
    if !out.status.success() {
        bail!("readelf -d {} failed: {}", elf.display(), String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(tag))
        .filter_map(|l| Some(l[l.find('[')? + 1..l.rfind(']')?].to_string()))
        .collect())
}

// ---------------------------------------------------------------- wheels

fn install_wheels(cuda: &Path) -> Result<PathBuf> {
    let pip = cuda.join("pip");
    let marker = pip.join(PINS_MARKER);
    let want = CUDA_WHEELS.join("\n") + "\n";
    if fs::read_to_string(&marker).ok().as_deref() == Some(want.as_str()) && pip.join(CU13).join("bin/nvcc").is_file() {
        println!("cuda-toolkit: wheels already in {} (skip)", pip.display());
        return Ok(pip);
    }
    // Install next to the final folder and swap it in, so an interrupted
    // install never looks complete.
    let partial = cuda.join("pip.partial");
    if partial.exists() {
        fs::remove_dir_all(&partial)?;
    }
    let python = std::env::var_os("PYTHON").unwrap_or_else(|| OsString::from("python3"));
    println!("cuda-toolkit: pip install --no-deps --target {} {}", pip.display(), CUDA_WHEELS.join(" "));
    let started = std::time::Instant::now();
    let mut cmd = Command::new(&python);
    cmd.args(["-m", "pip", "install", "--no-deps", "--no-input", "--disable-pip-version-check", "--target"])
        .arg(&partial)
        .args(CUDA_WHEELS);
    run(&mut cmd).context("pip install of the CUDA wheels (needs python3 with pip and the package registry)")?;
    if !partial.join(CU13).join("bin/nvcc").is_file() {
        bail!("pip install finished but {} is missing", partial.join(CU13).join("bin/nvcc").display());
    }
    fs::write(partial.join(PINS_MARKER), &want)?;
    if pip.exists() {
        fs::remove_dir_all(&pip)?;
    }
    fs::rename(&partial, &pip)?;
    println!("cuda-toolkit: wheels installed in {:.0} s", started.elapsed().as_secs_f64());
    Ok(pip)
}

// ---------------------------------------------------------------- toolkit

fn arrange_toolkit(cuda: &Path, pip: &Path) -> Result<PathBuf> {
    let toolkit = cuda.join("toolkit");
    let cu13 = pip.join(CU13);
    fs::create_dir_all(&toolkit)?;
    // Relative links, so the repository can move.
    for dir in ["bin", "include", "nvvm"] {
        if !cu13.join(dir).is_dir() {
            bail!("{} missing from the wheels", cu13.join(dir).display());
        }
        ensure_symlink(&Path::new("../pip").join(CU13).join(dir), &toolkit.join(dir))?;
    }

    // lib64: every versioned library under its own name, plus the unversioned
    // name the linker asks for (-lcudart → libcudart.so → libcudart.so.13).
    let lib64 = toolkit.join("lib64");
    fs::create_dir_all(&lib64)?;
    let mut libs: Vec<String> = fs::read_dir(cu13.join("lib"))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("lib") && (n.contains(".so.") || n.ends_with(".a")))
        .collect();
    libs.sort();
    let mut linked = Vec::new();
    for name in &libs {
        ensure_symlink(&Path::new("../../pip").join(CU13).join("lib").join(name), &lib64.join(name))?;
        if let Some(i) = name.find(".so.") {
            let plain = format!("{}.so", &name[..i]);
            ensure_symlink(Path::new(name), &lib64.join(&plain))?;
            linked.push(plain);
        }
    }
    ensure_symlink(Path::new("lib64"), &toolkit.join("lib"))?;
    for need in ["libcudart.so", "libcublas.so", "libcublasLt.so", "libcurand.so", "libnvrtc.so"] {
        if !lib64.join(need).exists() {
            bail!("{} missing after arranging the toolkit", lib64.join(need).display());
        }
    }
    println!("cuda-toolkit: {} arranged ({})", toolkit.display(), linked.join(" "));
    Ok(toolkit)
}

fn ensure_symlink(target: &Path, link: &Path) -> Result<()> {
    if let Ok(current) = fs::read_link(link) {
        if current == target {
            return Ok(());
        }
    }
    if link.symlink_metadata().is_ok() {
        if link.is_dir() && !link.symlink_metadata()?.file_type().is_symlink() {
            fs::remove_dir_all(link)?;
        } else {
            fs::remove_file(link)?;
        }
    }
    symlink(target, link).with_context(|| format!("linking {} -> {}", link.display(), target.display()))
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> Result<()> {
    Ok(std::os::unix::fs::symlink(target, link)?)
}

#[cfg(not(unix))]
fn symlink(_target: &Path, _link: &Path) -> Result<()> {
    bail!("the CUDA toolkit from wheels is only arranged on Linux")
}

// ---------------------------------------------------------------- driver stub

/// Generate `lib64/stubs/libcuda.so` from the driver API that the locked
/// cudarc declares. Skipped when the generated C source is unchanged.
fn build_stub(root: &Path, toolkit: &Path) -> Result<PathBuf> {
    let versions = locked_versions(root, "cudarc")?;
    if versions.is_empty() {
        bail!("no cudarc in {}/Cargo.lock — does some crate enable candle-core/cuda?", root.display());
    }
    let mut names = BTreeSet::new();
    let mut sources = Vec::new();
    for v in &versions {
        let file = cudarc_driver_sys(root, v)?;
        let text = fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        let found = driver_function_names(&text);
        if found.len() < 100 {
            bail!("only {} cu* functions found in {} — has its layout changed?", found.len(), file.display());
        }
        names.extend(found);
        sources.push(format!("cudarc {v} ({})", file.display()));
    }

    let mut c = String::new();
    c.push_str("/* Generated by `cargo xtask cuda-toolkit` — link-time stub of the CUDA driver API.\n");
    c.push_str(" * NEVER ship this or put it on a runtime library path: the real libcuda.so.1\n");
    c.push_str(" * comes with the NVIDIA driver. Every function returns CUDA_ERROR_STUB_LIBRARY (34).\n");
    for s in &sources {
        c.push_str(&format!(" * Names from {s}.\n"));
    }
    c.push_str(&format!(" * {} functions. */\n", names.len()));
    for n in &names {
        c.push_str(&format!("int {n}(void) {{ return 34; }}\n"));
    }

    let dir = stub_dir(toolkit);
    fs::create_dir_all(&dir)?;
    let src = dir.join(STUB_SOURCE);
    let so = dir.join("libcuda.so");
    if so.is_file() && fs::read_to_string(&src).ok().as_deref() == Some(c.as_str()) {
        println!("cuda-toolkit: driver stub up to date ({} functions, skip)", names.len());
        return Ok(so);
    }
    fs::write(&src, &c)?;
    let cc = std::env::var_os("CC").unwrap_or_else(|| OsString::from("gcc"));
    let tmp = dir.join("libcuda.so.partial");
    run(Command::new(&cc)
        .args(["-shared", "-fPIC", "-O0", "-w", "-Wl,-soname,libcuda.so.1", "-o"])
        .arg(&tmp)
        .arg(&src))
    .context("compiling the libcuda stub (needs gcc)")?;
    fs::rename(&tmp, &so)?;
    println!("cuda-toolkit: driver stub {} built ({} functions, SONAME libcuda.so.1)", so.display(), names.len());
    Ok(so)
}

/// The names of the `extern "C"` driver functions in cudarc's
/// `driver/sys/mod.rs`: the indented `fn cuXxx(` declarations inside its
/// `extern "C" { ... }` blocks (the `pub unsafe fn` wrappers around them,
/// and helpers such as `culib`, are not symbols of libcuda).
pub fn driver_function_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| l.starts_with(' ') || l.starts_with('\t'))
        .filter_map(|l| l.trim_start().strip_prefix("fn cu"))
        .filter_map(|rest| {
            let end = rest.find('(')?;
            let ident = &rest[..end];
            if ident.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                Some(format!("cu{ident}"))
            } else {
                None
            }
        })
        .collect()
}

/// Versions of `package` in the workspace's Cargo.lock.
fn locked_versions(root: &Path, package: &str) -> Result<Vec<String>> {
    let lock = root.join("Cargo.lock");
    let text = fs::read_to_string(&lock).with_context(|| format!("reading {}", lock.display()))?;
    let mut out = Vec::new();
    let mut in_pkg = false;
    for line in text.lines() {
        let line = line.trim();
        if line == "[[package]]" {
            in_pkg = false;
        } else if line == format!("name = \"{package}\"") {
            in_pkg = true;
        } else if in_pkg {
            if let Some(v) = line.strip_prefix("version = \"").and_then(|v| v.strip_suffix('"')) {
                out.push(v.to_string());
                in_pkg = false;
            }
        }
    }
    Ok(out)
}

/// `$CARGO_HOME/registry/src/*/cudarc-<version>/src/driver/sys/mod.rs`,
/// running `cargo fetch` once when it is not unpacked yet.
fn cudarc_driver_sys(root: &Path, version: &str) -> Result<PathBuf> {
    let find = || -> Option<PathBuf> {
        let home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
        let src = home.join("registry").join("src");
        let mut regs: Vec<PathBuf> = fs::read_dir(src).ok()?.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        regs.sort();
        regs.into_iter()
            .map(|r| r.join(format!("cudarc-{version}")).join("src/driver/sys/mod.rs"))
            .find(|p| p.is_file())
    };
    if let Some(p) = find() {
        return Ok(p);
    }
    println!("cuda-toolkit: cudarc {version} source not unpacked; running cargo fetch");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    run(Command::new(cargo).current_dir(root).arg("fetch")).context("cargo fetch")?;
    find().with_context(|| format!("cudarc-{version}/src/driver/sys/mod.rs not found under the cargo registry"))
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("starting {:?}", cmd.get_program()))?;
    if !status.success() {
        bail!("{:?} failed ({status})", cmd.get_program());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_extern_declarations() {
        let text = r#"
pub unsafe fn cuInit(Flags: ::core::ffi::c_uint) -> CUresult {
    #[cfg(not(feature = "dynamic-loading"))]
    {
        extern "C" {
            fn cuInit(Flags: ::core::ffi::c_uint) -> CUresult;
        }
        cuInit(Flags)
    }
}
pub unsafe fn culib() -> &'static ::libloading::Library {
pub type CUhostFn = ::core::option::Option<unsafe extern "C" fn(userData: *mut ::core::ffi::c_void)>;
        extern "C" {
            fn cuMemAlloc_v2(dptr: *mut CUdeviceptr, bytesize: usize) -> CUresult;
        }
"#;
        let names: Vec<_> = driver_function_names(text).into_iter().collect();
        assert_eq!(names, vec!["cuInit".to_string(), "cuMemAlloc_v2".to_string()]);
    }
}
