//! The database URL: it may carry a password (`postgres://user:PASSWORD@host/db` or
//! `?password=...`), so it is shown redacted everywhere but the one place that connects.

use std::fmt;

use serde::Deserialize;

#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL with its password, for connecting only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced by `***`: for logs, errors and `Debug`.
    pub fn redacted(&self) -> String {
        let url = &self.0;
        let (head, query) = match url.split_once('?') {
            Some((h, q)) => (h, Some(q)),
            None => (url.as_str(), None),
        };
        let mut out = match head.split_once("://") {
            Some((scheme, rest)) => {
                // userinfo ends at the last '@' before the path.
                let authority_end = rest.find('/').unwrap_or(rest.len());
                let (authority, path) = rest.split_at(authority_end);
                match authority.rsplit_once('@') {
                    Some((userinfo, host)) => {
                        let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
                        let hidden = if userinfo.contains(':') { ":***" } else { "" };
                        format!("{scheme}://{user}{hidden}@{host}{path}")
                    }
                    None => head.to_owned(),
                }
            }
            None => head.to_owned(),
        };
        if let Some(query) = query {
            let params: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_owned(),
                })
                .collect();
            out.push('?');
            out.push_str(&params.join("&"));
        }
        out
    }

    pub fn starts_with(&self, prefix: &str) -> bool {
        self.0.starts_with(prefix)
    }
}

impl From<&str> for DatabaseUrl {
    fn from(url: &str) -> Self {
        Self::new(url)
    }
}

impl From<String> for DatabaseUrl {
    fn from(url: String) -> Self {
        Self::new(url)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({:?})", self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::DatabaseUrl;

    #[test]
    fn passwords_never_show() {
        for (url, shown) in [
            (
                "postgres://app:s3cret@db.internal:5432/auth",
                "postgres://app:***@db.internal:5432/auth",
            ),
            (
                "postgres://app:p@ss@db/auth?sslmode=require",
                "postgres://app:***@db/auth?sslmode=require",
            ),
            (
                "postgres://db/auth?user=app&password=s3cret",
                "postgres://db/auth?user=app&password=***",
            ),
            ("postgres://app@db/auth", "postgres://app@db/auth"),
            ("sqlite://hookauth.db", "sqlite://hookauth.db"),
        ] {
            let url = DatabaseUrl::from(url);
            assert_eq!(url.redacted(), shown);
            assert!(!format!("{url:?}").contains("s3cret"));
            assert!(!format!("{url}").contains("s3cret"));
        }
    }
}
