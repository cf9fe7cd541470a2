//! Durable delivery of committed events to handlers.
//!
//! The flows never call handlers: they hand events to the store, which writes them to the outbox
//! in the same transaction as the change. The [`dispatcher`] then delivers them after commit, in
//! commit order, to each handler registered for the event's tenant, in registration order.

pub mod dispatcher;
pub mod handler;

pub use dispatcher::{Dispatcher, DispatcherSettings};
pub use handler::{ChainedSources, EventHandler, HandlerError, HandlerRegistry, HandlerSource};
