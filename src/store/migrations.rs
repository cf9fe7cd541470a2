//! The schema migrations, embedded in the binary and handed to sqlx's migrator.
//!
//! This is what `sqlx::migrate!` generated, written out: the macro made every clean build
//! compile sqlx's proc-macro crates, and with them a second sqlx, a second PostgreSQL driver and
//! a second SQLite C library for the build machine (about 45 CPU-seconds on two cores). The
//! migrator checks each applied migration by version and by the SHA-384 of its SQL, so the files
//! below must stay byte for byte what databases already ran; a new migration is one more line
//! in each list (the test in this module checks the lists match the directories).

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

use super::Dialect;

/// One migration file: version, description (the file name's rest, `_` as spaces, as sqlx
/// records it in `_sqlx_migrations`), SQL.
type Embedded = (i64, &'static str, &'static str);

macro_rules! embed {
    ($dir:literal: $(($version:literal, $file:literal, $description:literal)),* $(,)?) => {
        &[$(($version, $description, include_str!(concat!("../../migrations/", $dir, "/", $file)))),*]
    };
}

const SQLITE: &[Embedded] = embed!("sqlite":
    (1, "0001_init.sql", "init"),
    (2, "0002_delivery.sql", "delivery"),
    (3, "0003_tenant_hooks.sql", "tenant hooks"),
    (4, "0004_email_sends.sql", "email sends"),
    (5, "0005_gate_decisions.sql", "gate decisions"),
    (6, "0006_oauth_accounts.sql", "oauth accounts"),
    (7, "0007_rate_limit_hits.sql", "rate limit hits"),
    (8, "0008_mfa.sql", "mfa"),
);

const POSTGRES: &[Embedded] = embed!("postgres":
    (1, "0001_init.sql", "init"),
    (2, "0002_delivery.sql", "delivery"),
    (3, "0003_tenant_hooks.sql", "tenant hooks"),
    (4, "0004_email_sends.sql", "email sends"),
    (5, "0005_gate_decisions.sql", "gate decisions"),
    (6, "0006_oauth_accounts.sql", "oauth accounts"),
    (7, "0007_rate_limit_hits.sql", "rate limit hits"),
    (8, "0008_mfa.sql", "mfa"),
);

#[derive(Debug)]
struct Source(&'static [Embedded]);

impl<'s> MigrationSource<'s> for Source {
    #[allow(
        clippy::type_complexity,
        reason = "the trait's own signature (futures' BoxFuture)"
    )]
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 's>> {
        Box::pin(async move {
            Ok(self
                .0
                .iter()
                .map(|&(version, description, sql)| {
                    // As sqlx's own resolver: a file that starts with this comment runs outside
                    // a transaction (none of ours does today).
                    let no_tx = sql.starts_with("-- no-transaction");
                    Migration::new(
                        version,
                        Cow::Borrowed(description),
                        MigrationType::Simple,
                        Cow::Borrowed(sql),
                        no_tx,
                    )
                })
                .collect())
        })
    }
}

pub(super) async fn migrator(dialect: Dialect) -> Result<Migrator, sqlx::migrate::MigrateError> {
    Migrator::new(Source(match dialect {
        Dialect::Sqlite => SQLITE,
        Dialect::Postgres => POSTGRES,
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file in `migrations/<backend>/` is embedded, in order, under the version and
    /// description sqlx's own resolver gives it (a forgotten line would leave a fresh database
    /// without a table, and a wrong description would differ from what `migrate!` recorded).
    #[test]
    fn the_lists_match_the_directories() {
        for (dir, list) in [("sqlite", SQLITE), ("postgres", POSTGRES)] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join(dir);
            let mut files: Vec<String> = std::fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| n.ends_with(".sql"))
                .collect();
            files.sort();
            assert_eq!(files.len(), list.len(), "{dir}: {files:?}");
            for (file, &(version, description, sql)) in files.iter().zip(list) {
                let (number, rest) = file.split_once('_').unwrap();
                assert_eq!(number.parse::<i64>().unwrap(), version, "{dir}/{file}");
                assert_eq!(
                    rest.trim_end_matches(".sql").replace('_', " "),
                    description,
                    "{dir}/{file}"
                );
                assert_eq!(std::fs::read_to_string(path.join(file)).unwrap(), sql);
            }
        }
    }
}
