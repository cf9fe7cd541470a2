//! Wiring: configuration in, a listening server with its dispatcher out. The binary and the
//! integration tests start the server the same way.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::config::{Config, ConfigError, DeliveryConfig};
use crate::crypto::{JwtKeys, JwtSettings, PasswordHasher, SecretBox};
use crate::domain::TenantId;
use crate::events::dispatcher::BREAKER_PAUSE_MAX_MS;
use crate::events::{
    ChainedSources, Dispatcher, DispatcherSettings, HandlerRegistry, HandlerSource,
};
use crate::flows::{Clock, FlowSettings, Flows};
use crate::hooks::outbound::HostPattern;
use crate::hooks::registry::{Ceilings, RegistryError};
use crate::hooks::{HookRegistry, HookSettings, RegistrySettings};
use crate::hooks_admin::HooksAdmin;
use crate::http::{self, AppState, ProxyPolicy, RateLimiter, Readiness, ServeSettings};
use crate::store::{BreakerPolicy, EmailLimit, LockoutPolicy, Store, StoreError, StoreSettings};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("hooks could not be loaded:\n{0}")]
    Hooks(#[from] crate::hooks::LoadError),
}

/// Opens the database, applies migrations and builds the flows' context.
pub async fn build_flows(config: &Config, clock: Clock) -> Result<Flows, AppError> {
    build_flows_with(config, clock, &server_secret(config)).await
}

/// The configured `secret_key`, or a random one for this process only (with a warning).
fn server_secret(config: &Config) -> Vec<u8> {
    match &config.secret_key {
        Some(key) => key.expose().as_bytes().to_vec(),
        None => {
            tracing::warn!(
                "no secret_key configured: using a random key; every token will be invalid \
                 after a restart, replicas will reject each other's tokens and tenant hook \
                 secrets will not open after a restart. Set HOOKAUTH_SECRET_KEY (at least 32 \
                 bytes)."
            );
            let mut key = vec![0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
            key
        }
    }
}

async fn build_flows_with(config: &Config, clock: Clock, secret: &[u8]) -> Result<Flows, AppError> {
    let store = Store::connect(&StoreSettings {
        url: config.database_url.clone(),
        max_connections: config.database.max_connections,
        sqlite_synchronous: config.database.sqlite_synchronous.clone(),
        profile_schema: config.profile_schema(),
    })
    .await?;
    store.migrate().await?;
    let jwt = JwtKeys::new(
        secret,
        &JwtSettings {
            algorithm: config.jwt.algorithm.clone(),
            issuer: config.jwt.issuer.clone(),
            audience: config.jwt.audience.clone(),
            leeway_seconds: config.jwt.leeway_seconds,
        },
    );
    let p = &config.password;
    let hasher = PasswordHasher::new(
        p.argon2_memory_kib,
        p.argon2_iterations,
        p.argon2_parallelism,
    )
    .map_err(|e| AppError::Invalid(e.to_string()))?;
    let oauth = crate::oauth::OauthDirectory::from_config(
        &config.oauth,
        &config.tenants,
        SecretBox::new(secret),
    )
    .map_err(AppError::Invalid)?;
    Ok(Flows::new(
        store,
        jwt,
        hasher,
        clock,
        flow_settings(config),
        oauth,
        SecretBox::new(secret),
    ))
}

fn dispatcher_settings(d: &DeliveryConfig) -> DispatcherSettings {
    let (concurrency, tenant_concurrency, hook_concurrency) = d.lanes();
    DispatcherSettings {
        batch_size: i64::from(d.batch_size.max(1)),
        max_attempts: d.max_attempts.max(1),
        backoff_initial: Duration::from_millis(d.backoff_initial_ms),
        backoff_max: Duration::from_millis(d.backoff_max_ms),
        lease: Duration::from_millis(d.lease_ms),
        poll: Duration::from_millis(d.poll_ms),
        concurrency,
        tenant_concurrency,
        hook_concurrency,
        breaker: BreakerPolicy {
            // 0 turns the breaker off: no run of failures is long enough.
            failures: match d.breaker_failures {
                0 => i64::MAX,
                n => i64::from(n),
            },
            pause_initial_ms: d.breaker_pause_ms as i64,
            pause_max_ms: BREAKER_PAUSE_MAX_MS.max(d.breaker_pause_ms as i64),
        },
        ..DispatcherSettings::default()
    }
}

fn flow_settings(config: &Config) -> FlowSettings {
    let minutes = |m: u64| (m as i64).saturating_mul(60_000);
    FlowSettings {
        access_ttl_secs: (config.jwt.access_token_minutes as i64).saturating_mul(60),
        refresh_ttl_millis: minutes(config.jwt.refresh_token_days.saturating_mul(24 * 60)),
        leeway_secs: config.jwt.leeway_seconds as i64,
        refresh_rotation: config.jwt.refresh_rotation,
        email_verify_ttl_millis: minutes(config.tokens.email_verify_minutes),
        password_reset_ttl_millis: minutes(config.tokens.password_reset_minutes),
        reauth_max_age_secs: config.security.reauth_max_age_seconds as i64,
        prevent_registration_enumeration: config.security.prevent_registration_enumeration,
        lockout: config.lockout.enabled.then(|| LockoutPolicy {
            max_attempts: config.lockout.max_attempts,
            duration_ms: minutes(config.lockout.duration_minutes),
        }),
        verify_email_limit: EmailLimit {
            max_sends: config.tokens.email_verify_emails_per_hour,
            window_ms: 3_600_000,
        },
        reset_email_limit: EmailLimit {
            max_sends: config.tokens.password_reset_emails_per_hour,
            window_ms: 3_600_000,
        },
        password_policy: config.password_policy(),
        profile_schema: config.profile_schema(),
        gates: config.hooks.gate_settings(),
        mfa: crate::flows::MfaSettings {
            enabled: config.mfa.enabled,
            issuer: config.mfa.issuer.clone(),
            pending_ttl_millis: (config.mfa.pending_seconds as i64).saturating_mul(1000),
        },
    }
}

/// A built server: bound, migrated, hooks loading in the background, not yet serving.
pub struct Application {
    /// Taken by `run_until`.
    listener: Option<TcpListener>,
    /// `[metrics] bind`, taken by `run_until`.
    metrics_listener: Option<TcpListener>,
    addr: SocketAddr,
    state: AppState,
    max_body_bytes: usize,
    serve: ServeSettings,
    extra_handlers: Arc<dyn HandlerSource>,
    /// The hooks being loaded; taken by [`Application::ready`] or by `run_until`.
    loading: Option<JoinHandle<Result<Arc<HookRegistry>, AppError>>>,
    hooks: Option<Arc<HookRegistry>>,
    sealer: Arc<SecretBox>,
    operator_token: Option<crate::config::Secret>,
    max_hooks: u32,
    dispatcher: Option<DispatcherSettings>,
}

/// Options the binary leaves at their defaults and tests change.
pub struct Launch {
    pub registry: HandlerRegistry,
    pub clock: Clock,
    /// `false` leaves committed events undelivered (tests of restart-before-delivery).
    pub deliver_events: bool,
    /// Stands in for the process environment when hooks read their secrets.
    pub hook_env: Option<HashMap<String, String>>,
    /// Hooks start loading only once this resolves (tests of serving during a slow load).
    pub hold_hooks: Option<oneshot::Receiver<()>>,
}

impl Default for Launch {
    fn default() -> Self {
        Self {
            registry: HandlerRegistry::new(),
            clock: Clock::System,
            deliver_events: true,
            hook_env: None,
            hold_hooks: None,
        }
    }
}

/// The hooks directory (platform hooks, and file-deployed tenant hooks under `tenants/`) and
/// the API-deployed tenant hooks in the database, as one registry.
async fn load_hooks(
    config: &Config,
    store: Store,
    sealer: Arc<SecretBox>,
    env: Option<HashMap<String, String>>,
    metrics: Arc<crate::metrics::Metrics>,
) -> Result<Arc<HookRegistry>, AppError> {
    let dir = match &config.hooks.dir {
        Some(dir) if !dir.is_dir() => {
            return Err(AppError::Invalid(format!(
                "hooks directory {} does not exist",
                dir.display()
            )));
        }
        Some(dir) => Some(dir.clone()),
        None => Some(PathBuf::from("hooks")).filter(|d| d.is_dir()),
    };
    config.hooks.check()?;
    config.tenant_hooks.check_compile()?;
    // Never inside the hooks directory by default: whoever may deploy a .wasm must not be able
    // to plant the native code the server runs. An operator-chosen directory that is unsafe
    // stops the start; an unsafe default only disables the cache (with a warning).
    let cache_dir = match &config.hooks.cache_dir {
        Some(dir) => {
            crate::hooks::cache::private_dir(dir, true)
                .map_err(|e| AppError::Invalid(format!("hooks.cache_dir: {e}")))?;
            Some(dir.clone())
        }
        None => crate::hooks::cache::default_dir(),
    };
    let cache_key = config
        .secret_key
        .as_ref()
        .map(|k| crate::hooks::cache::CacheKey::from_server_secret(k.expose().as_bytes()));
    let platform = dir.map(|dir| {
        let mut settings = HookSettings::new(&dir);
        settings.lenient = config.hooks.lenient;
        settings.env = env;
        settings.max_concurrent = config.hooks.max_concurrent.max(1);
        settings.caps = config.hooks.sandbox_caps();
        settings.gates = config.hooks.gate_budgets();
        settings.cache_dir = cache_dir.clone();
        settings.cache_key = cache_key.clone();
        settings.compile = crate::hooks::compile::CompileLimits {
            max_component_bytes: (config.hooks.max_component_mib as usize) << 20,
            timeout: Duration::from_millis(config.hooks.compile_timeout_ms),
        };
        settings.secret_env_allow = config.hooks.secret_env_allow.clone();
        settings
    });
    if platform.is_none() {
        tracing::info!("no hooks directory: only tenant hooks deployed through the API");
    }
    let th = &config.tenant_hooks;
    let mut allowed_hosts = Vec::new();
    for raw in &th.allowed_hosts {
        allowed_hosts.push(
            HostPattern::parse(raw)
                .map_err(|e| AppError::Invalid(format!("tenant_hooks.allowed_hosts: {e}")))?,
        );
    }
    let settings = RegistrySettings {
        platform,
        max_concurrent: config.hooks.max_concurrent.max(1),
        caps: config.hooks.sandbox_caps(),
        ceilings: Ceilings {
            max_hooks: th.max_hooks,
            max_component_bytes: (th.max_component_mib as usize) << 20,
            fuel: th.fuel,
            memory_bytes: (th.memory_mib as usize) << 20,
            timeout: Duration::from_millis(th.timeout_ms),
            allowed_hosts,
            compile: crate::hooks::compile::CompileLimits {
                max_component_bytes: (th.max_component_mib as usize) << 20,
                timeout: Duration::from_millis(th.compile_timeout_ms),
            },
            gates: config.hooks.gate_budgets(),
        },
        compile_concurrency: th.compile_concurrency,
        cache_dir,
        cache_key,
        metrics: Some(metrics),
    };
    let registry = HookRegistry::load(settings, store.clone(), sealer)
        .await
        .map_err(|e| match e {
            RegistryError::Load(e) => AppError::Hooks(e),
            RegistryError::Store(e) => AppError::Store(e),
        })?;
    let tenants: Vec<TenantId> = store
        .list_tenants()
        .await?
        .into_iter()
        .filter_map(|(id, _)| TenantId::parse(&id).ok())
        .collect();
    registry.warn_missing_email_hooks(&tenants);
    Ok(Arc::new(registry))
}

impl Application {
    /// Checks the configuration, binds the listener, opens and migrates the database and
    /// starts loading hooks in the background: a slow hook compile delays only `/readyz`
    /// (and event delivery), never the listener.
    pub async fn build(config: &Config, launch: Launch) -> Result<Self, AppError> {
        config.validate()?;
        if let Some(dir) = &config.hooks.dir
            && !dir.is_dir()
        {
            return Err(AppError::Invalid(format!(
                "hooks directory {} does not exist",
                dir.display()
            )));
        }
        let listener = TcpListener::bind(&config.bind)
            .await
            .map_err(|source| AppError::Bind {
                addr: config.bind.clone(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| AppError::Bind {
            addr: config.bind.clone(),
            source,
        })?;
        let secret = server_secret(config);
        let flows = Arc::new(build_flows_with(config, launch.clock, &secret).await?);
        let readiness = Arc::new(Readiness::default());
        readiness.set_migrated();
        let sealer = Arc::new(SecretBox::new(&secret));
        let loading = {
            let config = config.clone();
            let store = flows.store.clone();
            let sealer = Arc::clone(&sealer);
            let hold = launch.hold_hooks;
            let metrics = Arc::clone(&flows.metrics);
            tokio::spawn(async move {
                if let Some(hold) = hold {
                    let _ = hold.await;
                }
                load_hooks(&config, store, sealer, launch.hook_env, metrics).await
            })
        };
        let max_component_bytes = (config.tenant_hooks.max_component_mib as usize) << 20;
        let proxy = ProxyPolicy {
            header: config.rate_limit.trusted_proxy_header.clone(),
            count: config.rate_limit.trusted_proxy_count,
        };
        let limiter = RateLimiter::for_store(&config.rate_limit, flows.clone());
        let cookies = crate::http::CookiePolicy::new(
            config.cookies.clone(),
            config
                .tenants
                .iter()
                .filter_map(|(name, t)| Some((name.clone(), t.cookies.clone()?)))
                .collect(),
            &secret,
            (config.jwt.access_token_minutes as i64).saturating_mul(60),
            (config.jwt.refresh_token_days as i64).saturating_mul(86_400),
        );
        let state = AppState::new(flows, limiter, proxy, readiness, max_component_bytes)
            .with_operator_token(config.operator_token.clone())
            .with_cookies(cookies);
        let metrics_listener = match &config.metrics.bind {
            Some(bind) => Some(
                TcpListener::bind(bind)
                    .await
                    .map_err(|source| AppError::Bind {
                        addr: bind.clone(),
                        source,
                    })?,
            ),
            None => None,
        };
        let dispatcher = launch
            .deliver_events
            .then(|| dispatcher_settings(&config.delivery));
        Ok(Self {
            listener: Some(listener),
            metrics_listener,
            addr,
            state,
            max_body_bytes: config.security.max_body_bytes,
            serve: ServeSettings::from(&config.server),
            extra_handlers: Arc::new(launch.registry),
            loading: Some(loading),
            hooks: None,
            sealer,
            operator_token: config.operator_token.clone(),
            max_hooks: config.tenant_hooks.max_hooks,
            dispatcher,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the metrics-only listener (`[metrics] bind`) is, if there is one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    pub fn flows(&self) -> Arc<Flows> {
        self.state.flows.clone()
    }

    /// Every source of hooks (platform, file-deployed and API-deployed tenant hooks), once
    /// loaded: after [`Application::ready`].
    pub fn hooks(&self) -> Option<Arc<HookRegistry>> {
        self.hooks.clone()
    }

    /// Waits until hooks are loaded, or says why they could not be. Optional: `run_until`
    /// serves (with `/readyz` at 503) while they load.
    pub async fn ready(&mut self) -> Result<(), AppError> {
        if let Some(loading) = self.loading.take() {
            let hooks = joined(loading.await)?;
            self.install(hooks);
        }
        Ok(())
    }

    fn install(&mut self, hooks: Arc<HookRegistry>) {
        self.state
            .flows
            .install_gates(Arc::clone(&hooks) as Arc<dyn crate::flows::GateSource>);
        self.state.hooks_loaded(Arc::new(HooksAdmin::new(
            Arc::clone(&self.state.flows),
            Arc::clone(&hooks),
            Arc::clone(&self.sealer),
            self.operator_token.clone(),
            self.max_hooks,
        )));
        self.hooks = Some(hooks);
    }

    /// Serves until `shutdown` resolves; then in-flight requests finish (for at most
    /// `server.shutdown_grace_ms`), the dispatcher finishes the event in hand and releases the
    /// rest, and the pools close. Events are delivered only once hooks are loaded (until then
    /// they wait in the outbox); hooks that fail to load stop the server with their error.
    pub async fn run_until(
        mut self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), AppError> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let (failed_tx, failed_rx) = oneshot::channel::<()>();
        let addr = self.local_addr();
        let store = self.state.flows.store.clone();
        let flows = Arc::clone(&self.state.flows);
        let app = http::router(self.state.clone(), self.max_body_bytes);
        let gate_audit = flows.spawn_gate_audit(stop_rx.clone());
        let metrics_server = self.metrics_listener.take().map(|listener| {
            let router = http::metrics_router(self.state.clone());
            let mut stop = stop_rx.clone();
            tracing::info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
                "metrics on /metrics");
            // The same accept loop as the API (timeouts, connection caps): a scraper's network
            // is not trusted to behave either.
            tokio::spawn(http::serve(
                listener,
                router,
                self.serve.clone(),
                async move {
                    let _ = stop.wait_for(|s| *s).await;
                },
            ))
        });
        tracing::info!(%addr, "hookauth listening on http://{addr}");
        let listener = self.listener.take().expect("run_until runs once");
        let server = tokio::spawn(http::serve(listener, app, self.serve.clone(), async move {
            tokio::select! {
                () = shutdown => {}
                _ = failed_rx => {}
            }
        }));
        let mut server = server;
        let hooks = match self.loading.take() {
            Some(mut loading) => {
                let outcome = tokio::select! {
                    joined_hooks = &mut loading => Some(joined(joined_hooks)),
                    _ = &mut server => None,
                };
                match outcome {
                    Some(Ok(hooks)) => hooks,
                    Some(Err(e)) => {
                        tracing::error!(error = %e, "hooks could not be loaded: stopping");
                        let _ = failed_tx.send(());
                        let _ = server.await;
                        let _ = stop_tx.send(true);
                        store.close().await;
                        return Err(e);
                    }
                    None => {
                        // Stopped before hooks finished loading.
                        loading.abort();
                        let _ = stop_tx.send(true);
                        store.close().await;
                        return Ok(());
                    }
                }
            }
            None => self.hooks.clone().expect("ready() installed the hooks"),
        };
        if self.hooks.is_none() {
            self.install(Arc::clone(&hooks));
            tracing::info!("hooks loaded: ready");
        }
        // Test-registered handlers follow the hooks.
        let registry: Arc<dyn HandlerSource> = Arc::new(ChainedSources(vec![
            Arc::clone(&hooks) as Arc<dyn HandlerSource>,
            Arc::clone(&self.extra_handlers),
        ]));
        let dispatcher = self.dispatcher.map(|settings| {
            Dispatcher::new(
                store.clone(),
                registry,
                settings,
                self.state.flows.clock.clone(),
                Arc::clone(&self.state.flows.metrics),
            )
            .spawn(stop_rx.clone())
        });
        let hook_sync = hooks.spawn_sync(stop_rx.clone());
        let _ = server.await;
        let _ = stop_tx.send(true);
        if let Some(handle) = dispatcher {
            let _ = handle.await;
        }
        let _ = hook_sync.await;
        if let Some(metrics) = metrics_server {
            let _ = metrics.await;
        }
        if let Some(audit) = gate_audit {
            let _ = audit.await;
        }
        // Accepted password-reset requests finish their lookup and outbox insert first.
        flows.settle_background_work().await;
        store.close().await;
        Ok(())
    }
}

/// The loading task's result; a panic in it is an error, not a silent hang.
fn joined(
    result: Result<Result<Arc<HookRegistry>, AppError>, tokio::task::JoinError>,
) -> Result<Arc<HookRegistry>, AppError> {
    result.map_err(|e| AppError::Invalid(format!("loading hooks failed: {e}")))?
}
