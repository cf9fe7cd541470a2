//! The WIT versions this host serves, one module per published version (`wit/vX.Y.Z`, frozen),
//! and the one place that knows which export of which version a hook has and how to call it.
//!
//! - `since_v0_1_0`: types, the `host` imports and the after-event `handler`.
//! - `since_v0_2_0`: the `gate` interface (it reuses 0.1.0's types and host).
//!
//! `latest` is what new code (the scaffolds, the docs) targets. Nothing outside this module
//! calls a guest export directly: it hands [`Exports::call`] a [`Call`].

pub mod since_v0_1_0;
pub mod since_v0_2_0;

pub use since_v0_2_0 as latest;

/// What the rest of the host needs of the versions: events and registrations are 0.1.0's
/// (0.2.0 reuses them), so these name that version here, and only here.
pub(crate) use since_v0_1_0::{domain_kind, wit_event};

use std::collections::BTreeSet;

use wasmtime::Store;
use wasmtime::component::{Component, Instance, InstancePre};

use crate::domain::{DecisionPoint, GateAnswer, GateContext, GateQuestion};
use crate::hooks::state::HookState;

/// A published version of `hookauth:hooks`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum WitVersion {
    V0_1_0,
    V0_2_0,
}

impl WitVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            WitVersion::V0_1_0 => "0.1.0",
            WitVersion::V0_2_0 => "0.2.0",
        }
    }
}

/// The versioned interfaces a hook may export: `(interface, semver-compatible prefix, the
/// version that introduced it)`.
const EXPORTS: [(&str, &str, WitVersion); 2] = [
    ("hookauth:hooks/handler", "0.1.", WitVersion::V0_1_0),
    (since_v0_2_0::GATE_INTERFACE, "0.2.", WitVersion::V0_2_0),
];

/// What a component exports, by name. `Err` when it exports neither a handler nor a gate this
/// host serves: the version it targets (if it exports one of ours at another version).
pub fn find_exports<'a>(
    exports: impl Iterator<Item = &'a str>,
) -> Result<BTreeSet<WitVersion>, Option<String>> {
    let mut found = BTreeSet::new();
    let mut other = None;
    for name in exports {
        let (interface, version) = name.split_once('@').unwrap_or((name, ""));
        for (known, prefix, introduced) in EXPORTS {
            if interface == known {
                if version.starts_with(prefix) {
                    found.insert(introduced);
                } else {
                    other = Some(version.to_owned());
                }
            }
        }
    }
    if found.is_empty() {
        Err(other)
    } else {
        Ok(found)
    }
}

/// Links every version's host interfaces (0.2.0 adds none of its own).
pub(crate) fn add_to_linker(
    linker: &mut wasmtime::component::Linker<HookState>,
) -> wasmtime::Result<()> {
    since_v0_1_0::Hook::add_to_linker::<HookState, wasmtime::component::HasSelf<HookState>>(
        linker,
        |state| state,
    )
}

/// One call into a hook.
pub(crate) enum Call<'a> {
    /// `handler.register` (load time).
    Register,
    /// `handler.handle`, with the event already in 0.1.0's shape.
    Handle(&'a since_v0_1_0::WitEvent),
    /// `gate.register` (load time).
    GateRegister,
    /// One gate question.
    Gate(&'a GateQuestion, &'a GateContext),
}

/// What a call returned.
pub(crate) enum Returned {
    Registration(since_v0_1_0::Registration),
    Handled(Result<(), String>),
    GateRegistration {
        points: BTreeSet<DecisionPoint>,
        config: Vec<String>,
        secrets: Vec<String>,
    },
    /// `Err` is the gate's own failure report (token-claims `err`).
    Decided(Result<GateAnswer, String>),
}

/// A compiled hook, linked, with the exports it has found once.
pub(crate) struct Exports {
    pub pre: InstancePre<HookState>,
    handler: Option<since_v0_1_0::exports::hookauth::hooks::handler::GuestIndices>,
    gate: Option<since_v0_2_0::GuestIndices>,
}

impl Exports {
    /// Looks the exports up (once per hook, not per call). At least one must be there.
    pub fn new(pre: InstancePre<HookState>) -> wasmtime::Result<Self> {
        let handler = since_v0_1_0::exports::hookauth::hooks::handler::GuestIndices::new(&pre).ok();
        let gate = since_v0_2_0::GuestIndices::new(&pre).ok();
        if handler.is_none() && gate.is_none() {
            wasmtime::bail!(
                "exports neither hookauth:hooks/handler@0.1.x nor hookauth:hooks/gate@0.2.x"
            );
        }
        Ok(Self { pre, handler, gate })
    }

    pub fn component(&self) -> &Component {
        self.pre.component()
    }

    pub fn has_handler(&self) -> bool {
        self.handler.is_some()
    }

    pub fn has_gate(&self) -> bool {
        self.gate.is_some()
    }

    /// Runs `call` on a fresh instance.
    pub async fn call(
        &self,
        store: &mut Store<HookState>,
        instance: &Instance,
        call: Call<'_>,
    ) -> wasmtime::Result<Returned> {
        let missing = |what: &str| wasmtime::format_err!("the hook does not export {what}");
        match call {
            Call::Register | Call::Handle(_) => {
                let handler = self
                    .handler
                    .as_ref()
                    .ok_or_else(|| missing("a handler"))?
                    .load(&mut *store, instance)?;
                match call {
                    Call::Register => handler
                        .call_register(&mut *store)
                        .await
                        .map(Returned::Registration),
                    Call::Handle(event) => handler
                        .call_handle(&mut *store, event)
                        .await
                        .map(Returned::Handled),
                    _ => unreachable!("matched above"),
                }
            }
            Call::GateRegister | Call::Gate(..) => {
                let gate = self
                    .gate
                    .as_ref()
                    .ok_or_else(|| missing("a gate"))?
                    .load(&mut *store, instance)?;
                match call {
                    Call::GateRegister => {
                        let r = gate.call_register(&mut *store).await?;
                        Ok(Returned::GateRegistration {
                            points: r
                                .points
                                .into_iter()
                                .map(since_v0_2_0::domain_point)
                                .collect(),
                            config: r.config,
                            secrets: r.secrets,
                        })
                    }
                    Call::Gate(question, ctx) => since_v0_2_0::call(&gate, store, question, ctx)
                        .await
                        .map(Returned::Decided),
                    _ => unreachable!("matched above"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_handlers_and_gates_by_version() {
        assert_eq!(
            find_exports(["hookauth:hooks/handler@0.1.0"].into_iter()),
            Ok(BTreeSet::from([WitVersion::V0_1_0]))
        );
        assert_eq!(
            find_exports(["hookauth:hooks/handler@0.1.0", "hookauth:hooks/gate@0.2.0"].into_iter()),
            Ok(BTreeSet::from([WitVersion::V0_1_0, WitVersion::V0_2_0]))
        );
        assert_eq!(
            find_exports(["hookauth:hooks/gate@0.2.0"].into_iter()),
            Ok(BTreeSet::from([WitVersion::V0_2_0]))
        );
        assert_eq!(
            find_exports(["hookauth:hooks/handler@0.3.0"].into_iter()),
            Err(Some("0.3.0".into()))
        );
        assert_eq!(
            find_exports(["hookauth:hooks/gate@0.1.0"].into_iter()),
            Err(Some("0.1.0".into()))
        );
        assert_eq!(find_exports(["wasi:cli/run@0.2.0"].into_iter()), Err(None));
    }
}
