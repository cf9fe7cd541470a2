//! A hookauth server in the bench's own process, on a loopback port, started the way the
//! binary starts one (configuration from variables, `Application`), for benches that talk
//! HTTP to it.

use std::path::Path;

use hookauth::app::{Application, Launch};
use hookauth::config::{Config, Overrides};

pub struct BenchServer {
    /// `http://127.0.0.1:PORT/api/v1/auth`.
    pub base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl BenchServer {
    /// Serves `database_url` with the hooks in `hooks` and the `HOOKAUTH_*` variables `env`
    /// (a fixed secret key is added), once its hooks are loaded.
    pub async fn start(database_url: &str, hooks: &Path, env: &[(&str, &str)]) -> Self {
        let mut vars = vec![(
            "HOOKAUTH_SECRET_KEY".to_owned(),
            "bench-secret-key-0123456789abcdef0123456789".to_owned(),
        )];
        vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let config = Config::load(
            None,
            vars,
            Overrides {
                bind: Some("127.0.0.1:0".into()),
                database_url: Some(database_url.into()),
                hooks_dir: Some(hooks.to_path_buf()),
                lenient_hooks: false,
            },
        )
        .unwrap();
        let mut app = Application::build(&config, Launch::default())
            .await
            .unwrap();
        app.ready().await.unwrap();
        let base = format!("http://{}/api/v1/auth", app.local_addr());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            app.run_until(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Self { base, stop, task }
    }

    /// Graceful stop.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }
}
