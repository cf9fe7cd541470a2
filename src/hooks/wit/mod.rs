//! The WIT versions this host serves, one module per published version (`wit/vX.Y.Z`, frozen).
//! `latest` is what new code uses; an older version's module stays so its hooks keep loading.

pub mod since_v0_1_0;

pub use since_v0_1_0 as latest;
