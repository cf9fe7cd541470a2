//! Command-line interface of the `hookauth` binary: its arguments here, what it does with
//! them in [`run`].

mod run;

pub use run::main;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::hooks::scaffold::Language;

#[derive(Parser, Debug)]
#[command(
    name = "hookauth",
    version,
    about = "Authentication server with sandboxed WebAssembly hooks"
)]
pub struct Cli {
    /// Config file (default: ./hookauth.toml if it exists).
    #[arg(long, global = true, env = "HOOKAUTH_CONFIG")]
    pub config: Option<PathBuf>,
    /// sqlite://FILE or postgres://... (env: HOOKAUTH_DATABASE_URL).
    #[arg(long, global = true)]
    pub database_url: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server.
    Serve {
        /// Address to listen on (env: HOOKAUTH_BIND).
        #[arg(long)]
        bind: Option<String>,
        /// Directory of Wasm hooks for the default tenant (default: hooks/ if it exists;
        /// env: HOOKAUTH_HOOKS__DIR).
        #[arg(long)]
        hooks: Option<PathBuf>,
        /// Skip invalid hooks with a warning instead of refusing to start.
        #[arg(long)]
        lenient_hooks: bool,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Import users from another system into the configured database (README "Coming from
    /// fastapi-fullauth"). Re-running imports only what is new; nothing existing is changed.
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// Write, check and try hooks; inspect event delivery.
    Hooks {
        #[command(subcommand)]
        command: HooksCommand,
    },
    /// Tools for trying hookauth locally (never for production).
    Dev {
        #[command(subcommand)]
        command: DevCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum DevCommand {
    /// A local mailbox for the example hooks' emails: `POST /send` takes them, `/` lists them
    /// (with clickable verification links), `/messages` as JSON. Kept in memory.
    Mailbox {
        /// Address to listen on (the example hooks send to 127.0.0.1:9000).
        #[arg(long, default_value = "127.0.0.1:9000")]
        bind: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum ImportCommand {
    /// Users, roles, permissions, profile columns, OAuth links and TOTP factors from a
    /// fastapi-fullauth database (SQLite or PostgreSQL; opened read-only).
    Fullauth {
        /// The fastapi-fullauth database: sqlite://PATH or postgres://... (SQLAlchemy's
        /// `+driver` suffixes are accepted).
        #[arg(long = "from")]
        from: String,
        #[command(flatten)]
        options: ImportOptions,
    },
    /// Users from a JSON-lines file (one user or role per line; `-` reads stdin).
    Users {
        #[arg(long)]
        jsonl: String,
        #[command(flatten)]
        options: ImportOptions,
    },
}

#[derive(clap::Args, Debug)]
pub struct ImportOptions {
    /// Tenant to import into (it must exist).
    #[arg(long, default_value = "default")]
    pub tenant: String,
    /// Check and report everything, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a verified superuser. The password is read from a prompt, or from stdin when
    /// stdin is not a terminal; never from the command line.
    CreateSuperuser {
        #[arg(long)]
        email: String,
        /// Tenant (default: the default tenant).
        #[arg(long, default_value = "default")]
        tenant: String,
    },
}

/// Which running server a command manages: its URL, and the bearer token from the
/// environment (never an argument: arguments show in process lists and shell history).
#[derive(clap::Args, Debug, Clone)]
pub struct ServerArgs {
    /// The server's base URL (env: HOOKAUTH_SERVER; default http://127.0.0.1:8000). The token
    /// is read from HOOKAUTH_TOKEN: the operator token, or a tenant admin's access token.
    #[arg(long, env = "HOOKAUTH_SERVER", default_value = crate::remote::DEFAULT_SERVER)]
    pub server: String,
}

#[derive(Subcommand, Debug)]
pub enum TenantCommand {
    /// Create a tenant, served at /t/NAME/api/v1/auth. With --server, through a running
    /// server's API (operator token in HOOKAUTH_TOKEN); otherwise in the configured database.
    Create {
        name: String,
        /// The server's base URL; omit to write the configured database directly.
        #[arg(long)]
        server: Option<String>,
    },
    /// List tenants through a running server's API (operator token in HOOKAUTH_TOKEN).
    List {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Delete a tenant with its users, sessions, events and hooks, through a running server's
    /// API (operator token in HOOKAUTH_TOKEN).
    Delete {
        name: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum HooksCommand {
    /// Create a hook project that builds as is: source, WIT, build setup, hooks.toml entry and
    /// a README with the next steps.
    New {
        /// The hook's name, kebab-case (its hooks.toml key and .wasm file name).
        name: String,
        /// What kind of hook to make.
        #[arg(long, value_enum, default_value = "event")]
        kind: crate::hooks::scaffold::Kind,
        #[arg(long, value_enum)]
        lang: Language,
        /// Where to create it (default: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Deploy (or replace) a tenant's hook on a running server: the server validates and
    /// compiles it before answering, and every replica applies it at once.
    Deploy {
        /// The component (.wasm).
        file: PathBuf,
        /// The hook's name (kebab-case).
        #[arg(long)]
        name: String,
        /// The tenant (default: the default tenant).
        #[arg(long, default_value = "default")]
        tenant: String,
        /// A JSON object with the hooks.toml keys: events, order, fuel, memory_mib,
        /// timeout_ms, allowed_hosts, config, secrets.
        #[arg(long)]
        manifest: Option<PathBuf>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// List a tenant's hooks on a running server (platform hooks too), one JSON object a line.
    List {
        #[arg(long, default_value = "default")]
        tenant: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Remove a tenant's hook from a running server.
    Rm {
        name: String,
        #[arg(long, default_value = "default")]
        tenant: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// List events whose delivery failed for good.
    Failures {
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Gate decisions, newest first, one JSON object a line: which hook decided what, at which
    /// decision point, about whom, how fast.
    Decisions {
        /// Only this tenant's.
        #[arg(long)]
        tenant: Option<String>,
        /// Only this hook's.
        #[arg(long)]
        hook: Option<String>,
        /// Only this decision: allow, deny, allow_with_changes, claims, failed_deny,
        /// failed_allow.
        #[arg(long)]
        decision: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Queue a failed event again for the handlers that failed it; with --hook, run the
    /// recorded event through that build of a hook instead, leaving delivery state untouched.
    Replay {
        event_id: String,
        /// A new build of a hook to try the event on (nothing is queued).
        #[arg(long)]
        hook: Option<PathBuf>,
        #[arg(long)]
        manifest: Option<PathBuf>,
        #[arg(long)]
        name: Option<String>,
    },
    /// Is FILE a valid hook? Prints its WIT version, events, imports and limits, or every
    /// problem, checked against its hooks.toml entry like the server does at start.
    Check {
        file: PathBuf,
        /// The operator's hooks.toml; the entry named after the hook is used.
        #[arg(long)]
        manifest: Option<PathBuf>,
        /// The hook's name in hooks.toml (default: the file name without .wasm).
        #[arg(long)]
        name: Option<String>,
    },
    /// Run one event through FILE with the server's limits and capabilities, and print the
    /// result, fuel, duration and outbound requests (its logs go to the log as usual). A
    /// decision point instead of an event asks the hook's gate and prints its decision.
    Run {
        file: PathBuf,
        /// after_register, after_login, send_verification_email, ...; or a decision point:
        /// before_register, before_login, check_password, token_claims.
        #[arg(long)]
        event: String,
        /// The event's arguments as JSON, e.g. {"user": {...}} (default: a realistic sample).
        /// For a decision point: {"email", "profile"}, {"user"}, {"user" or "email",
        /// "password", "why"}, {"user", "grant"}.
        #[arg(long)]
        payload: Option<PathBuf>,
        #[arg(long)]
        manifest: Option<PathBuf>,
        #[arg(long)]
        name: Option<String>,
    },
}
