//! A tenant hook's manifest: the hooks.toml keys as a JSON object, checked against the
//! operator's `[tenant_hooks]` ceilings. Unknown keys are refused, so a typo never silently
//! loosens a limit; a limit above the ceiling is refused, never clamped.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::EventKind;
use crate::hooks::DeployError;
use crate::hooks::limits::{DEFAULT_FUEL, DEFAULT_MEMORY_BYTES, DEFAULT_TIMEOUT, HookLimits};
use crate::hooks::manifest::is_env_var_name;
use crate::hooks::outbound::HostPattern;

/// Largest manifest accepted. Without a cap, a tenant could make the server parse and store
/// megabytes of config per hook.
pub const MAX_MANIFEST_BYTES: usize = 64 * 1024;
/// Config entries and the size of each value.
pub const MAX_CONFIG_ENTRIES: usize = 64;
pub const MAX_CONFIG_VALUE_BYTES: usize = 4096;
/// Longest name of a hook, config key or secret.
pub const MAX_NAME_LEN: usize = 64;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TenantManifest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Secret name (as the hook asks for it) → name of one of the tenant's own secrets
    /// (`PUT .../hook-secrets/{key}`). Never an environment variable.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// Gates: what a trap, timeout or bad answer means (`deny`, the default, or `allow`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_error: Option<crate::domain::OnError>,
    /// Gates: wall clock per decision, within the ceilings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate_timeout_ms: Option<u64>,
    /// Gates: fuel per decision, within the ceilings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate_fuel: Option<u64>,
}

/// The operator's `[tenant_hooks]` ceilings, resolved.
#[derive(Debug, Clone)]
pub struct Ceilings {
    pub max_hooks: u32,
    pub max_component_bytes: usize,
    pub fuel: u64,
    pub memory_bytes: usize,
    pub timeout: Duration,
    pub allowed_hosts: Vec<HostPattern>,
    /// Largest component and longest compile; `max_component_bytes` above is the size limit
    /// checked at deploy, this one's size applies to every compile.
    pub compile: crate::hooks::compile::CompileLimits,
    /// The operator's gate budgets (`[hooks] gate_*`); a tenant gate is also held to `fuel`
    /// and `timeout` above.
    pub gates: crate::hooks::GateBudgets,
}

impl Ceilings {
    /// What a hook gets for what its manifest leaves out: the server's defaults, or the
    /// ceiling when that is lower.
    pub fn defaults(&self) -> HookLimits {
        HookLimits {
            fuel: DEFAULT_FUEL.min(self.fuel),
            memory_bytes: DEFAULT_MEMORY_BYTES.min(self.memory_bytes),
            timeout: DEFAULT_TIMEOUT.min(self.timeout),
        }
    }
}

/// A hook, config key or secret name: kebab or snake case, 1–64 characters, so it is safe in
/// URLs, logs and failure records (no `/`, `..`, spaces or control characters).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

/// A tenant secret's key: letters, digits and `_`, 1–64, not starting with a digit.
pub fn valid_secret_key(key: &str) -> bool {
    key.len() <= MAX_NAME_LEN && is_env_var_name(key)
}

impl TenantManifest {
    pub fn parse(raw: &[u8]) -> Result<Self, DeployError> {
        if raw.len() > MAX_MANIFEST_BYTES {
            return Err(DeployError::new(
                "manifest_too_large",
                format!("the manifest is over {MAX_MANIFEST_BYTES} bytes"),
            ));
        }
        serde_json::from_slice(raw).map_err(|e| {
            let message = e.to_string();
            let code = if message.starts_with("unknown field") {
                "unknown_manifest_key"
            } else {
                "invalid_manifest"
            };
            DeployError::new(code, format!("manifest: {message}"))
        })
    }

    /// The limits asked for, each within the ceiling.
    pub fn limits(&self, ceilings: &Ceilings) -> Result<HookLimits, DeployError> {
        let mut limits = ceilings.defaults();
        let above = |what: String| DeployError::new("limit_above_ceiling", what);
        let zero =
            |key: &str| DeployError::new("invalid_manifest", format!("{key} must be at least 1"));
        if let Some(fuel) = self.fuel {
            if fuel == 0 {
                return Err(zero("fuel"));
            }
            if fuel > ceilings.fuel {
                return Err(above(format!(
                    "fuel = {fuel} is above the ceiling of {}",
                    ceilings.fuel
                )));
            }
            limits.fuel = fuel;
        }
        if let Some(mib) = self.memory_mib {
            if mib == 0 {
                return Err(zero("memory_mib"));
            }
            let bytes = (mib as usize) << 20;
            if bytes > ceilings.memory_bytes {
                return Err(above(format!(
                    "memory_mib = {mib} is above the ceiling of {}",
                    ceilings.memory_bytes >> 20
                )));
            }
            limits.memory_bytes = bytes;
        }
        if let Some(ms) = self.timeout_ms {
            if ms == 0 {
                return Err(zero("timeout_ms"));
            }
            if u128::from(ms) > ceilings.timeout.as_millis() {
                return Err(above(format!(
                    "timeout_ms = {ms} is above the ceiling of {}",
                    ceilings.timeout.as_millis()
                )));
            }
            limits.timeout = Duration::from_millis(ms);
        }
        Ok(limits)
    }

    /// A gate's limits: `gate_timeout_ms` / `gate_fuel` within the operator's gate ceilings
    /// and the tenant ceilings (the defaults when absent, lowered to the ceilings).
    pub fn gate_limits(
        &self,
        ceilings: &Ceilings,
        memory_bytes: usize,
    ) -> Result<HookLimits, DeployError> {
        let budgets = crate::hooks::GateBudgets {
            max_timeout: ceilings.gates.max_timeout.min(ceilings.timeout),
            max_fuel: ceilings.gates.max_fuel.min(ceilings.fuel),
            ..ceilings.gates.clone()
        };
        budgets
            .limits_for(memory_bytes, self.gate_timeout_ms, self.gate_fuel)
            .map_err(|bad| DeployError::new("limit_above_ceiling", bad.join("; ")))
    }

    /// The granted hosts, each covered by one of the operator's.
    pub fn hosts(&self, ceilings: &Ceilings) -> Result<Vec<HostPattern>, DeployError> {
        let mut hosts = Vec::new();
        for raw in &self.allowed_hosts {
            let host =
                HostPattern::parse(raw).map_err(|e| DeployError::new("invalid_manifest", e))?;
            if !ceilings.allowed_hosts.iter().any(|c| c.covers(&host)) {
                return Err(DeployError::new(
                    "host_not_allowed",
                    format!(
                        "allowed_hosts lists {raw:?}, which the operator does not grant to tenant \
                         hooks ([tenant_hooks] allowed_hosts)"
                    ),
                ));
            }
            hosts.push(host);
        }
        Ok(hosts)
    }

    /// Config within its size limits.
    pub fn check_config(&self) -> Result<(), DeployError> {
        if self.config.len() > MAX_CONFIG_ENTRIES {
            return Err(DeployError::new(
                "invalid_manifest",
                format!("config has more than {MAX_CONFIG_ENTRIES} entries"),
            ));
        }
        for (k, v) in &self.config {
            if k.is_empty() || k.len() > MAX_NAME_LEN || v.len() > MAX_CONFIG_VALUE_BYTES {
                return Err(DeployError::new(
                    "invalid_manifest",
                    format!(
                        "config key {k:?}: keys are 1-{MAX_NAME_LEN} bytes, values at most \
                         {MAX_CONFIG_VALUE_BYTES}"
                    ),
                ));
            }
        }
        for (k, v) in &self.secrets {
            if k.is_empty() || k.len() > MAX_NAME_LEN || !valid_secret_key(v) {
                return Err(DeployError::new(
                    "invalid_manifest",
                    format!("secrets.{k} must name a tenant secret (letters, digits, '_')"),
                ));
            }
        }
        Ok(())
    }

    pub fn event_kinds(&self) -> Result<Option<Vec<EventKind>>, DeployError> {
        let Some(names) = &self.events else {
            return Ok(None);
        };
        names
            .iter()
            .map(|n| {
                EventKind::parse(n).ok_or_else(|| {
                    DeployError::new(
                        "unknown_event",
                        format!("events lists {n:?}, which is not an event"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_traverse_or_hide() {
        for ok in ["welcome", "20-welcome", "a", &"a".repeat(64)] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            "../x",
            "a/b",
            "A",
            "a b",
            "-a",
            "a-",
            "a--b",
            "a.wasm",
            &"a".repeat(65),
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn unknown_keys_and_high_limits_are_refused_with_codes() {
        let e = TenantManifest::parse(br#"{"feul": 3}"#).unwrap_err();
        assert_eq!(e.code, "unknown_manifest_key");
        let ceilings = Ceilings {
            max_hooks: 3,
            max_component_bytes: 1 << 20,
            fuel: 1000,
            memory_bytes: 16 << 20,
            timeout: Duration::from_millis(500),
            allowed_hosts: vec![HostPattern::parse("*.example.com").unwrap()],
            compile: Default::default(),
            gates: Default::default(),
        };
        let m = TenantManifest::parse(br#"{"fuel": 1001}"#).unwrap();
        assert_eq!(m.limits(&ceilings).unwrap_err().code, "limit_above_ceiling");
        let m = TenantManifest::parse(br#"{"allowed_hosts": ["api.example.com", "evil.test"]}"#)
            .unwrap();
        assert_eq!(m.hosts(&ceilings).unwrap_err().code, "host_not_allowed");
        let m = TenantManifest::parse(br#"{}"#).unwrap();
        assert_eq!(m.limits(&ceilings).unwrap().fuel, 1000);
        // A tenant gate is held to the tenant ceilings as well as the operator's gate ones.
        let gate = m.gate_limits(&ceilings, 1 << 20).unwrap();
        assert_eq!((gate.fuel, gate.timeout), (1000, Duration::from_millis(50)));
        let m = TenantManifest::parse(br#"{"gate_timeout_ms": 501}"#).unwrap();
        assert_eq!(
            m.gate_limits(&ceilings, 1 << 20).unwrap_err().code,
            "limit_above_ceiling"
        );
        let m = TenantManifest::parse(br#"{"on_error": "sometimes"}"#);
        assert_eq!(m.unwrap_err().code, "invalid_manifest");
    }
}
