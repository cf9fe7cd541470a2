//! `hookauth hooks new NAME [--kind event|gate] --lang rust|js|python`: writes a hook project
//! that builds as is, from the templates in `templates/hook/` (`templates/hook/gate/` for a
//! gate; embedded in the binary, so the tool works anywhere). Every project carries its own copy
//! of the WIT it was made against (`wit/hooks.wit` for an after-event hook; `wit/gate.wit` and,
//! in `wit/deps/`, the 0.1.0 package it uses for a gate), so it keeps building when the server
//! moves on to a later interface version.

use std::path::{Path, PathBuf};

const WIT: &str = include_str!("../../../wit/v0.1.0/hooks.wit");
const README: &str = include_str!("../../../templates/hook/README.md.tmpl");
const HOOKS_TOML: &str = include_str!("../../../templates/hook/hooks.toml.tmpl");
/// hookauth:hooks@0.2.0; it uses 0.1.0 ([`WIT`]), which goes into the project's `wit/deps/`.
const GATE_WIT: &str = include_str!("../../../wit/v0.2.0/gate.wit");
const GATE_README: &str = include_str!("../../../templates/hook/gate/README.md.tmpl");
const GATE_HOOKS_TOML: &str = include_str!("../../../templates/hook/gate/hooks.toml.tmpl");

/// What kind of hook `hooks new` scaffolds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// An after-event hook (world `hook` of hookauth:hooks@0.1.0): observes committed events.
    #[default]
    Event,
    /// A gate (world `gate-hook` of hookauth:hooks@0.2.0): decides inline, before the flow
    /// commits (deny a registration or login, add token claims).
    Gate,
}

impl Kind {
    /// The WIT world the project is built for.
    fn world(self) -> &'static str {
        match self {
            Kind::Event => "hook",
            Kind::Gate => "gate-hook",
        }
    }
}

/// A language `hooks new` can scaffold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Language {
    Rust,
    Js,
    Python,
}

/// One file of a template: where it goes in the project, and its text.
struct Template {
    path: &'static str,
    text: &'static str,
    executable: bool,
}

const fn file(path: &'static str, text: &'static str) -> Template {
    Template {
        path,
        text,
        executable: false,
    }
}

impl Language {
    fn display_name(self) -> &'static str {
        match self {
            Language::Rust => "Rust",
            Language::Js => "JavaScript",
            Language::Python => "Python",
        }
    }

    fn flag(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Js => "js",
            Language::Python => "python",
        }
    }

    fn templates(self) -> Vec<Template> {
        match self {
            Language::Rust => vec![
                file(
                    "Cargo.toml",
                    include_str!("../../../templates/hook/rust/Cargo.toml.tmpl"),
                ),
                file(
                    ".cargo/config.toml",
                    include_str!("../../../templates/hook/rust/.cargo/config.toml.tmpl"),
                ),
                file(
                    "src/lib.rs",
                    include_str!("../../../templates/hook/rust/src/lib.rs.tmpl"),
                ),
                file(
                    ".gitignore",
                    include_str!("../../../templates/hook/rust/gitignore.tmpl"),
                ),
            ],
            Language::Js => vec![
                file(
                    "package.json",
                    include_str!("../../../templates/hook/js/package.json.tmpl"),
                ),
                file(
                    "hook.js",
                    include_str!("../../../templates/hook/js/hook.js.tmpl"),
                ),
                file(
                    ".gitignore",
                    include_str!("../../../templates/hook/js/gitignore.tmpl"),
                ),
            ],
            Language::Python => vec![
                file(
                    "app.py",
                    include_str!("../../../templates/hook/python/app.py.tmpl"),
                ),
                file(
                    "requirements.txt",
                    include_str!("../../../templates/hook/python/requirements.txt.tmpl"),
                ),
                Template {
                    path: "build.sh",
                    text: include_str!("../../../templates/hook/python/build.sh.tmpl"),
                    executable: true,
                },
                file(
                    ".gitignore",
                    include_str!("../../../templates/hook/python/gitignore.tmpl"),
                ),
            ],
        }
    }

    fn gate_templates(self) -> Vec<Template> {
        match self {
            Language::Rust => vec![
                file(
                    "Cargo.toml",
                    include_str!("../../../templates/hook/gate/rust/Cargo.toml.tmpl"),
                ),
                file(
                    ".cargo/config.toml",
                    include_str!("../../../templates/hook/rust/.cargo/config.toml.tmpl"),
                ),
                file(
                    "src/lib.rs",
                    include_str!("../../../templates/hook/gate/rust/src/lib.rs.tmpl"),
                ),
                file(
                    ".gitignore",
                    include_str!("../../../templates/hook/rust/gitignore.tmpl"),
                ),
            ],
            Language::Js => vec![
                file(
                    "package.json",
                    include_str!("../../../templates/hook/js/package.json.tmpl"),
                ),
                file(
                    "hook.js",
                    include_str!("../../../templates/hook/gate/js/hook.js.tmpl"),
                ),
                file(
                    ".gitignore",
                    include_str!("../../../templates/hook/js/gitignore.tmpl"),
                ),
            ],
            Language::Python => vec![
                file(
                    "app.py",
                    include_str!("../../../templates/hook/gate/python/app.py.tmpl"),
                ),
                file(
                    "requirements.txt",
                    include_str!("../../../templates/hook/python/requirements.txt.tmpl"),
                ),
                Template {
                    path: "build.sh",
                    text: include_str!("../../../templates/hook/python/build.sh.tmpl"),
                    executable: true,
                },
                file(
                    ".gitignore",
                    include_str!("../../../templates/hook/python/gitignore.tmpl"),
                ),
            ],
        }
    }

    /// The file the author edits.
    fn source(self) -> &'static str {
        match self {
            Language::Rust => "src/lib.rs",
            Language::Js => "hook.js",
            Language::Python => "app.py",
        }
    }

    /// The commands that build the project, run in its directory.
    pub fn build_commands(self) -> &'static str {
        match self {
            Language::Rust => "rustup target add wasm32-wasip2   # once\ncargo build --release",
            Language::Js => "npm install\nnpm run build",
            Language::Python => {
                "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt   # once\n\
                 ./build.sh"
            }
        }
    }

    /// Where the build puts the component, relative to the project.
    pub fn wasm_path(self, name: &HookName) -> String {
        match self {
            Language::Rust => format!(
                "target/wasm32-wasip2/release/{}.wasm",
                name.0.replace('-', "_")
            ),
            Language::Js | Language::Python => format!("{}.wasm", name.0),
        }
    }

    /// The memory line of the hooks.toml entry: the JS and Python engines need more than the
    /// default 16 MiB.
    fn memory_line(self) -> &'static str {
        match self {
            Language::Rust => {
                "# memory_mib = 16                   # linear memory cap (default 16)"
            }
            Language::Js | Language::Python => {
                "memory_mib = 64                      # the language's runtime needs more than the default 16"
            }
        }
    }

    /// A gate's wall-clock line: the JS and Python interpreters need more than the default
    /// 50 ms per decision.
    fn gate_timeout_line(self) -> &'static str {
        match self {
            Language::Rust => {
                "# gate_timeout_ms = 50              # wall clock per decision (default 50)"
            }
            Language::Js => {
                "gate_timeout_ms = 500                # wall clock per decision; QuickJS needs more than the default 50"
            }
            Language::Python => {
                "gate_timeout_ms = 2000               # wall clock per decision; CPython needs more than the default 50"
            }
        }
    }

    /// A gate's CPU budget line: an interpreter spends far more fuel than compiled Rust.
    fn gate_fuel_line(self) -> &'static str {
        match self {
            Language::Rust => {
                "# gate_fuel = 5_000_000             # CPU budget per decision (default 5_000_000)"
            }
            Language::Js => {
                "gate_fuel = 100_000_000              # CPU budget per decision; QuickJS needs more than the default 5_000_000"
            }
            Language::Python => {
                "gate_fuel = 500_000_000              # CPU budget per decision; CPython needs more than the default 5_000_000"
            }
        }
    }
}

/// A hook's name: kebab-case ASCII, usable as its hooks.toml key, its `.wasm` file name, a
/// Cargo crate name and an npm package name alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookName(String);

/// Names a Cargo package cannot take.
const RESERVED: &[&str] = &[
    "test",
    "std",
    "core",
    "alloc",
    "proc-macro",
    "self",
    "crate",
];

impl HookName {
    pub fn parse(name: &str) -> Result<Self, ScaffoldError> {
        let invalid = |why: &str| ScaffoldError::InvalidName {
            name: name.to_owned(),
            why: why.to_owned(),
        };
        if name.is_empty() || name.len() > 64 {
            return Err(invalid("it must be 1 to 64 characters long"));
        }
        if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(invalid("it must start with a lowercase letter"));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(invalid("use only a-z, 0-9 and '-'"));
        }
        if name.ends_with('-') || name.contains("--") {
            return Err(invalid("'-' must separate words"));
        }
        if RESERVED.contains(&name) {
            return Err(invalid("it is reserved by Cargo"));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error("invalid hook name {name:?}: {why}")]
    InvalidName { name: String, why: String },
    #[error("{0} exists and is not empty; choose another name or --dir")]
    NotEmpty(PathBuf),
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A project written by [`scaffold`].
#[derive(Debug)]
pub struct Project {
    pub dir: PathBuf,
    /// Paths relative to `dir`, in the order written.
    pub files: Vec<String>,
    pub build_commands: &'static str,
    /// Where the build puts the component, relative to `dir`.
    pub wasm: String,
}

/// Writes a new hook project of `kind` for `name` into `dir`, which must not exist or be empty.
pub fn scaffold(
    dir: &Path,
    name: &HookName,
    language: Language,
    kind: Kind,
) -> Result<Project, ScaffoldError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| ScaffoldError::Io { path, source }
    };
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).map_err(io(dir))?;
        if entries.next().is_some() {
            return Err(ScaffoldError::NotEmpty(dir.to_owned()));
        }
    }

    let wasm = language.wasm_path(name);
    let fill = |text: &str| {
        text.replace("__HOOK_NAME__", name.as_str())
            .replace("__CRATE_NAME__", &name.as_str().replace('-', "_"))
            .replace("__LANGUAGE__", language.display_name())
            .replace("__LANG__", language.flag())
            .replace("__SOURCE__", language.source())
            .replace("__BUILD__", language.build_commands())
            .replace("__WASM__", &wasm)
            .replace("__MEMORY__", language.memory_line())
            .replace("__GATE_TIMEOUT__", language.gate_timeout_line())
            .replace("__GATE_FUEL__", language.gate_fuel_line())
            .replace("__WORLD__", kind.world())
    };
    let files = match kind {
        Kind::Event => {
            let mut files = language.templates();
            files.push(file("wit/hooks.wit", WIT));
            files.push(file("hooks.toml", HOOKS_TOML));
            files.push(file("README.md", README));
            files
        }
        Kind::Gate => {
            let mut files = language.gate_templates();
            files.push(file("wit/gate.wit", GATE_WIT));
            // Where WIT tools look for the packages a package uses.
            files.push(file("wit/deps/hookauth-hooks/hooks.wit", WIT));
            files.push(file("hooks.toml", GATE_HOOKS_TOML));
            files.push(file("README.md", GATE_README));
            files
        }
    };

    let mut written = Vec::with_capacity(files.len());
    for template in files {
        let path = dir.join(template.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        // The WIT is copied verbatim: it is the published interface, not a template.
        let text = if template.path.ends_with(".wit") {
            template.text.to_owned()
        } else {
            fill(template.text)
        };
        std::fs::write(&path, text).map_err(io(&path))?;
        if template.executable {
            make_executable(&path).map_err(io(&path))?;
        }
        written.push(template.path.to_owned());
    }
    Ok(Project {
        dir: dir.to_owned(),
        files: written,
        build_commands: language.build_commands(),
        wasm,
    })
}

#[cfg(unix)]
fn make_executable(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
}

#[cfg(not(unix))]
fn make_executable(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_names_are_kebab_case_and_usable_everywhere() {
        for ok in ["greet", "welcome-slack", "audit2", "a"] {
            assert_eq!(HookName::parse(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "", "Greet", "2fa", "-x", "x-", "a--b", "a_b", "a b", "../x", "test", "héllo",
        ] {
            assert!(HookName::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(HookName::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn every_placeholder_is_filled_and_the_wit_is_copied_verbatim() {
        for kind in [Kind::Event, Kind::Gate] {
            for language in [Language::Rust, Language::Js, Language::Python] {
                let dir = tempfile::tempdir().unwrap();
                let project_dir = dir.path().join("welcome-slack");
                let name = HookName::parse("welcome-slack").unwrap();
                let project = scaffold(&project_dir, &name, language, kind).unwrap();
                for file in &project.files {
                    let text = std::fs::read_to_string(project_dir.join(file)).unwrap();
                    let left = text
                        .match_indices("__")
                        .any(|(i, _)| text[i + 2..].starts_with(|c: char| c.is_ascii_uppercase()));
                    assert!(
                        !left,
                        "{kind:?} {language:?} {file}: placeholder left:\n{text}"
                    );
                }
                let wit = |path: &str| std::fs::read_to_string(project_dir.join(path)).unwrap();
                match kind {
                    Kind::Event => assert_eq!(wit("wit/hooks.wit"), WIT),
                    Kind::Gate => {
                        assert_eq!(wit("wit/gate.wit"), GATE_WIT);
                        assert_eq!(wit("wit/deps/hookauth-hooks/hooks.wit"), WIT);
                        assert!(!project_dir.join("wit/hooks.wit").exists());
                    }
                }
                let toml = std::fs::read_to_string(project_dir.join("hooks.toml")).unwrap();
                let manifest: toml::Table = toml::from_str(&toml).unwrap();
                let entry = &manifest["hooks"]["welcome-slack"];
                if kind == Kind::Gate {
                    assert_eq!(entry["on_error"].as_str(), Some("deny"), "{toml}");
                    if language != Language::Rust {
                        assert_eq!(entry["memory_mib"].as_integer(), Some(64), "{toml}");
                        assert!(
                            entry["gate_timeout_ms"].as_integer().unwrap() > 50,
                            "{toml}"
                        );
                        assert!(
                            entry["gate_fuel"].as_integer().unwrap() > 5_000_000,
                            "{toml}"
                        );
                    }
                }
            }
        }
    }

    /// The JS and Python build files are shared by both kinds; only the world differs.
    #[test]
    fn each_kind_builds_its_own_world() {
        for (kind, world) in [(Kind::Event, "hook"), (Kind::Gate, "gate-hook")] {
            let dir = tempfile::tempdir().unwrap();
            let name = HookName::parse("greet").unwrap();
            let js = dir.path().join("js");
            scaffold(&js, &name, Language::Js, kind).unwrap();
            let package = std::fs::read_to_string(js.join("package.json")).unwrap();
            assert!(
                package.contains(&format!("--world-name {world} ")),
                "{package}"
            );
            let py = dir.path().join("py");
            scaffold(&py, &name, Language::Python, kind).unwrap();
            let build = std::fs::read_to_string(py.join("build.sh")).unwrap();
            assert!(build.contains(&format!("-w {world} ")), "{build}");
        }
    }

    #[test]
    fn refuses_to_overwrite_a_non_empty_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keep.txt"), "mine").unwrap();
        let name = HookName::parse("greet").unwrap();
        let err = scaffold(dir.path(), &name, Language::Rust, Kind::Gate).unwrap_err();
        assert!(matches!(err, ScaffoldError::NotEmpty(_)), "{err}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("keep.txt")).unwrap(),
            "mine"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
