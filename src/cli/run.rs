//! What the `hookauth` binary does with its arguments: the binary's edge, so errors are
//! `anyhow` here and typed everywhere below.
//!
//! It lives in the library, not in `main.rs`, because a release build compiles every generic
//! function a crate calls again in that crate: from `main.rs` the whole HTTP serve path, the
//! log subscriber and each report's serialiser were compiled a second time, as the last and
//! slowest step of a first build (BENCHMARKS.md "First build").

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Parser;

use super::{
    Cli, Command, DevCommand, HooksCommand, ImportCommand, ServerArgs, TenantCommand, UserCommand,
};
use crate::app::{Application, Launch, build_flows};
use crate::config::{Config, LogFormat, Overrides};
use crate::domain::{DecisionPoint, Email, EventKind, Password, TenantId};
use crate::flows::{self, Clock};
use crate::hooks::{scaffold, tools};
use crate::remote::{Remote, Token};

/// Errors are printed as one `error: ...` line with their causes, never with a backtrace
/// (which anyhow would add whenever RUST_BACKTRACE is set): they are for operators.
pub fn main() -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, skipping a cause whose text the message before it already holds
/// (our error types print their source; anyhow's context messages do not).
fn one_line(error: &anyhow::Error) -> String {
    let mut line = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !line.contains(&cause) {
            line.push_str(": ");
            line.push_str(&cause);
        }
    }
    line
}

/// Logs to stderr, filtered by `HOOKAUTH_LOG`, as text or one JSON object per line.
///
/// The filter is a list of `level` and `target=level` (`info,sqlx=warn,hookauth=debug`):
/// tracing-subscriber's `Targets`, which needs no regex engine in the build (its `EnvFilter`
/// brought one for span and field directives nobody here used).
fn init_logging(format: LogFormat) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    const DEFAULT: &str = "info,sqlx=warn";
    let default = || {
        DEFAULT
            .parse::<tracing_subscriber::filter::Targets>()
            .expect("the default filter parses")
    };
    // Unset or blank means the default (an empty `Targets` would silence every line); a value
    // that is not UTF-8 or does not parse is reported once logging is up.
    let (filter, refused) = match std::env::var("HOOKAUTH_LOG") {
        Ok(spec) if spec.trim().is_empty() => (default(), None),
        Ok(spec) => match spec.parse::<tracing_subscriber::filter::Targets>() {
            Ok(filter) => (filter, None),
            Err(e) => (default(), Some((spec, e.to_string()))),
        },
        Err(std::env::VarError::NotPresent) => (default(), None),
        Err(e @ std::env::VarError::NotUnicode(_)) => {
            (default(), Some(("(not UTF-8)".into(), e.to_string())))
        }
    };
    let builder = tracing_subscriber::fmt().with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .finish()
            .with(filter)
            .init(),
        LogFormat::Json => builder.json().finish().with(filter).init(),
    }
    if let Some((spec, error)) = refused {
        tracing::warn!(HOOKAUTH_LOG = %spec, %error, "ignored HOOKAUTH_LOG (want level or target=level, comma-separated); logging at {DEFAULT}");
    }
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // An author tool: needs no server configuration.
    if let Command::Hooks {
        command:
            HooksCommand::New {
                name,
                kind,
                lang,
                dir,
            },
    } = &cli.command
    {
        init_logging(LogFormat::Text);
        let name = scaffold::HookName::parse(name)?;
        let dir = dir.clone().unwrap_or_else(|| name.as_str().into());
        let project = scaffold::scaffold(&dir, &name, *lang, *kind)?;
        println!("created {}:", project.dir.display());
        for file in &project.files {
            println!("  {file}");
        }
        println!(
            "\nnext, in {}:\n  {}\nthen see README.md to check, try and deploy {}",
            project.dir.display(),
            project.build_commands.replace('\n', "\n  "),
            project.wasm
        );
        return Ok(());
    }
    if let Command::Dev {
        command: DevCommand::Mailbox { bind },
    } = &cli.command
    {
        init_logging(LogFormat::Text);
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .with_context(|| format!("cannot listen on {bind}"))?;
        let addr = listener.local_addr()?;
        tracing::info!("dev mailbox listening on http://{addr} (emails: http://{addr}/)");
        crate::dev::mailbox::serve(listener, shutdown_signal()).await?;
        return Ok(());
    }
    // Commands that manage a running server through its API: no local configuration.
    if is_remote(&cli.command) {
        init_logging(LogFormat::Text);
        return run_remote(&cli.command).await;
    }
    let mut overrides = Overrides {
        database_url: cli.database_url.clone(),
        ..Overrides::default()
    };
    if let Command::Serve {
        bind,
        hooks,
        lenient_hooks,
    } = &cli.command
    {
        overrides.bind = bind.clone();
        overrides.hooks_dir = hooks.clone();
        overrides.lenient_hooks = *lenient_hooks;
    }
    let config = Config::load(cli.config.as_deref(), std::env::vars(), overrides)?;
    init_logging(config.log_format);

    match cli.command {
        Command::Serve { .. } => {
            let app = Application::build(&config, Launch::default()).await?;
            app.run_until(shutdown_signal()).await?;
        }
        Command::Migrate => {
            build_flows(&config, Clock::System).await?;
            println!("migrations applied");
        }
        Command::User {
            command: UserCommand::CreateSuperuser { email, tenant },
        } => {
            let email = Email::parse(&email).map_err(anyhow::Error::msg)?;
            let tenant = TenantId::parse(&tenant).map_err(anyhow::Error::msg)?;
            let password = read_password()?;
            let flows = build_flows(&config, Clock::System).await?;
            let user = flows::create_superuser(&flows, &tenant, email, password).await?;
            println!("superuser {} created with id {}", user.email, user.id);
        }
        Command::Tenant {
            command: TenantCommand::Create { name, server: None },
        } => {
            let tenant = TenantId::parse(&name).map_err(anyhow::Error::msg)?;
            let flows = build_flows(&config, Clock::System).await?;
            flows
                .store
                .create_tenant(&tenant, flows.clock.now_millis())
                .await
                .with_context(|| format!("cannot create tenant {tenant}"))?;
            println!("tenant {tenant} created: /t/{tenant}/api/v1/auth");
        }
        Command::Import { command } => {
            let (source, options) = match command {
                ImportCommand::Fullauth { from, options } => (
                    crate::import::fullauth::read(&from)
                        .await
                        .context("cannot import from the fastapi-fullauth database")?,
                    options,
                ),
                ImportCommand::Users { jsonl, options } => {
                    (crate::import::jsonl::read(&jsonl)?, options)
                }
            };
            let tenant = TenantId::parse(&options.tenant).map_err(anyhow::Error::msg)?;
            let flows = build_flows(&config, Clock::System).await?;
            let report = flows::import_users(&flows, &tenant, source, options.dry_run).await?;
            if options.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_import_report(&report);
            }
        }
        Command::Tenant { .. } | Command::Dev { .. } => {
            unreachable!("remote commands and dev tools are handled above")
        }
        Command::Hooks {
            command:
                HooksCommand::Check {
                    file,
                    manifest,
                    name,
                },
        } => {
            let report = tools::check(&file, name.as_deref(), manifest.as_deref()).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Command::Hooks {
            command:
                HooksCommand::Run {
                    file,
                    event,
                    payload,
                    manifest,
                    name,
                },
        } => {
            let target = tools::RunTarget::parse(&event).with_context(|| {
                let known: Vec<_> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
                let points: Vec<_> = DecisionPoint::ALL.iter().map(|p| p.as_str()).collect();
                format!(
                    "unknown event {event:?}; events: {}; decision points: {}",
                    known.join(", "),
                    points.join(", ")
                )
            })?;
            let payload = match payload {
                Some(path) => Some(serde_json::from_str(
                    &std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read {}", path.display()))?,
                )?),
                None => None,
            };
            let (name, manifest) = (name.as_deref(), manifest.as_deref());
            let report = match target {
                tools::RunTarget::Event(kind) => {
                    tools::run(&file, name, manifest, kind, payload).await?
                }
                tools::RunTarget::Decision(point) => {
                    tools::decide(&file, name, manifest, point, payload).await?
                }
            };
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Command::Hooks { command } => {
            let flows = build_flows(&config, Clock::System).await?;
            match command {
                HooksCommand::Failures { limit } => {
                    for failed in flows.store.failed_events(None, limit).await? {
                        println!("{}", serde_json::to_string(&failed)?);
                    }
                    // Open circuits hold deliveries back without failing them yet.
                    for circuit in flows.store.open_circuits(None).await? {
                        println!("{}", serde_json::json!({ "open_circuit": circuit }));
                    }
                }
                HooksCommand::Decisions {
                    tenant,
                    hook,
                    decision,
                    limit,
                } => {
                    let tenant = tenant
                        .map(|t| TenantId::parse(&t))
                        .transpose()
                        .map_err(anyhow::Error::msg)?;
                    let query = crate::store::DecisionQuery {
                        tenant,
                        hook,
                        decision,
                        limit,
                    };
                    for d in flows.gate_decisions(&query).await? {
                        println!("{}", serde_json::to_string(&d)?);
                    }
                }
                HooksCommand::Replay {
                    event_id,
                    hook: Some(file),
                    manifest,
                    name,
                } => {
                    let report = tools::replay(
                        &flows.store,
                        &event_id,
                        &file,
                        name.as_deref(),
                        manifest.as_deref(),
                    )
                    .await?;
                    println!("{}", serde_json::to_string_pretty(&report)?);
                }
                HooksCommand::Replay {
                    event_id,
                    hook: None,
                    ..
                } => {
                    if !flows
                        .store
                        .replay_event(&event_id, None, None, flows.clock.now_millis())
                        .await?
                    {
                        bail!("no failed event with id {event_id}");
                    }
                    println!("event {event_id} queued for delivery again");
                }
                HooksCommand::Check { .. }
                | HooksCommand::Run { .. }
                | HooksCommand::New { .. }
                | HooksCommand::Deploy { .. }
                | HooksCommand::List { .. }
                | HooksCommand::Rm { .. } => {
                    unreachable!("handled above")
                }
            }
        }
    }
    Ok(())
}

/// Whether `command` acts on a running server through its API rather than on local
/// configuration and a database.
fn is_remote(command: &Command) -> bool {
    matches!(
        command,
        Command::Hooks {
            command: HooksCommand::Deploy { .. }
                | HooksCommand::List { .. }
                | HooksCommand::Rm { .. }
        } | Command::Tenant {
            command: TenantCommand::Create {
                server: Some(_),
                ..
            } | TenantCommand::List { .. }
                | TenantCommand::Delete { .. }
        }
    )
}

/// Runs a command chosen by [`is_remote`].
async fn run_remote(command: &Command) -> anyhow::Result<()> {
    let remote = |server: &str| -> anyhow::Result<Remote> {
        let token = std::env::var("HOOKAUTH_TOKEN").ok().and_then(Token::new);
        Ok(Remote::new(server, token)?)
    };
    let tenant = |t: &str| TenantId::parse(t).map_err(anyhow::Error::msg);
    match command {
        Command::Hooks {
            command:
                HooksCommand::Deploy {
                    file,
                    name,
                    tenant: t,
                    manifest,
                    server: ServerArgs { server },
                },
        } => {
            let t = tenant(t)?;
            let done = remote(server)?
                .deploy(&t, name, file, manifest.as_deref())
                .await?;
            let verb = if done.created { "deployed" } else { "replaced" };
            eprintln!("hook {name} {verb} in tenant {t}");
            println!("{}", serde_json::to_string_pretty(&done.hook)?);
        }
        Command::Hooks {
            command:
                HooksCommand::List {
                    tenant: t,
                    server: ServerArgs { server },
                },
        } => {
            for hook in remote(server)?.list_hooks(&tenant(t)?).await? {
                println!("{}", serde_json::to_string(&hook)?);
            }
        }
        Command::Hooks {
            command:
                HooksCommand::Rm {
                    name,
                    tenant: t,
                    server: ServerArgs { server },
                },
        } => {
            let t = tenant(t)?;
            remote(server)?.remove_hook(&t, name).await?;
            println!("hook {name} removed from tenant {t}");
        }
        Command::Tenant {
            command:
                TenantCommand::Create {
                    name,
                    server: Some(server),
                },
        } => {
            let t = tenant(name)?;
            remote(server)?.create_tenant(&t).await?;
            println!("tenant {t} created: /t/{t}/api/v1/auth");
        }
        Command::Tenant {
            command:
                TenantCommand::List {
                    server: ServerArgs { server },
                },
        } => {
            for t in remote(server)?.list_tenants().await? {
                println!("{}", serde_json::to_string(&t)?);
            }
        }
        Command::Tenant {
            command:
                TenantCommand::Delete {
                    name,
                    server: ServerArgs { server },
                },
        } => {
            let t = tenant(name)?;
            remote(server)?.delete_tenant(&t).await?;
            println!("tenant {t} deleted");
        }
        _ => unreachable!("is_remote() chose only the commands above"),
    }
    Ok(())
}

fn read_password() -> anyhow::Result<Password> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let second = rpassword::prompt_password("Repeat password: ")?;
        if first != second {
            bail!("passwords do not match");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    Ok(Password::new(password))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

/// The import report for a person: totals, then one line per user skipped or imported with a
/// remark.
fn print_import_report(report: &flows::ImportReport) {
    let what = if report.dry_run {
        "would import"
    } else {
        "imported"
    };
    println!(
        "tenant {}: {what} {} users, skipped {}, {} roles; {} without a usable password \
         (they sign in after a password reset or with OAuth)",
        report.tenant, report.imported, report.skipped, report.roles, report.need_password_reset
    );
    if !report.ignored_fields.is_empty() {
        println!(
            "source fields that are not profile fields here (add them to [profile_fields] to \
             keep them): {}",
            report.ignored_fields.join(", ")
        );
    }
    for entry in &report.entries {
        println!(
            "{} {} ({}): {}",
            entry.outcome, entry.email, entry.origin, entry.reason
        );
    }
}
