//! Compiled hooks on disk, so a restart does not recompile (a JavaScript component takes ~10 s
//! to compile and ~1 ms to load from here).
//!
//! Layout: `CACHE_DIR/<engine key>/<component sha256>.cwasm`. The engine key covers the
//! wasmtime version and every code-generation setting, so an artifact is only ever loaded into
//! an engine that produced it.
//!
//! A `.cwasm` is native code that `Component::deserialize` runs without checking it, so nothing
//! on disk is trusted by its name:
//! - every artifact carries an HMAC-SHA256 over the engine key, the sha256 of the component it
//!   was compiled from and the code, keyed with a [`CacheKey`] the server holds (derived from
//!   its `secret_key`). An artifact that is corrupt, was swapped with another hook's or was
//!   written by anyone else fails the check and is discarded and recompiled, with a warning;
//! - the directories are created 0700 and refused when they are not owned by the server's user
//!   or are writable by group or others;
//! - files are created with `O_CREAT|O_EXCL|O_NOFOLLOW` (a name planted in advance, symlink or
//!   not, is never written through) and renamed into place; artifacts are opened with
//!   `O_NOFOLLOW` and must be regular files owned by the server's user.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::hooks::engine::compatibility_key;

/// First bytes of every artifact file: a file without them (an older unauthenticated artifact,
/// a bare wasmtime `.cwasm`) is not ours.
const MAGIC: &[u8; 8] = b"HKAUTHC1";
const TAG_LEN: usize = 32;
/// Domain separation: the server's `secret_key` also signs tokens and seals tenant secrets.
const HKDF_INFO: &[u8] = b"hookauth compile cache v1";
/// Where the key lives when no server secret is given (`CompileCache::open` with `None`).
pub const KEY_FILE: &str = "artifact.key";
/// Largest artifact read back. The largest real guest (SpiderMonkey) compiles to ~43 MB; a file
/// beyond this is not one of ours and is not read into memory.
pub const MAX_ARTIFACT_BYTES: u64 = 1 << 30;
/// Names tried for a temporary file before giving up: a name already taken (a crashed
/// writer's leftover, or something planted) is skipped, never opened.
const TMP_ATTEMPTS: u32 = 8;

/// The key that authenticates artifacts. Never printed.
#[derive(Clone)]
pub struct CacheKey([u8; 32]);

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CacheKey(<key>)")
    }
}

impl CacheKey {
    /// Derived (HKDF-SHA256) from the server's `secret_key`: whoever can write the cache
    /// directory still cannot make an artifact the server accepts.
    pub fn from_server_secret(secret: &[u8]) -> Self {
        let mut key = [0u8; 32];
        Hkdf::<Sha256>::new(None, secret)
            .expand(HKDF_INFO, &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Self(key)
    }

    fn mac(&self, engine_key: &str, sha256: &str) -> Hmac<Sha256> {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes keys of any size");
        // Length-prefixed, so no two (engine key, sha256) pairs feed the same bytes.
        for part in [engine_key.as_bytes(), sha256.as_bytes()] {
            mac.update(&(part.len() as u64).to_le_bytes());
            mac.update(part);
        }
        mac
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("compile cache directory {}: {reason}", path.display())]
    Unsafe { path: PathBuf, reason: String },
    #[error("compile cache {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.to_owned(),
        source,
    }
}

#[derive(Clone)]
pub struct CompileCache {
    dir: PathBuf,
    engine_key: String,
    key: CacheKey,
}

impl CompileCache {
    /// Opens (creating, 0700) `root/<engine key>/`. `key` is the server's; `None` (tests, tools
    /// without a server secret) uses a random key kept in `root/artifact.key` (0600), which
    /// still binds every artifact to its component and rejects corrupt ones, but is only as
    /// private as the directory.
    pub fn open(root: &Path, engine: &Engine, key: Option<&CacheKey>) -> Result<Self, CacheError> {
        private_dir(root, true)?;
        let engine_key = compatibility_key(engine);
        let dir = root.join(&engine_key);
        private_dir(&dir, false)?;
        let key = match key {
            Some(k) => k.clone(),
            None => key_file(&root.join(KEY_FILE))?,
        };
        Ok(Self {
            dir,
            engine_key,
            key,
        })
    }

    fn path_for(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}.cwasm"))
    }

    /// The cached compilation of the component with this hash, if there is an authentic one.
    /// Anything else under its name (corrupt, another hook's, not ours, not a regular file) is
    /// removed with a warning and reported as a miss, so the caller recompiles.
    pub fn load(&self, engine: &Engine, sha256: &str) -> Option<Component> {
        let path = self.path_for(sha256);
        let code = match self.read_verified(&path, sha256) {
            Ok(Some(code)) => code,
            Ok(None) => return None,
            Err(reason) => {
                tracing::warn!(path = %path.display(), %reason,
                    "discarding a compiled hook that is not this server's artifact for this \
                     component; recompiling");
                let _ = std::fs::remove_file(&path);
                return None;
            }
        };
        match deserialize(engine, &code) {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e.root_cause(),
                    "discarding unusable compiled hook; recompiling");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// The artifact's code once its tag checks out; `Ok(None)` when there is none.
    fn read_verified(&self, path: &Path, sha256: &str) -> Result<Option<Vec<u8>>, String> {
        let mut file = match OpenOptions::new()
            .read(true)
            // A symlink is refused (ELOOP), and a FIFO planted under the name cannot block us.
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot open it: {e}")),
        };
        let meta = file.metadata().map_err(|e| e.to_string())?;
        if !meta.is_file() {
            return Err("not a regular file".into());
        }
        if meta.uid() != effective_uid() {
            return Err(format!("owned by uid {}, not the server's", meta.uid()));
        }
        if meta.len() > MAX_ARTIFACT_BYTES {
            return Err(format!("{} bytes, larger than any artifact", meta.len()));
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        Read::by_ref(&mut file)
            .take(MAX_ARTIFACT_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| e.to_string())?;
        if bytes.len() < MAGIC.len() + TAG_LEN || &bytes[..MAGIC.len()] != MAGIC {
            return Err("not an authenticated artifact".into());
        }
        let tag_end = MAGIC.len() + TAG_LEN;
        let mut mac = self.key.mac(&self.engine_key, sha256);
        mac.update(&bytes[tag_end..]);
        Mac::verify_slice(mac, &bytes[MAGIC.len()..tag_end])
            .map_err(|_| "its authentication tag does not match (corrupt, or compiled from another component, or not written by this server)")?;
        bytes.drain(..tag_end);
        Ok(Some(bytes))
    }

    /// Stores a compiled component: written to a fresh temporary file (never one that
    /// already exists, never through a symlink) and renamed, so a crash never leaves a
    /// half-written artifact under the final name.
    pub fn store(&self, component: &Component, sha256: &str) -> Result<(), CacheError> {
        let code = component.serialize().map_err(|e| CacheError::Io {
            path: self.dir.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let mut mac = self.key.mac(&self.engine_key, sha256);
        mac.update(&code);
        let tag = Mac::finalize(mac).into_bytes();
        let path = self.path_for(sha256);
        let (tmp, mut file) = create_tmp(&self.dir, sha256)?;
        let written = file
            .write_all(MAGIC)
            .and_then(|()| file.write_all(&tag))
            .and_then(|()| file.write_all(&code))
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(io_err(&path)(e));
        }
        Ok(())
    }
}

/// The temporary name for an artifact being written; `attempt` makes it unique when an
/// earlier name is taken.
pub fn tmp_name(sha256: &str, attempt: u32) -> String {
    format!(".{sha256}.{}.{attempt}.tmp", std::process::id())
}

fn create_tmp(dir: &Path, sha256: &str) -> Result<(PathBuf, File), CacheError> {
    let mut last = None;
    for attempt in 0..TMP_ATTEMPTS {
        let tmp = dir.join(tmp_name(sha256, attempt));
        match new_private_file(&tmp) {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(io_err(&tmp)(e)),
        }
    }
    Err(io_err(dir)(last.unwrap_or_else(|| {
        std::io::Error::other("no free temporary name")
    })))
}

/// `O_CREAT|O_EXCL|O_NOFOLLOW`, mode 0600: fails when anything, a symlink included, already
/// has the name.
fn new_private_file(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Creates `path` (0700) if needed, then refuses it unless it is a directory owned by the
/// server's user and not writable by group or others. `follow`: whether `path` itself may be a
/// symlink (the configured root may be; the directories inside it may not).
pub fn private_dir(path: &Path, follow: bool) -> Result<(), CacheError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(io_err(path))?;
    let meta = if follow {
        std::fs::metadata(path)
    } else {
        std::fs::symlink_metadata(path)
    }
    .map_err(io_err(path))?;
    let refuse = |reason: String| {
        Err(CacheError::Unsafe {
            path: path.to_owned(),
            reason,
        })
    };
    if !meta.is_dir() {
        return refuse("not a directory (a symlink or a file is in its place)".into());
    }
    let uid = effective_uid();
    if meta.uid() != uid {
        return refuse(format!(
            "owned by uid {}, not by the server's user (uid {uid}); compiled hooks are native \
             code, so only the server's user may write there",
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return refuse(format!(
            "writable by group or others (mode {:o}); compiled hooks are native code: \
             `chmod go-w` it or use another directory",
            meta.mode() & 0o7777
        ));
    }
    Ok(())
}

/// The random key in `path`, created (32 bytes, 0600) if missing. Created under a temporary
/// name and hard-linked into place, so two processes starting together agree on one key.
fn key_file(path: &Path) -> Result<CacheKey, CacheError> {
    for _ in 0..2 {
        match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
        {
            Ok(mut file) => {
                let meta = file.metadata().map_err(io_err(path))?;
                if !meta.is_file() || meta.uid() != effective_uid() || meta.mode() & 0o077 != 0 {
                    return Err(CacheError::Unsafe {
                        path: path.to_owned(),
                        reason: "the key file must be a regular file of the server's user, \
                                 mode 0600"
                            .into(),
                    });
                }
                let mut key = [0u8; 32];
                let mut rest = Vec::new();
                file.read_exact(&mut key).map_err(io_err(path))?;
                file.take(1).read_to_end(&mut rest).map_err(io_err(path))?;
                if !rest.is_empty() {
                    return Err(CacheError::Unsafe {
                        path: path.to_owned(),
                        reason: "the key file is not 32 bytes".into(),
                    });
                }
                return Ok(CacheKey(key));
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(path)(e)),
        }
        let mut key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
        let dir = path.parent().unwrap_or(Path::new("."));
        let (tmp, mut file) = create_tmp(dir, KEY_FILE)?;
        let linked = file
            .write_all(&key)
            .and_then(|()| std::fs::hard_link(&tmp, path));
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => return Ok(CacheKey(key)),
            // Another process won the race: read its key.
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err(path)(e)),
        }
    }
    Err(io_err(path)(std::io::Error::other(
        "the key file keeps changing",
    )))
}

fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    #[allow(unsafe_code)]
    unsafe {
        libc::geteuid()
    }
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, code: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `deserialize` trusts the bytes to be an artifact wasmtime produced (it still
    // checks the header, the wasmtime version and the engine settings). These bytes carry a
    // valid HMAC under the server's key over this engine's key and the component's sha256, so
    // they are exactly what `CompileCache::store` wrote from `Component::serialize` of that
    // component on an engine with these settings.
    unsafe { Component::deserialize(engine, code) }
}

/// Where compiled hooks go when `[hooks] cache_dir` is unset: `$XDG_CACHE_HOME/hookauth`, else
/// `$HOME/.cache/hookauth` (the XDG default), else nowhere (compile on every start).
pub fn default_dir() -> Option<PathBuf> {
    default_dir_from(std::env::var_os("XDG_CACHE_HOME"), std::env::var_os("HOME"))
}

/// [`default_dir`] for the given `XDG_CACHE_HOME` and `HOME`. Relative values are ignored, as
/// the XDG specification says.
pub fn default_dir_from(
    xdg_cache_home: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
) -> Option<PathBuf> {
    let absolute = |v: Option<std::ffi::OsString>| v.map(PathBuf::from).filter(|p| p.is_absolute());
    absolute(xdg_cache_home)
        .or_else(|| absolute(home).map(|h| h.join(".cache")))
        .map(|base| base.join("hookauth"))
}
