//! Compiled hooks on disk, so a restart does not recompile (a JavaScript component takes ~10 s
//! to compile and ~1 ms to load from here).
//!
//! Layout: `CACHE_DIR/<engine key>/<component sha256>.cwasm`. The engine key covers the
//! wasmtime version and every code-generation setting, so an artifact is only ever loaded into
//! an engine that produced it. The directory must be as trusted as the server binary:
//! a `.cwasm` is native code.

use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

use crate::hooks::engine::compatibility_key;

pub struct CompileCache {
    dir: PathBuf,
}

impl CompileCache {
    pub fn open(root: &Path, engine: &Engine) -> std::io::Result<Self> {
        let dir = root.join(compatibility_key(engine));
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    fn path_for(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}.cwasm"))
    }

    /// The cached compilation of the component with this hash, if there is a usable one.
    /// An unreadable or incompatible artifact is removed and reported as a miss.
    pub fn load(&self, engine: &Engine, sha256: &str) -> Option<Component> {
        let path = self.path_for(sha256);
        if !path.exists() {
            return None;
        }
        match deserialize(engine, &path) {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e.root_cause(),
                    "discarding unusable compiled hook");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores a compiled component; written to a temporary file and renamed, so a crash never
    /// leaves a half-written artifact under the final name.
    pub fn store(&self, component: &Component, sha256: &str) -> std::io::Result<()> {
        let bytes = component
            .serialize()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let path = self.path_for(sha256);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, &path)
    }
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: `deserialize_file` trusts the file to be an artifact wasmtime produced; it still
    // checks the header, the wasmtime version and the engine settings. Files under the cache
    // directory are only ever written by `CompileCache::store` from `Component::serialize`,
    // and the directory is documented as trusted like the binary itself.
    unsafe { Component::deserialize_file(engine, path) }
}
