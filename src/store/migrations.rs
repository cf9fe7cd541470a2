//! The schema migrations, embedded in the binary and handed to sqlx's migrator.
//!
//! This is what `sqlx::migrate!` generated, written out: the macro made every clean build
//! compile sqlx's proc-macro crates, and with them a second sqlx, a second PostgreSQL driver and
//! a second SQLite C library for the build machine (about 30 CPU-seconds of a clean build). The
//! migrator checks each applied migration by version and by the SHA-384 of its SQL, so the files
//! below must stay byte for byte what databases already ran; a new migration is one more line
//! in `embed!` (the test in this module checks it matches both directories).

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

use super::Dialect;

/// One migration file: version, description (the file name's rest, `_` as spaces, as sqlx
/// records it in `_sqlx_migrations`), SQL.
type Embedded = (i64, &'static str, &'static str);

/// Both backends have the same migrations, file for file, in their own dialect.
macro_rules! embed {
    ($(($version:literal, $file:literal, $description:literal)),* $(,)?) => {
        const SQLITE: &[Embedded] =
            &[$(($version, $description, include_str!(concat!("../../migrations/sqlite/", $file)))),*];
        const POSTGRES: &[Embedded] =
            &[$(($version, $description, include_str!(concat!("../../migrations/postgres/", $file)))),*];
    };
}

embed!(
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
            for (file, &(version, description, _)) in files.iter().zip(list) {
                let (number, rest) = file.split_once('_').unwrap();
                assert_eq!(number.parse::<i64>().unwrap(), version, "{dir}/{file}");
                assert_eq!(
                    rest.trim_end_matches(".sql").replace('_', " "),
                    description,
                    "{dir}/{file}"
                );
            }
        }
    }

    /// Databases in the field recorded these SHA-384 checksums (first 16 bytes shown) when they
    /// ran each migration; sqlx refuses to start on a database whose recorded checksum differs.
    /// So a published migration never changes: this fails if a file is edited or the embedding
    /// alters its bytes. New migrations add lines here.
    #[tokio::test]
    async fn published_migrations_keep_their_checksums() {
        const PUBLISHED: [(&str, &[&str]); 2] = [
            (
                "sqlite",
                &[
                    "ad278d3b16b6d5023f5721c4c887221f",
                    "66b3ff4945b23466c0b80f95962b7e40",
                    "81463560ccce25d00e2ccbf353f7b66c",
                    "dce189720efefdb705ca7a4174318bb5",
                    "1c1d11b78cd13f4d6d1992e0aa1bcf84",
                    "c435ad0a7a2f93d097c12c422fe19f6b",
                    "bb15e070e18f7a9131752969c49fc464",
                    "deb0c6ba277eee5e5a25f4d823180153",
                ],
            ),
            (
                "postgres",
                &[
                    "dcc37cc879bc03cdb482a5c1a358f659",
                    "42a12282a932847348729fc2337a3e59",
                    "7b4e95714c6cb6c86f8dbbf033b77f70",
                    "dce189720efefdb705ca7a4174318bb5",
                    "1c1d11b78cd13f4d6d1992e0aa1bcf84",
                    "6744d25a39a173926006a670a45e3ede",
                    "b255a188407c0914f439e7af5497a8c1",
                    "e06dc020125233f15f525b508551bfb8",
                ],
            ),
        ];
        for (dialect, (name, published)) in [Dialect::Sqlite, Dialect::Postgres]
            .into_iter()
            .zip(PUBLISHED)
        {
            let migrator = migrator(dialect).await.unwrap();
            let now: Vec<String> = migrator
                .iter()
                .map(|m| {
                    m.checksum[..16]
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect()
                })
                .collect();
            assert!(
                now.len() >= published.len(),
                "{name}: a migration disappeared"
            );
            assert_eq!(&now[..published.len()], published, "{name}");
        }
    }
}
